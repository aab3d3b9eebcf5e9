"""Many series in one internal model: wide and long frames <-> a list of series.

Every input becomes a :class:`Panel` right after validation: a list of :class:`SeriesData` (one per
``unique_id``; a wide frame is one series with id ``None``), each with its internal regular index
(:class:`tsforecast.data.calendar.Calendar`) and its values ``(T, K)`` in the data's units, where the
``K`` columns are, in this order, the targets, the past covariates and the future-known covariates
(:class:`Roles`). All series share one calendar (frequency, kind of time) and one set of columns. Output
is converted back to the caller's layout at the very end (:func:`to_output`): wide in, wide out; long
in, long out.

Long format (neuralforecast's): one row per series and time step, columns ``id_col`` (``"unique_id"``),
``time_col`` (``"ds"``), the targets (``target_cols``, else every numeric column that is neither id,
time nor a covariate) and the covariates. Series may differ in length and start date.

Missing values (``missing``):

* ``"raise"`` (default): any NaN, or a timestamp missing inside a series, is an error naming where and
  how to fix it.
* ``"mask"``: NaN targets are allowed and timestamps missing inside a series become rows of NaN (the
  series is put on its regular calendar between its first and last timestamp; ragged ends are never
  padded: no data is invented). An observed-mask travels with the targets: no missing target ever
  enters a loss or a metric. The network's inputs must be finite, so missing inputs follow ONE rule
  (:func:`fill_inputs`): each value is carried forward from the series' last observation of that
  column; before a column's first observation it is the series' training mean (0 after scaling).
  The same rule fills missing covariate values (a gap row has none).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .calendar import Calendar, describe_freq, dominant_freq, infer_freq, read_calendar, step_matches, to_offset

MISSING = ("raise", "mask")


@dataclass(frozen=True)
class Roles:
    """Column roles: forecast targets, past-only covariates, future-known covariates."""

    targets: tuple
    past: tuple = ()
    future: tuple = ()

    @property
    def columns(self) -> list:
        """The order of a series' value columns: targets, past covariates, future covariates."""
        return [*self.targets, *self.past, *self.future]

    @property
    def n_inputs(self) -> int:
        """The network's input channels: targets and past covariates."""
        return len(self.targets) + len(self.past)


@dataclass
class SeriesData:
    """One series: id (None for a wide frame), internal regular index, values ``(T, K)`` (data units)."""

    id: object
    index: pd.DatetimeIndex
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.index)

    def head(self, stop: int) -> "SeriesData":
        return SeriesData(self.id, self.index[:stop], self.values[:stop])

    def tail_from(self, start: int) -> "SeriesData":
        return SeriesData(self.id, self.index[start:], self.values[start:])


@dataclass
class Panel:
    series: list[SeriesData]
    roles: Roles
    calendar: Calendar
    long: bool  # the caller's layout
    layout: "PanelLayout" = field(default=None)

    @property
    def ids(self) -> list:
        return [s.id for s in self.series]

    @property
    def freq(self) -> str:
        return self.calendar.freq


@dataclass(frozen=True)
class PanelLayout:
    """How to read a frame: the Forecaster's ``id_col``, ``time_col``, ``target_cols`` and covariates."""

    id_col: str = "unique_id"
    time_col: str = "ds"
    target_cols: tuple | None = None
    future_covariates: tuple = ()
    past_covariates: tuple = ()

    def is_long(self, frame) -> bool:
        return isinstance(frame, pd.DataFrame) and self.id_col in frame.columns


def check_missing(missing) -> str:
    if missing not in MISSING:
        raise ValueError(f"missing must be one of {MISSING}, got {missing!r}: 'raise' rejects NaN values and gaps "
                         "with a message; 'mask' leaves them out of every loss and metric")
    return missing


def as_label_tuple(value, name: str) -> tuple:
    """``None`` -> ``()``, a string -> ``(string,)``, a list of labels -> tuple."""
    if value is None:
        return ()
    if isinstance(value, (str, int, np.integer)):
        return (value,)
    try:
        labels = tuple(value)
    except TypeError:
        raise ValueError(f"{name} must be a column name or a list of column names, got {value!r}") from None
    if len(set(labels)) != len(labels):
        raise ValueError(f"{name} lists a column twice: {list(labels)}")
    return labels


