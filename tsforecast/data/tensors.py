"""Series -> the tensors networks read: per-series scaling, the missing-value rule, marks, one stack.

Each series is scaled by its own scaler (fitted on its training rows; a wide frame's one scaler is the
protocol's), its missing inputs are filled by :func:`tsforecast.data.panel.fill_inputs` while its
observed-mask keeps track of the real targets, and its marks are the calendar features of its steps
followed by its scaled future-known covariates. The series are stacked along time, each followed by
``extra`` rows of marks for the steps after it (what a forecast from its last window reads), so a
:class:`tsforecast.data.windows.Windows` over the stack with the returned ``segments`` never crosses
from one series into the next.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import torch

from .calendar import Calendar
from .panel import Roles, SeriesData, fill_inputs


@dataclass
class Encoded:
    values: torch.Tensor  # (N, targets + past covariates) scaled, filled, float32
    observed: torch.Tensor | None  # (N, targets) bool; None when every target is observed
    marks: torch.Tensor | None  # (N, F): calendar features, then future covariates
    segments: list[tuple[int, int]]  # (first row, rows) of each series' own rows

    def windows(self, lookback: int, horizon: int, n_targets: int, stride: int = 1, mark_horizon: int | None = None):
        from .windows import Windows

        return Windows(self.values, self.marks, lookback, horizon, stride=stride, mark_horizon=mark_horizon,
                       segments=self.segments, observed=self.observed, n_targets=n_targets)


def encode(series: list[SeriesData], scalers: list, roles: Roles, calendar: Calendar,
           calendar_marks: Callable[[pd.DatetimeIndex], torch.Tensor] | None, device, extra: int = 0,
           future_values: list[np.ndarray | None] | None = None) -> Encoded:
    """Scale, fill and stack ``series`` (each with its scaler).

    ``calendar_marks(internal index) -> (T, F_cal)``: the calendar features (None: none).
    ``extra``: rows of marks after each series (the steps a rollout from its last window reads);
    ``future_values``: per series, the future covariates of those steps in the data's units (``(k,
    Kf)``, ``k <= extra``: the remaining steps carry the last value forward); None: carried forward."""
    n_inputs, n_targets, n_future = roles.n_inputs, len(roles.targets), len(roles.future)
    sizes = [len(item) + extra for item in series]
    total = int(sum(sizes))
    # one preallocated stack, filled series by series (no per-series tensors concatenated afterwards)
    values = torch.zeros((total, n_inputs), dtype=torch.float32, device=device)
    observed = np.zeros((total, n_targets), dtype=bool)
    indexes = [item.index.append(calendar.future(item.index[-1], extra)) if extra else item.index for item in series]
    calendar_rows = None
    if calendar_marks is not None and getattr(calendar_marks, "elementwise", False) and len(series) > 1:
        # features of each timestamp alone: computed once over the panel's distinct timestamps
        every = indexes[0].append(indexes[1:])
        distinct = every.unique()
        calendar_rows = (calendar_marks(distinct).to(device), distinct.get_indexer(every))
    marks, segments, first = None, [], 0
    for i, item in enumerate(series):
        scaler = scalers[i]
        # StandardScaler.transform's own arithmetic, without its per-call validation
        scaled = (item.values - scaler.mean_) / scaler.scale_
        rows = slice(first, first + len(item))
        inputs = scaled[:, :n_inputs]
        observed[rows] = ~np.isnan(inputs[:, :n_targets])
        values[rows] = torch.as_tensor(fill_inputs(inputs), dtype=torch.float32, device=device)
        parts = []
        if calendar_rows is not None:
            table, where = calendar_rows
            parts.append(table[torch.as_tensor(where[first:first + sizes[i]], device=device)])
        elif calendar_marks is not None:
            parts.append(calendar_marks(indexes[i]).to(device))
        if n_future:
            future = scaled[:, n_inputs:]
            if extra:
                given = np.full((extra, n_future), np.nan)
                if future_values is not None and future_values[i] is not None:
                    known = _pad_columns(future_values[i], n_inputs)
                    given[:len(known)] = ((known - scaler.mean_) / scaler.scale_)[:, n_inputs:]
                future = np.concatenate([future, given])
            parts.append(torch.as_tensor(fill_inputs(future), dtype=torch.float32, device=device))
        if parts:
            block = parts[0] if len(parts) == 1 else torch.cat([p.float() for p in parts], dim=1)
            if marks is None:
                marks = block.new_zeros((total, block.shape[1]))
            marks[first:first + sizes[i]] = block
        segments.append((first, len(item)))
        first += sizes[i]
    mask = None if observed[_own_rows(segments, total)].all() else torch.as_tensor(observed, device=device)
    return Encoded(values, mask, marks, segments)


def _own_rows(segments: list[tuple[int, int]], total: int) -> np.ndarray:
    """Which rows of the stack are series rows (not the extra rows of marks after each series)."""
    own = np.zeros(total, dtype=bool)
    for first, rows in segments:
        own[first:first + rows] = True
    return own


def _pad_columns(future: np.ndarray, n_inputs: int) -> np.ndarray:
    """Future covariates ``(k, Kf)`` widened to a scaler's ``(k, n_inputs + Kf)`` columns (inputs NaN)."""
    future = np.asarray(future, dtype=np.float64)
    return np.concatenate([np.full((len(future), n_inputs), np.nan), future], axis=1)
