"""Calendars: a data's own step (anchored offsets), future indexes that continue it, time zones, periods.

Everything that knows what a timestamp *means* lives here; the rest of the package works on a plain
position along the series.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: column names that usually hold the timestamps of a CSV or a DataFrame (matched case-insensitively)
DATE_COLUMN_NAMES = ("date", "ds", "datetime", "timestamp", "time", "month", "week", "quarter", "year", "period",
                     "day")


def find_date_column(frame: pd.DataFrame) -> str | None:
    """The column that most likely holds the timestamps: a datetime-typed column, else one with a
    common name (``date``, ``ds``, ``Month``, ``timestamp``, ...); None when there is none."""
    for column in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[column]) or isinstance(frame[column].dtype, pd.PeriodDtype):
            return column
    lowered = {str(c).strip().lower(): c for c in frame.columns}
    for name in DATE_COLUMN_NAMES:
        if name in lowered:
            return lowered[name]
    return None


#: MASE's seasonal period per unit of the data's step (the usual choices: M4 / Hyndman & Athanasopoulos)
_SEASONAL_PERIODS = {"Y": 1, "Q": 4, "M": 12, "W": 52, "D": 7, "B": 5, "h": 24, "min": 60, "s": 60}


def seasonal_period(freq: str) -> int:
    """The seasonal period used by MASE for data with step ``freq``: hourly 24, daily 7, business-daily 5,
    weekly 52, monthly 12, quarterly 4, yearly 1; multiples of a unit (``15min``, ``2h``) divide it
    where that gives a whole number of steps per day (``15min`` -> 96 steps a day), else 1."""
    offset = pd.tseries.frequencies.to_offset(freq)
    unit = _offset_unit(offset)
    if unit in ("h", "min", "s"):
        # sub-daily data: one day of steps
        steps = pd.Timedelta(days=1) / pd.Timedelta(offset)
        return int(steps) if steps >= 1 and float(steps).is_integer() else 1
    period = _SEASONAL_PERIODS.get(unit, 1)
    n = max(int(getattr(offset, "n", 1)), 1)
    return period // n if period % n == 0 and period // n >= 1 else 1


def _offset_unit(offset) -> str | None:
    name = type(offset).__name__
    return {
        "YearEnd": "Y", "YearBegin": "Y", "BYearEnd": "Y", "BYearBegin": "Y",
        "QuarterEnd": "Q", "QuarterBegin": "Q", "BQuarterEnd": "Q", "BQuarterBegin": "Q",
        "MonthEnd": "M", "MonthBegin": "M", "BusinessMonthEnd": "M", "BusinessMonthBegin": "M",
        "SemiMonthEnd": None, "SemiMonthBegin": None,
        "Week": "W", "Day": "D", "BusinessDay": "B", "CustomBusinessDay": "B",
        "Hour": "h", "BusinessHour": "h", "Minute": "min", "Second": "s",
        "Milli": "s", "Micro": "s", "Nano": "s",
    }.get(name)


# ---------------------------------------------------------------------- steps and calendars
def to_offset(freq, name: str = "freq"):
    """A pandas offset from a frequency string or offset; ValueError naming ``name`` otherwise."""
    try:
        return pd.tseries.frequencies.to_offset(freq)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{name}={freq!r} is not a pandas frequency (e.g. 'h', '15min', 'D', 'W-SAT', 'MS', "
                         "'ME', 'QS', 'YS')") from err


def describe_freq(freq) -> str:
    """``'ME' (month end)``: a frequency with a few words for people."""
    offset = to_offset(freq)
    text = _freq_words(offset)
    return f"{offset.freqstr!r}" + (f" ({text})" if text else "")


def _freq_words(offset) -> str:
    words = {
        "MonthEnd": "month end", "MonthBegin": "month start", "QuarterEnd": "quarter end",
        "QuarterBegin": "quarter start", "YearEnd": "year end", "YearBegin": "year start",
        "BusinessDay": "business day", "Day": "day", "Hour": "hour", "Minute": "minute", "Second": "second",
    }
    kind = type(offset).__name__
    if kind == "Week":
        weekday = getattr(offset, "weekday", None)
        text = "week" if weekday is None else f"week ending on {_WEEKDAYS[weekday]}"
    else:
        text = words.get(kind, offset.freqstr)
    return text if getattr(offset, "n", 1) == 1 else f"{offset.n} x {text}"


_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def is_sub_daily(offset) -> bool:
    """Whether one step is shorter than a day (hours, minutes, ...): such steps are regular in absolute time."""
    return isinstance(offset, pd.offsets.Tick) and pd.Timedelta(offset) < pd.Timedelta(days=1)


def next_steps(last: pd.Timestamp, offset, steps: int) -> pd.DatetimeIndex:
    """The ``steps`` timestamps after ``last``, each one ``offset`` later: month-end stays month-end,
    ``W-SAT`` stays Saturday, quarters keep their anchor, business days skip weekends."""
    first = last + offset  # an anchored offset rolls onto its anchor; a Tick adds exactly
    return pd.date_range(start=first, periods=steps, freq=offset)


def step_matches(index: pd.DatetimeIndex, offset) -> np.ndarray:
    """For each consecutive pair of timestamps, whether the second is exactly one ``offset`` after the first."""
    if len(index) < 2:
        return np.zeros(0, dtype=bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.PerformanceWarning)  # non-vectorized offsets (business days)
        return np.asarray(index[:-1] + offset == index[1:])


def infer_freq(index: pd.DatetimeIndex) -> str | None:
    """The index's regular step as a pandas frequency string, or None (pandas 2 and 3 alike, no warnings)."""
    if len(index) < 3:
        return None
    try:
        with pd.option_context("future.infer_freq_returns_offset", True):
            inferred = pd.infer_freq(index)
    except (KeyError, pd.errors.OptionError):  # pandas < 3 has no such option and returns a string
        inferred = pd.infer_freq(index)
    if inferred is None:
        return None
    return inferred.freqstr if hasattr(inferred, "freqstr") else str(inferred)