# ---------------------------------------------------------------------------- roles
def resolve_roles(columns: list, layout: PanelLayout, what: str, numeric: dict) -> Roles:
    """The column roles of a frame at fit: covariates as declared, targets as declared or every other
    numeric column."""
    future, past = tuple(layout.future_covariates), tuple(layout.past_covariates)
    both = sorted(set(map(str, future)) & set(map(str, past)))
    if both:
        raise ValueError(f"columns {both} are in both future_covariates and past_covariates; a column has one role")
    missing = [c for c in (*future, *past) if c not in columns]
    if missing:
        raise ValueError(f"{what} has no covariate column(s) {missing}; its columns are {list(columns)}")
    if layout.target_cols is not None:
        targets = tuple(layout.target_cols)
        absent = [c for c in targets if c not in columns]
        if absent:
            raise ValueError(f"{what} has no target column(s) {absent} (target_cols); its columns are {list(columns)}")
        overlap = [c for c in targets if c in future or c in past]
        if overlap:
            raise ValueError(f"columns {overlap} are both targets and covariates; a column has one role")
    else:
        targets = tuple(c for c in columns if c not in future and c not in past)
        non_numeric = [c for c in targets if not numeric[c]]
        if non_numeric:
            raise ValueError(
                f"{what} has non-numeric columns {[str(c) for c in non_numeric]}; convert them to numbers "
                f"(pd.to_numeric), drop them (df.drop(columns={[str(c) for c in non_numeric]})), or name the "
                "targets with target_cols=[...]")
    if not targets:
        raise ValueError(f"{what} has no target column: every numeric column is a covariate; name the targets with "
                         "target_cols=[...]")
    bad = [c for c in (*targets, *future, *past) if not numeric[c]]
    if bad:
        raise ValueError(f"{what} has non-numeric columns {[str(c) for c in bad]}; convert them to numbers "
                         "(pd.to_numeric), e.g. df[col] = df[col].astype(float) for booleans")
    return Roles(targets=targets, past=past, future=future)


# ---------------------------------------------------------------------------- values
def check_values(values: np.ndarray, roles: Roles, missing: str, where: str, times,
                 fill: str = "df.interpolate().ffill().bfill()") -> None:
    """inf is always an error; NaN is an error under ``missing="raise"`` (under ``"mask"`` a missing
    covariate value is filled like any missing input, :func:`fill_inputs`). ``fill``: the fix the error
    shows (a long frame's must fill each series on its own)."""
    columns = roles.columns
    inf = np.isinf(values)
    if inf.any():
        row, col = np.argwhere(inf)[0]
        raise ValueError(f"{where} has {int(inf.sum())} inf values (first at {times[row]} in {columns[col]!r}); "
                         "replace them, e.g. df = df.replace([np.inf, -np.inf], np.nan), then fill them or pass "
                         "missing='mask'")
    nan = np.isnan(values)
    if not nan.any():
        return
    if missing == "raise":
        cols = [columns[j] for j in np.flatnonzero(nan.any(axis=0))]
        row = int(np.flatnonzero(nan.any(axis=1))[0])
        col = int(np.flatnonzero(nan[row])[0])
        raise ValueError(
            f"{where} contains {int(nan.sum())} NaN values (first: at {times[row]} in {columns[col]!r}) in columns "
            f"{cols}; fill them (e.g. {fill}) or drop those rows, or pass "
            "missing='mask' to leave missing targets out of training and scoring")


def _grid(internal: pd.DatetimeIndex, offset, what: str, missing: str, times_text,
          fill: str = "df.asfreq({freq!r}).interpolate()") -> pd.DatetimeIndex | None:
    """The regular calendar from the first to the last timestamp when ``internal`` has gaps (None: none).
    Gaps are an error under ``missing="raise"``; timestamps off the calendar are always an error."""
    matches = step_matches(internal, offset)
    if matches.all():
        return None
    gaps = np.flatnonzero(~matches)
    shown = "; ".join(f"{times_text(i)} -> {times_text(i + 1)}" for i in gaps[:3])
    more = f" and {len(gaps) - 3} more" if len(gaps) > 3 else ""
    if missing == "raise":
        raise ValueError(f"{what} has {len(gaps)} gap(s) in its {describe_freq(offset.freqstr)} timestamps ({shown}{more}); "
                         "pass missing='mask' to leave the missing steps out of training and scoring, or fill "
                         f"them (e.g. {fill.replace('{freq!r}', repr(offset.freqstr))})")
    grid = pd.date_range(internal[0], internal[-1], freq=offset)
    off = ~internal.isin(grid)
    if off.any():
        first = int(np.flatnonzero(off)[0])
        raise ValueError(f"{what} has timestamps off its {describe_freq(offset.freqstr)} calendar (e.g. "
                         f"{times_text(first)}); resample it to one step (df.resample({offset.freqstr!r}).mean())")
    return grid


