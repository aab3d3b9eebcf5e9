"""Input checks that fail early with a message naming the problem and the fix."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .data.calendar import Calendar, find_date_column
from .data.panel import read_index

#: the column name of a one-channel series given as an unnamed pandas Series
SERIES_COLUMN = "y"


@dataclass
class CheckedFrame:
    values: np.ndarray  # (T, C) float64
    index: pd.DatetimeIndex  # internal: tz-naive, regular steps (see tsforecast.data.calendar.Calendar)
    columns: list  # the input's column labels (strings or integers)
    freq: str  # pandas frequency string of one step
    calendar: Calendar  # maps the internal index back to the caller's kind of index


def check_positive_int(name: str, value, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _as_frame(df, what: str) -> pd.DataFrame:
    """A DataFrame from a DataFrame or a Series (one channel, named after the Series or ``"y"``)."""
    if isinstance(df, pd.Series):
        return df.to_frame(name=SERIES_COLUMN if df.name is None else df.name)
    if isinstance(df, pd.DataFrame):
        return df
    raise TypeError(
        f"{what} must be a pandas DataFrame (or Series) with a DatetimeIndex or PeriodIndex and one numeric "
        f"column per channel, got {type(df).__name__}"
    )


def _index_hint(df: pd.DataFrame) -> str:
    """How to turn ``df``'s timestamps into its index, as code that works when followed."""
    column = find_date_column(df)
    if column is not None:
        return (f": it has a {column!r} column, so use "
                f"df = df.set_index(pd.to_datetime(df[{column!r}])).drop(columns={column!r})")
    if len(df.index) and not pd.api.types.is_numeric_dtype(df.index):
        try:
            pd.to_datetime(df.index[:5])
            return ": its index looks like dates, so use df.index = pd.to_datetime(df.index)"
        except (ValueError, TypeError):
            pass
    return ": set the timestamps as the index, e.g. df = df.set_index(pd.to_datetime(df['date'])).drop(columns='date')"


def _column_label(label, what: str):
    """Column labels are kept as they are (integers stay integers) when they are strings or integers."""
    if isinstance(label, (bool, np.bool_)):
        raise ValueError(f"{what} has a boolean column label {label!r}; rename the columns to strings")
    if isinstance(label, (int, np.integer)):
        return int(label)
    if isinstance(label, str):
        return label
    raise ValueError(f"{what} has a column label {label!r} of type {type(label).__name__}; column labels must be "
                     "strings or integers (e.g. df.columns = df.columns.map(str))")


def check_frame(df, *, min_rows: int, freq: str | None = None, columns: list | None = None,
                what: str = "data", rows_needed_for: str = "lookback + horizon", missing: str = "raise") -> CheckedFrame:
    """Validate a wide time series: a DataFrame (or Series) with a DatetimeIndex (any time zone) or a
    PeriodIndex and one numeric column per channel.

    The index goes through :func:`tsforecast.data.calendar.read_calendar`: ``freq=None`` infers the step
    and rejects duplicate, unsorted or irregular timestamps; an explicit ``freq`` takes the rows as
    consecutive steps of that size (duplicates and a few gaps tolerated, as the protocol needs for the
    Weather file) but must agree with the timestamps.

    ``missing="mask"`` (:mod:`tsforecast.data.panel`): NaN values are allowed (inf is not) and missing
    timestamps become rows of NaN on the data's regular calendar.
    """
    df = _as_frame(df, what)
    if not isinstance(df.index, (pd.DatetimeIndex, pd.PeriodIndex)):
        raise TypeError(f"{what} must have a DatetimeIndex or PeriodIndex, got {type(df.index).__name__}"
                        f"{_index_hint(df)}")
    if df.shape[1] == 0:
        raise ValueError(f"{what} has no columns; it needs one numeric column per channel")
    labels = [_column_label(c, what) for c in df.columns]
    non_numeric = [str(c) for c in df.columns if not pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c])]
    if non_numeric:
        raise ValueError(f"{what} has non-numeric columns {non_numeric}; convert them to numbers "
                         f"(pd.to_numeric) or drop them (df.drop(columns={non_numeric}))")
    if df.columns.has_duplicates:
        raise ValueError(f"{what} has duplicate column names: {sorted(set(map(str, df.columns[df.columns.duplicated()])))}")
    if columns is not None and labels != list(columns):
        missing = [c for c in columns if c not in labels]
        extra = [c for c in labels if c not in columns]
        detail = []
        if missing:
            detail.append(f"missing {missing}")
        if extra:
            detail.append(f"unexpected {extra}")
        if not detail:
            detail.append("same names in another order")
        raise ValueError(
            f"{what} must have the columns the forecaster was fitted on, in the same order: {list(columns)}; "
            f"got {labels} ({', '.join(detail)})"
        )

    calendar, index, grid = read_index(df.index, freq, missing, what)

    if len(df) < min_rows:
        raise ValueError(f"{what} has {len(df)} rows; it needs at least {min_rows} ({rows_needed_for})")

    values = df.to_numpy(dtype=np.float64)
    if grid is not None:
        full = np.full((len(grid), values.shape[1]), np.nan)
        full[grid.get_indexer(index)] = values
        values, index = full, grid
    bad = ~np.isfinite(values) if missing == "raise" else np.isinf(values)
    if bad.any():
        cols = [labels[j] for j in np.flatnonzero(bad.any(axis=0))]
        first_row = int(np.flatnonzero(bad.any(axis=1))[0])
        first_col = int(np.flatnonzero(bad[first_row])[0])
        kind = "NaN" if np.isnan(values[first_row, first_col]) else "inf"
        fill = "df.interpolate().ffill().bfill()"
        if np.isinf(values).any():  # interpolate() leaves inf alone
            fill = "df.replace([np.inf, -np.inf], np.nan).interpolate().ffill().bfill()"
        raise ValueError(
            f"{what} contains {int(bad.sum())} NaN/inf values (first: {kind} at {df.index[first_row]} in "
            f"{labels[first_col]!r}) in columns {cols}; "
            f"fill them (e.g. {fill}) or drop those rows"
        )
    return CheckedFrame(values=values, index=index, columns=labels, freq=calendar.freq, calendar=calendar)
