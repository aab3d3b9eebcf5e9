"""Plot a forecast: the history, the forecast, its shaded prediction intervals and optionally the truth."""
from __future__ import annotations

import re

import pandas as pd


def _as_frame(data, what: str) -> pd.DataFrame:
    if isinstance(data, pd.Series):
        return data.to_frame(data.name if data.name is not None else "y")
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame or Series, got {type(data).__name__}")
    return data


def interval_levels(forecast: pd.DataFrame, column) -> list[str]:
    """The levels (as written in the column names, ascending) with both ``{column}-lo-L`` and ``-hi-L``."""
    pattern = re.compile(rf"^{re.escape(str(column))}-lo-(\d+(?:\.\d+)?)$")
    found = [m.group(1) for c in forecast.columns if (m := pattern.match(str(c)))]
    return sorted((lv for lv in found if f"{column}-hi-{lv}" in forecast.columns), key=float)


def _long_to_wide(frame, sid, id_col: str, time_col: str) -> pd.DataFrame | None:
    if frame is None:
        return None
    rows = frame[frame[id_col] == sid]
    return rows.drop(columns=[id_col]).set_index(time_col)


def _plot_long(history, forecast, truth, columns, history_rows, title, ids, id_col, time_col, max_series):
    """Long frames: one row of subplots per series (``ids``, default the first ``max_series``), one
    column per channel."""
    import matplotlib.pyplot as plt

    for name, frame in (("history", history), ("truth", truth)):
        if frame is not None and not (isinstance(frame, pd.DataFrame) and id_col in frame.columns):
            raise ValueError(f"forecast is a long frame (column {id_col!r}) but {name} is not; pass {name} in the "
                             "same long layout")
    known = list(pd.unique(forecast[id_col]))
    ids = known[:max_series] if ids is None else ([ids] if isinstance(ids, (str, int)) else list(ids))
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ValueError(f"ids {unknown} are not in the forecast; its series are {known[:8]}")
    if columns is None:
        columns = [c for c in history.columns if c in forecast.columns and c not in (id_col, time_col)]
    columns = [columns] if isinstance(columns, (str, int)) else list(columns)
    fig, grid = plt.subplots(len(ids), len(columns), figsize=(10, 2.6 * len(ids)), squeeze=False)
    for row, sid in enumerate(ids):
        plot_forecast(_long_to_wide(history, sid, id_col, time_col), _long_to_wide(forecast, sid, id_col, time_col),
                      _long_to_wide(truth, sid, id_col, time_col), columns, history_rows, axes=list(grid[row]))
        for ax, column in zip(grid[row], columns):
            ax.set_ylabel(f"{sid}: {column}")
    if title is not None:
        grid[0][0].set_title(title)
    fig.tight_layout()
    return fig


def plot_forecast(history, forecast, truth=None, columns=None, history_rows: int | None = 200, axes=None,
                  title: str | None = None, ids=None, id_col: str = "unique_id", time_col: str = "ds",
                  max_series: int = 4):
    """One subplot per channel: ``history`` (its last ``history_rows`` rows; None: all), the point
    ``forecast``, a shaded band for every level found in ``forecast``'s columns (``{column}-lo-80`` and
    ``{column}-hi-80``, as ``Forecaster.predict(level=...)`` writes them; wider levels lighter), and
    ``truth`` (the actual values over the forecast period) when given.

    ``columns``: the channels to plot (default: every column of ``history`` found in ``forecast``).
    ``axes``: a sequence of matplotlib Axes, one per channel, to draw into (default: a new figure).
    Returns the matplotlib Figure. Works with any backend (Agg included); save it with
    ``fig.savefig("forecast.png")``.

    Long frames (a panel: columns ``id_col``, ``time_col``, values; as ``predict`` returns them for a
    long fit): one row of subplots per series in ``ids`` (default: the first ``max_series``).
    """
    import matplotlib.pyplot as plt

    if isinstance(forecast, pd.DataFrame) and id_col in forecast.columns:
        if axes is not None:
            raise ValueError("axes is for one series; for a long frame pass ids=[...] and let plot_forecast lay out "
                             "the subplots")
        return _plot_long(history, forecast, truth, columns, history_rows, title, ids, id_col, time_col, max_series)

    history, forecast = _as_frame(history, "history"), _as_frame(forecast, "forecast")
    truth = None if truth is None else _as_frame(truth, "truth")
    if columns is None:
        columns = [c for c in history.columns if c in forecast.columns]
        if not columns:
            raise ValueError(f"history's columns {list(history.columns)} are not in the forecast's "
                             f"{list(forecast.columns)[:8]}; pass the forecast of the same data, or columns=[...]")
    elif isinstance(columns, (str, int)):
        columns = [columns]
    missing = [c for c in columns if c not in history.columns or c not in forecast.columns]
    if missing:
        raise ValueError(f"columns {missing} are not in both history and forecast; choose from "
                         f"{[c for c in history.columns if c in forecast.columns]}")
    if history_rows is not None:
        history = history.iloc[-history_rows:]
    if axes is None:
        fig, axes = plt.subplots(len(columns), 1, figsize=(10, 2.6 * len(columns)), sharex=True, squeeze=False)
        axes = axes[:, 0]
    elif len(axes) != len(columns):
        raise ValueError(f"axes has {len(axes)} Axes for {len(columns)} columns; pass one Axes per column")
    fig = axes[0].figure
    for ax, column in zip(axes, columns):
        ax.plot(history.index, history[column], color="0.3", lw=1, label="history")
        levels = interval_levels(forecast, column)
        for i, level in enumerate(reversed(levels)):  # widest first, lightest
            ax.fill_between(forecast.index, forecast[f"{column}-lo-{level}"], forecast[f"{column}-hi-{level}"],
                            color="C0", alpha=0.15 + 0.2 * i / max(len(levels), 1), lw=0, label=f"{level}% interval")
        ax.plot(forecast.index, forecast[column], color="C0", lw=1.5, label="forecast")
        if truth is not None and column in truth.columns:
            ax.plot(truth.index, truth[column], color="C3", lw=1, label="truth")
        ax.set_ylabel(str(column))
    axes[0].legend(loc="upper left", fontsize="small", ncol=3)
    if title is not None:
        axes[0].set_title(title)
    fig.tight_layout()
    return fig