def _regularize(series: SeriesData, grid: pd.DatetimeIndex | None) -> SeriesData:
    if grid is None:
        return series
    values = np.full((len(grid), series.values.shape[1]), np.nan)
    values[grid.get_indexer(series.index)] = series.values
    return SeriesData(series.id, grid, values)


# ---------------------------------------------------------------------------- reading
def _plain_steps(index: pd.Index) -> pd.DatetimeIndex:
    """Tz-naive timestamps to infer a step from, before the step is known, kept as
    :func:`read_calendar` keeps them: a period's start; sub-daily tz-aware data in UTC (regular across
    DST), daily and longer on the local wall clock."""
    if isinstance(index, pd.PeriodIndex):
        return pd.DatetimeIndex(index.to_timestamp(how="start"))
    index = pd.DatetimeIndex(index)
    if index.tz is None:
        return index
    steps = index[1:] - index[:-1]
    sub_daily = len(steps) > 0 and steps.median() < pd.Timedelta(days=1)
    return pd.DatetimeIndex(index.tz_convert("UTC").tz_localize(None) if sub_daily else index.tz_localize(None))


def read_index(index: pd.Index, freq, missing: str, what: str) -> tuple[Calendar, pd.DatetimeIndex, pd.DatetimeIndex | None]:
    """:func:`read_calendar`, plus under ``missing="mask"`` the regular calendar a gappy index is put on
    (None: no gaps). Under ``"raise"`` exactly :func:`read_calendar`."""
    if missing == "raise":
        return (*read_calendar(index, freq=freq, what=what), None)
    if freq is None:
        try:
            calendar, internal = read_calendar(index, freq=None, what=what)
            return calendar, internal, None
        except ValueError:
            if index.has_duplicates or not index.is_monotonic_increasing or len(index) < 3:
                raise
            freq = dominant_freq(_plain_steps(index))
            if freq is None:
                raise
    calendar, internal = read_calendar(index, freq=freq, what=what)
    if internal.has_duplicates:
        raise ValueError(f"{what} has duplicate timestamps; drop or aggregate them (df[~df.index.duplicated()] or "
                         "df.groupby(level=0).mean())")
    return calendar, internal, _grid(internal, calendar.offset, what, missing, lambda i: str(index[i]))


def read_wide(frame: pd.DataFrame, index_calendar, layout: PanelLayout, missing: str, what: str,
              roles: Roles | None) -> tuple[Roles, SeriesData, Calendar]:
    """A checked wide frame (validation.check_frame did the index and column checks) as one series."""
    calendar, internal, values, columns = index_calendar
    numeric = {c: True for c in columns}
    if roles is None:
        roles = resolve_roles(columns, layout, what, numeric)
    order = [columns.index(c) for c in roles.columns]
    values = values[:, order]
    return roles, SeriesData(None, internal, values), calendar


def _time_index(times: pd.Series, what: str, time_col: str) -> pd.Index:
    if isinstance(times.dtype, pd.PeriodDtype):
        return pd.PeriodIndex(times)
    if pd.api.types.is_datetime64_any_dtype(times):
        return pd.DatetimeIndex(times)
    raise TypeError(f"{what} column {time_col!r} holds {times.dtype} values, not timestamps; convert it with "
                    f"df[{time_col!r}] = pd.to_datetime(df[{time_col!r}])")


