"""Input checks that fail early with a message naming the problem and the fix."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .data.timefeatures import infer_freq


@dataclass
class CheckedFrame:
    values: np.ndarray  # (T, C) float64
    index: pd.DatetimeIndex
    columns: list[str]
    freq: str  # pandas frequency string of one step


def check_fraction(name: str, value) -> None:
    """A real number in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not 0 <= value < 1:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")


def check_positive_int(name: str, value, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _describe_irregular_steps(index: pd.DatetimeIndex, limit: int = 3) -> str:
    steps = np.diff(index.as_unit("ns").asi8)
    common = pd.Series(steps).mode().iloc[0]
    odd = np.flatnonzero(steps != common)[:limit]
    parts = [f"{index[i]} -> {index[i + 1]}" for i in odd]
    return f"most steps are {pd.Timedelta(int(common), unit='ns')}, but not at " + "; ".join(parts)


def check_frame(df, *, min_rows: int, freq: str | None = None, columns: list[str] | None = None,
                what: str = "data", rows_needed_for: str = "lookback + horizon") -> CheckedFrame:
    """Validate a wide time series DataFrame: DatetimeIndex, one numeric column per channel.

    ``freq=None`` infers the step from the index and rejects duplicate, unsorted or irregular
    timestamps. With an explicit ``freq`` the rows are taken as consecutive steps of that size
    (timestamps then only feed calendar features): they must still be in order, and duplicates
    or gaps are tolerated, which the protocol needs for the Weather file.
    """
    if not isinstance(df, pd.DataFrame):
        if isinstance(df, pd.Series):
            df = df.to_frame()
        else:
            raise TypeError(
                f"{what} must be a pandas DataFrame with a DatetimeIndex and one column per channel, "
                f"got {type(df).__name__}"
            )
    if not isinstance(df.index, pd.DatetimeIndex):
        hint = ""
        for col in ("date", "ds", "timestamp", "time"):
            if col in df.columns:
                hint = f" (it has a {col!r} column: use df.set_index(pd.to_datetime(df[{col!r}])).drop(columns={col!r}))"
                break
        raise TypeError(f"{what} must have a DatetimeIndex, got {type(df.index).__name__}{hint}")
    if df.shape[1] == 0:
        raise ValueError(f"{what} has no columns; it needs one numeric column per channel")
    non_numeric = [str(c) for c in df.columns if not pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c])]
    if non_numeric:
        raise ValueError(f"{what} has non-numeric columns {non_numeric}; convert them to numbers or drop them")
    if df.columns.has_duplicates:
        raise ValueError(f"{what} has duplicate column names: {sorted(set(map(str, df.columns[df.columns.duplicated()])))}")
    names = [str(c) for c in df.columns]
    if columns is not None and names != list(columns):
        missing = [c for c in columns if c not in names]
        extra = [c for c in names if c not in columns]
        detail = []
        if missing:
            detail.append(f"missing {missing}")
        if extra:
            detail.append(f"unexpected {extra}")
        if not detail:
            detail.append("same names in another order")
        raise ValueError(
            f"{what} must have the columns the forecaster was fitted on, in the same order: {list(columns)}; "
            f"got {names} ({', '.join(detail)})"
        )

    index = df.index
    if index.tz is not None:
        index = index.tz_localize(None)
    if index.hasnans:
        raise ValueError(f"{what} has missing timestamps (NaT) in its index")
    if freq is None and index.has_duplicates:
        dups = index[index.duplicated()].unique()[:3]
        raise ValueError(
            f"{what} has duplicate timestamps, e.g. {[str(t) for t in dups]}; drop or aggregate them "
            "(df[~df.index.duplicated()]) or pass freq=... to take the rows as consecutive steps"
        )
    if not index.is_monotonic_increasing:
        bad = int(np.flatnonzero(np.diff(index.asi8) < 0)[0])
        raise ValueError(
            f"{what} timestamps are not sorted (row {bad + 1}: {index[bad + 1]} comes after {index[bad]}); "
            "sort it with df.sort_index()"
        )

    if len(df) < min_rows:
        raise ValueError(f"{what} has {len(df)} rows; it needs at least {min_rows} ({rows_needed_for})")

    values = df.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        cols = [names[j] for j in np.flatnonzero(bad.any(axis=0))]
        first_row = int(np.flatnonzero(bad.any(axis=1))[0])
        first_col = int(np.flatnonzero(bad[first_row])[0])
        kind = "NaN" if np.isnan(values[first_row, first_col]) else "inf"
        raise ValueError(
            f"{what} contains {int(bad.sum())} NaN/inf values (first: {kind} at {index[first_row]} in "
            f"{names[first_col]!r}) in columns {cols}; "
            "fill them (e.g. df.interpolate().ffill().bfill()) or drop those rows"
        )

    if freq is None:
        if len(index) < 3:
            raise ValueError(f"{what} needs at least 3 timestamps to infer its frequency; pass freq=...")
        inferred = infer_freq(index)
        if inferred is None:
            raise ValueError(
                f"cannot infer a regular frequency from the {what} index: {_describe_irregular_steps(index)}. "
                "Resample or reindex it to a regular grid (df.asfreq('h').interpolate()), or pass freq=... "
                "to take the rows as consecutive steps"
            )
        freq = inferred
    else:
        try:
            freq = pd.tseries.frequencies.to_offset(freq).freqstr
        except ValueError as err:
            raise ValueError(f"freq={freq!r} is not a pandas frequency (e.g. 'h', '15min', 'D')") from err
    return CheckedFrame(values=values, index=pd.DatetimeIndex(index), columns=names, freq=freq)
