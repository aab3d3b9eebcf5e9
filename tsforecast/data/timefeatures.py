"""Calendar features of a DatetimeIndex, each scaled to [-0.5, 0.5] (the GluonTS encoding used by the LTSF protocol)."""
from __future__ import annotations

import numpy as np
import pandas as pd


_FEATURES = {
    "second_of_minute": lambda idx: idx.second / 59.0 - 0.5,
    "minute_of_hour": lambda idx: idx.minute / 59.0 - 0.5,
    "hour_of_day": lambda idx: idx.hour / 23.0 - 0.5,
    "day_of_week": lambda idx: idx.day_of_week / 6.0 - 0.5,
    "day_of_month": lambda idx: (idx.day - 1) / 30.0 - 0.5,
    "day_of_year": lambda idx: (idx.day_of_year - 1) / 365.0 - 0.5,
    "month_of_year": lambda idx: (idx.month - 1) / 11.0 - 0.5,
    "week_of_year": lambda idx: (idx.isocalendar().week.to_numpy() - 1) / 52.0 - 0.5,
}

_DAILY = ["day_of_week", "day_of_month", "day_of_year"]
# Feature sets by the unit of the data's step, as in GluonTS `time_features_from_frequency_str`.
_BY_UNIT = {
    "Y": [],
    "Q": ["month_of_year"],
    "M": ["month_of_year"],
    "W": ["day_of_month", "week_of_year"],
    "D": _DAILY,
    "h": ["hour_of_day", *_DAILY],
    "min": ["minute_of_hour", "hour_of_day", *_DAILY],
    "s": ["second_of_minute", "minute_of_hour", "hour_of_day", *_DAILY],
}


def feature_names(freq: str) -> list[str]:
    """Names of the calendar features for a pandas frequency (``"h"``, ``"15min"``, ``"D"``, ...)."""
    offset = pd.tseries.frequencies.to_offset(freq)
    name = type(offset).__name__
    unit = {
        "YearEnd": "Y", "YearBegin": "Y", "QuarterEnd": "Q", "QuarterBegin": "Q",
        "MonthEnd": "M", "MonthBegin": "M", "BusinessMonthEnd": "M", "BusinessMonthBegin": "M",
        "Week": "W", "Day": "D", "BusinessDay": "D", "CustomBusinessDay": "D",
        "Hour": "h", "BusinessHour": "h", "Minute": "min", "Second": "s",
        "Milli": "s", "Micro": "s", "Nano": "s",
    }.get(name)
    if unit is None:
        raise ValueError(f"no calendar features are defined for frequency {freq!r}")
    return list(_BY_UNIT[unit])


def time_features(index: pd.DatetimeIndex, freq: str) -> np.ndarray:
    """Float32 array ``(len(index), n_features)``.

    ``freq`` picks the feature set. The LTSF reference scripts encode every dataset with the hourly
    set (``freq="h"``: hour of day, day of week, day of month, day of year), 15- and 10-minute data
    included; pass the data's own step (e.g. ``"15min"``) to add minute of hour.
    """
    names = feature_names(freq)
    if not names:
        return np.zeros((len(index), 0), dtype=np.float32)
    return np.stack([np.asarray(_FEATURES[n](index), dtype=np.float64) for n in names], axis=1).astype(np.float32)