def read_long(frame: pd.DataFrame, layout: PanelLayout, freq, missing: str, what: str,
              roles: Roles | None) -> tuple[Roles, list[SeriesData], Calendar]:
    """A long frame (``id_col``, ``time_col``, values) as a list of series on one calendar."""
    id_col, time_col = layout.id_col, layout.time_col
    if time_col not in frame.columns:
        raise ValueError(f"{what} has an id column {id_col!r} but no time column {time_col!r}; name its time column "
                         f"with time_col=... (its columns are {list(frame.columns)})")
    if frame[id_col].isna().any():
        raise ValueError(f"{what} has rows without a series id in {id_col!r}; drop them (df.dropna(subset=[{id_col!r}]))")
    value_columns = [c for c in frame.columns if c not in (id_col, time_col)]
    numeric = {c: pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
               for c in value_columns}
    if roles is None:
        roles = resolve_roles(value_columns, layout, what, numeric)
    else:
        absent = [c for c in roles.columns if c not in frame.columns]
        if absent:
            raise ValueError(f"{what} lacks the column(s) {absent} the forecaster was fitted on "
                             f"(targets {list(roles.targets)}, past covariates {list(roles.past)}, future covariates "
                             f"{list(roles.future)})")
        bad = [c for c in roles.columns if not numeric[c]]
        if bad:
            raise ValueError(f"{what} has non-numeric columns {bad}; convert them to numbers (pd.to_numeric)")
    times = _time_index(frame[time_col], what, time_col)
    if times.hasnans:
        raise ValueError(f"{what} has rows without a timestamp in {time_col!r}; drop them "
                         f"(df.dropna(subset=[{time_col!r}]))")
    # Sort by (series, time) on integer codes: the id column is factorized once, never turned into
    # Python objects row by row (a panel of millions of rows stays cheap).
    codes, uniques = pd.factorize(frame[id_col], sort=True)
    stamps = np.asarray(times.asi8)
    order = np.lexsort((stamps, codes))
    sorted_codes, sorted_stamps = codes[order], stamps[order]
    same = (np.diff(sorted_codes) == 0) & (np.diff(sorted_stamps) == 0)
    if same.any():
        first = order[int(np.flatnonzero(same)[0]) + 1]
        raise ValueError(f"{what} has {int(same.sum())} duplicate ({id_col}, {time_col}) pairs, the first "
                         f"({frame[id_col].iloc[first]!r}, {times[first]}); drop or aggregate them "
                         f"(df.drop_duplicates([{id_col!r}, {time_col!r}]) or df.groupby([{id_col!r}, {time_col!r}], "
                         "as_index=False).mean())")
    values_all = frame[roles.columns].to_numpy(dtype=np.float64)
    bounds = np.flatnonzero(np.diff(sorted_codes)) + 1
    starts = np.concatenate([[0], bounds]).astype(int)
    ends = np.concatenate([bounds, [len(order)]]).astype(int)
    raw = [(uniques[sorted_codes[s]], times[order[s:e]], values_all[order[s:e]]) for s, e in zip(starts, ends)]

    # one frequency for the panel: the given one, else each series' own (they must agree)
    if freq is None:
        own = {}
        for sid, index, _ in raw:
            internal = _plain_steps(index)
            found = infer_freq(internal) or (dominant_freq(internal) if missing == "mask" else None)
            if found is not None:
                own.setdefault(to_offset(found).freqstr, []).append(sid)
        if not own:
            raise ValueError(f"cannot infer one frequency from the {what} series (too short or irregular); pass freq=...")
        if len(own) > 1:
            listed = "; ".join(f"{describe_freq(f)}: {ids_text(s)}" for f, s in own.items())
            raise ValueError(f"{what} mixes frequencies across series ({listed}); a panel shares one frequency: resample "
                             f"the series to one step (per series: df.set_index({time_col!r}).resample(...).mean()), or "
                             "forecast each frequency with its own Forecaster")
        freq = next(iter(own))
    # the fixes the errors suggest work on the long frame as given: each series filled on its own
    cols = list(roles.columns)
    nan_fill = f"df[{cols}] = df.groupby({id_col!r})[{cols}].transform(lambda s: s.interpolate().ffill().bfill())"
    gap_fill = (f"df = df.set_index({time_col!r}).groupby({id_col!r})[{cols}].apply(lambda g: "
                "g.asfreq({freq!r}).interpolate()).reset_index()")
    series, calendar = [], None
    for sid, index, values in raw:
        where = f"{what} series {sid!r}"
        cal, internal = read_calendar(pd.Index(index), freq=freq, what=where) if len(index) > 1 else \
            _single_row_calendar(index, freq)
        if calendar is None:
            calendar = cal
        elif (cal.tz is None) != (calendar.tz is None) or cal.tz != calendar.tz:
            raise ValueError(f"{what} series have different time zones ({calendar.tz} and {cal.tz}); convert them to one "
                             f"(df[{time_col!r}] = df[{time_col!r}].dt.tz_convert(...))")
        item = SeriesData(sid, internal, values)
        grid = _grid(internal, cal.offset, where, missing, lambda i, index=index: str(index[i]), fill=gap_fill)
        check_values(values, roles, missing, where, index, fill=nan_fill)
        series.append(_regularize(item, grid))
    calendar = Calendar(freq=calendar.freq, tz=calendar.tz, utc_steps=calendar.utc_steps,
                        period_freq=calendar.period_freq, name=time_col)
    return roles, series, calendar