def dominant_freq(index: pd.DatetimeIndex, samples: int = 200, width: int = 7) -> str | None:
    """The step most of an irregular index follows (``'MS'`` for month starts with a few months missing):
    the most common frequency inferred on short runs of consecutive timestamps."""
    if len(index) < 3:
        return None
    width = min(width, len(index))
    starts = np.unique(np.linspace(0, len(index) - width, num=min(samples, len(index) - width + 1)).astype(int))
    found = [infer_freq(index[s:s + width]) for s in starts]
    found = [f for f in found if f is not None]
    if found:
        return pd.Series(found).mode().iloc[0]
    steps = pd.Series(index[1:] - index[:-1])
    step = steps[steps > pd.Timedelta(0)].median()
    return None if pd.isna(step) else to_offset(step).freqstr


@dataclass(frozen=True)
class Calendar:
    """How a series' timestamps map onto the plain, regular steps the models work on, and back.

    Internally every index is a tz-naive DatetimeIndex on which the steps are regular:
    * naive timestamps are used as they are;
    * tz-aware data with steps under a day (hourly, 15-minute) works in UTC, where a local 23- or 25-hour
      DST day is regular; daily or longer steps work on the local wall clock (midnight stays midnight);
    * a PeriodIndex works on its periods' start times.
    ``external`` turns internal timestamps (fitted or forecast) back into the caller's kind of index, and
    ``wall_clock`` gives the local times that calendar features are computed on.
    """

    freq: str
    tz: str | None = None
    utc_steps: bool = False
    period_freq: str | None = None
    name: object = None

    @property
    def offset(self):
        return to_offset(self.freq)

    def internal(self, index: pd.Index) -> pd.DatetimeIndex:
        if self.period_freq is not None:
            return pd.DatetimeIndex(index.to_timestamp(how="start"))
        if index.tz is None:
            return pd.DatetimeIndex(index, freq=None)
        if self.utc_steps:
            return pd.DatetimeIndex(index.tz_convert("UTC").tz_localize(None), freq=None)
        return pd.DatetimeIndex(index.tz_localize(None), freq=None)

    def external(self, internal: pd.DatetimeIndex, set_freq: bool = False) -> pd.Index:
        if self.period_freq is not None:
            return internal.to_period(self.period_freq).rename(self.name)
        if self.tz is None:
            out = pd.DatetimeIndex(internal, name=self.name)
        elif self.utc_steps:
            out = internal.tz_localize("UTC").tz_convert(self.tz).rename(self.name)
        else:
            # a local date that does not exist (a DST gap at midnight in a few zones) moves to the next valid time
            out = internal.tz_localize(self.tz, ambiguous=np.zeros(len(internal), dtype=bool),
                                       nonexistent="shift_forward").rename(self.name)
        if set_freq:
            try:
                out.freq = self.offset
            except ValueError:  # a frequency pandas cannot attach to this index (DST on a wall clock): leave it unset
                pass
        return out

    def wall_clock(self, internal: pd.DatetimeIndex) -> pd.DatetimeIndex:
        """Local, tz-naive times of internal timestamps: what calendar features describe."""
        if self.tz is not None and self.utc_steps:
            return internal.tz_localize("UTC").tz_convert(self.tz).tz_localize(None)
        return internal

    def future(self, last: pd.Timestamp, steps: int) -> pd.DatetimeIndex:
        """Internal timestamps of the ``steps`` steps after ``last`` (internal)."""
        return next_steps(last, self.offset, steps)

    def state(self) -> dict:
        name = self.name if self.name is None or isinstance(self.name, (str, int)) else str(self.name)
        return {"freq": self.freq, "tz": self.tz, "utc_steps": self.utc_steps, "period_freq": self.period_freq,
                "name": name}

    @classmethod
    def from_state(cls, state: dict) -> "Calendar":
        return cls(**state)

    def describe_kind(self) -> str:
        if self.period_freq is not None:
            return f"a PeriodIndex ({self.period_freq})"
        return "time zone " + self.tz if self.tz is not None else "tz-naive timestamps"