def covariate_times(times, calendar: Calendar, what: str, hint: str) -> pd.DatetimeIndex:
    """The internal timestamps of rows given after fit (future covariates), checked to be of the fit
    data's kind: periods for periods, and tz-aware exactly when the fit data was (a naive time read
    against a tz-aware calendar would silently shift the values by the UTC offset)."""
    index = pd.Index(times)
    if calendar.period_freq is not None:
        if not isinstance(index, pd.PeriodIndex):
            raise TypeError(f"{what} must be periods like the fit data's ({calendar.period_freq!r}), got {index.dtype}; "
                            f"convert them (e.g. .to_period({calendar.period_freq!r})); {hint}")
        return calendar.internal(index)
    if not isinstance(index, pd.DatetimeIndex):
        raise TypeError(f"{what} must be timestamps like the fit data's, got {index.dtype}; {hint}")
    if (index.tz is None) != (calendar.tz is None):
        fix = f"localize them with tz_localize({calendar.tz!r})" if index.tz is None else \
            "drop the time zone with tz_localize(None)"
        fix += " (.dt.tz_localize on a column)"
        raise ValueError(f"{what} are {'tz-naive' if index.tz is None else f'in {index.tz}'} but the fit data's are "
                         f"{'in ' + str(calendar.tz) if calendar.tz else 'tz-naive'}; {fix}")
    return calendar.internal(index)


def _single_row_calendar(index, freq):
    calendar, internal = read_calendar(pd.Index(index).append(pd.Index(index)), freq=freq)
    return calendar, internal[:1]


def ids_text(ids, shown: int = 5) -> str:
    ids = list(ids)
    text = ", ".join(repr(i) for i in ids[:shown])
    return text + (f" and {len(ids) - shown} more" if len(ids) > shown else "")


# ---------------------------------------------------------------------------- filling and output
def fill_inputs(scaled: np.ndarray) -> np.ndarray:
    """The look-back rule for missing inputs (scaled ``(T, K)``): carry the last observation forward;
    before a column's first observation, 0 (the series' training mean). Causal: a filled value never
    comes from a later row."""
    if not np.isnan(scaled).any():
        return scaled
    return pd.DataFrame(scaled).ffill().fillna(0.0).to_numpy(dtype=np.float64, copy=True)


def to_output(blocks: list[tuple[object, pd.Index, pd.DataFrame]], long: bool, id_col: str, time_col: str):
    """Per-series result frames ``(id, external index, frame)`` in the caller's layout: the one frame
    (wide), or one long frame ``id_col, time_col, columns...``."""
    if not long:
        return blocks[0][2]
    # one frame built from stacked arrays (not one small frame per series, then concatenated)
    columns = list(blocks[0][2].columns)
    lengths = [len(frame) for _, _, frame in blocks]
    ids = np.empty(len(blocks), dtype=object)
    ids[:] = [sid for sid, _, _ in blocks]
    times = blocks[0][1].append([index for _, index, _ in blocks[1:]]) if len(blocks) > 1 else blocks[0][1]
    values = np.concatenate([frame.to_numpy() for _, _, frame in blocks])
    out = pd.DataFrame(values, columns=columns)
    out.insert(0, time_col, times.rename(None) if isinstance(times, pd.PeriodIndex) else pd.DatetimeIndex(times).rename(None))
    out.insert(0, id_col, np.repeat(ids, lengths))
    return out


def warn_skipped(ids: list, reason: str) -> None:
    if ids:
        warnings.warn(f"{len(ids)} series skipped ({ids_text(ids)}): {reason}", UserWarning, stacklevel=4)