def read_calendar(index: pd.Index, freq=None, what: str = "data") -> tuple[Calendar, pd.DatetimeIndex]:
    """Check a DatetimeIndex or PeriodIndex and return its calendar and the internal (naive, regular) index.

    ``freq=None`` infers the step and rejects duplicate, unsorted or irregular timestamps, naming the gaps and
    the data's own step. An explicit ``freq`` takes the rows as consecutive steps of that size (duplicates and
    a few gaps are tolerated, as the protocol needs for the Weather file), but it must describe the data:
    most steps exactly one ``freq`` apart, or a ValueError names both steps.
    """
    kind_of_index = "PeriodIndex" if isinstance(index, pd.PeriodIndex) else "DatetimeIndex"
    if index.hasnans:
        raise ValueError(f"{what} has missing timestamps (NaT) in its index; drop those rows "
                         "(df[df.index.notna()])")
    period_freq = None
    if isinstance(index, pd.PeriodIndex):
        period_freq = index.freqstr
        tz, utc_steps = None, False
    else:
        tz = None if index.tz is None else str(index.tz)
        utc_steps = False
        if tz is not None:
            if freq is not None:
                utc_steps = is_sub_daily(to_offset(freq))
            else:
                steps = index[1:] - index[:-1]
                utc_steps = len(steps) > 0 and steps.median() < pd.Timedelta(days=1)
    calendar = Calendar(freq="", tz=tz, utc_steps=utc_steps, period_freq=period_freq, name=index.name)
    internal = calendar.internal(index)

    def external_text(i: int) -> str:
        return str(index[i])

    if freq is None and internal.has_duplicates:
        first = int(np.flatnonzero(internal.duplicated())[0])
        count = int(internal.duplicated().sum())
        local = " (the same instant in UTC)" if utc_steps else ""
        raise ValueError(
            f"{what} has duplicate timestamps{local}: {count}, the first at {external_text(first)}; drop or aggregate them "
            "(df[~df.index.duplicated()] or df.groupby(level=0).mean()), or pass freq=... to take the rows as "
            "consecutive steps")
    if not internal.is_monotonic_increasing:
        bad = int(np.flatnonzero(np.asarray(internal[1:] < internal[:-1]))[0])
        raise ValueError(f"{what} timestamps are not sorted (row {bad + 1}: {external_text(bad + 1)} comes after "
                         f"{external_text(bad)}); sort it with df.sort_index()")

    if freq is None:
        if len(internal) < 3:
            raise ValueError(f"{what} needs at least 3 timestamps to infer its frequency; pass freq=...")
        inferred = infer_freq(internal)
        if inferred is None:
            raise ValueError(_irregular_message(index, internal, what, period_freq is not None))
        freq = inferred
    else:
        given = freq
        offset = to_offset(freq)
        freq = offset.freqstr
        matches = step_matches(internal, offset)
        if len(matches) and matches.mean() < 0.5:
            own = infer_freq(internal) if not internal.has_duplicates else None
            own = own or dominant_freq(internal)
            first = int(np.flatnonzero(~matches)[0])
            own_text = f"they step by {describe_freq(own)}" if own else "most of them are not one step apart"
            fix = f"pass freq={own!r} or freq=None (inferred from the timestamps)" if own else \
                "pass freq=None to infer the step, or resample the data to a regular grid"
            raise ValueError(
                f"freq={given!r} ({_freq_words(offset)}) does not match the {what} timestamps: {own_text} "
                f"(e.g. {external_text(first)} -> {external_text(first + 1)}, where freq={given!r} gives "
                f"{internal[first] + offset}); {fix}")
    return Calendar(freq=freq, tz=tz, utc_steps=utc_steps, period_freq=period_freq, name=index.name), internal


def _irregular_message(index: pd.Index, internal: pd.DatetimeIndex, what: str, periods: bool) -> str:
    own = dominant_freq(internal)
    if own is None:
        return f"cannot infer a regular frequency from the {what} index; pass freq=..."
    offset = to_offset(own)
    matches = step_matches(internal, offset)
    gaps = np.flatnonzero(~matches)
    shown = "; ".join(f"{index[i]} -> {index[i + 1]}" for i in gaps[:3])
    more = f" and {len(gaps) - 3} more" if len(gaps) > 3 else ""
    if periods:
        fix = (f"df.reindex(pd.period_range(df.index[0], df.index[-1], freq={index.freqstr!r})).interpolate()")
    else:
        fix = f"df.asfreq({own!r}).interpolate()"
    return (f"the {what} timestamps are irregular: most steps are {describe_freq(own)}, but {len(gaps)} are not "
            f"({shown}{more}). Fill the gaps on the data's own step with {fix}, "
            f"or pass freq={own!r} to take the rows as consecutive steps")


def check_same_calendar(given: Calendar, fitted: Calendar, at: pd.Timestamp, what: str) -> None:
    """Data given after fit must step like the fit data (the same dates after ``at``, so ``'QS'`` and
    ``'QS-OCT'`` agree) and keep time the same way (naive vs tz-aware)."""
    if (given.tz is None) != (fitted.tz is None):
        if fitted.tz is None:
            fix = "the forecaster was fitted on tz-naive timestamps: use X.tz_localize(None) (after tz_convert)"
        else:
            fix = f"the forecaster was fitted on time zone {fitted.tz}: use X.tz_localize({fitted.tz!r})"
        raise ValueError(f"{what} has {given.describe_kind()} but {fix}")
    if given.freq != fitted.freq:
        ahead = 3
        if not next_steps(at, given.offset, ahead).equals(next_steps(at, fitted.offset, ahead)):
            raise ValueError(f"{what} has frequency {describe_freq(given.freq)} but the forecaster was fitted on "
                             f"{describe_freq(fitted.freq)}; resample it to that step (X.resample({fitted.freq!r}).mean().interpolate()) "
                             "or refit")
