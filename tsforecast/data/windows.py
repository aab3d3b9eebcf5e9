"""Sliding windows over one series, or over the series of a panel, by index arithmetic: no window is
ever materialized up front, and no window crosses from one series into the next."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch


@dataclass
class Batch:
    x: torch.Tensor  # (B, lookback, C) inputs
    x_mark: torch.Tensor | None  # (B, lookback, F) calendar features of the inputs
    y: torch.Tensor  # (B, horizon, C) targets
    y_mark: torch.Tensor | None  # (B, horizon, F) calendar features of the targets (known in advance)
    #: (B, lookback, targets) / (B, horizon, targets) whether each target value was observed (None: all were)
    x_observed: torch.Tensor | None = None
    y_observed: torch.Tensor | None = None
    #: (B,) the series (0-based, in segment order) each window comes from
    series: torch.Tensor | None = None


class Windows:
    """All stride-``stride`` windows ``[t, t + lookback + horizon)`` of a ``(T, C)`` series, or of each
    series of a panel stacked along time (``segments``), never crossing from one series to the next.

    Memory is the series itself plus one batch: a batch is gathered from its start rows on demand,
    so the number of windows costs nothing.
    """

    def __init__(self, values: torch.Tensor, marks: torch.Tensor | None, lookback: int, horizon: int, stride: int = 1,
                 mark_horizon: int | None = None, *, segments: list[tuple[int, int]] | None = None,
                 observed: torch.Tensor | None = None, n_targets: int | None = None):
        """``mark_horizon`` (default ``horizon``): how many future steps ``y_mark`` covers; a rollout needs
        calendar features past the horizon, so ``marks`` may extend beyond ``values`` by that much.

        ``segments``: ``(first row, rows)`` of each series in ``values``/``marks`` (default: one series,
        all rows); a series' windows end within its rows, ``y_mark`` may read the rows after them.
        ``n_targets``: the first channels are targets (``y`` holds only them), the others are inputs only.
        ``observed``: ``(rows, n_targets)`` bool mask of observed targets; windows without any observed
        target are left out (they carry nothing to learn or score), and batches carry the masks."""
        if values.ndim != 2:
            raise ValueError(f"values must be (time, channels), got shape {tuple(values.shape)}")
        mark_horizon = horizon if mark_horizon is None else mark_horizon
        if segments is None:
            segments = [(0, len(values))]
        last_row = max(first + rows for first, rows in segments)
        if marks is not None and len(marks) < last_row + mark_horizon - horizon:
            raise ValueError(f"marks cover {len(marks)} rows; windows need {last_row + mark_horizon - horizon}")
        self.values, self.marks, self.observed = values, marks, observed
        self.n_targets = values.shape[1] if n_targets is None else n_targets
        self.lookback, self.horizon = lookback, horizon
        device = values.device
        starts, owners = [], []
        for number, (first, rows) in enumerate(segments):
            n = rows - lookback - horizon + 1
            if n > 0:
                starts.append(torch.arange(first, first + n, stride, device=device))
                owners.append(torch.full((len(starts[-1]),), number, dtype=torch.long, device=device))
        self.starts = torch.cat(starts) if starts else torch.zeros(0, dtype=torch.long, device=device)
        self._owners = torch.cat(owners) if owners else torch.zeros(0, dtype=torch.long, device=device)
        if observed is not None and len(self.starts):
            # a window counts when any target in [start + lookback, start + lookback + horizon) is observed
            seen = torch.cat([torch.zeros(1, dtype=torch.long, device=device),
                              observed.any(dim=1).long().cumsum(0)])
            counts = seen[self.starts + lookback + horizon] - seen[self.starts + lookback]
            keep = counts > 0
            self.starts, self._owners = self.starts[keep], self._owners[keep]
        self._x_offsets = torch.arange(lookback, device=values.device)
        self._y_offsets = torch.arange(lookback, lookback + horizon, device=values.device)
        self._y_mark_offsets = torch.arange(lookback, lookback + mark_horizon, device=values.device)

    def __len__(self) -> int:
        return len(self.starts)

    def gather(self, starts: torch.Tensor, owners: torch.Tensor | None = None) -> Batch:
        x_rows = starts[:, None] + self._x_offsets
        y_rows = starts[:, None] + self._y_offsets
        marks, observed = self.marks, self.observed
        y = self.values[y_rows]
        if self.n_targets != self.values.shape[1]:
            y = y[..., :self.n_targets]
        return Batch(
            x=self.values[x_rows],
            x_mark=None if marks is None else marks[x_rows],
            y=y,
            y_mark=None if marks is None else marks[starts[:, None] + self._y_mark_offsets],
            x_observed=None if observed is None else observed[x_rows],
            y_observed=None if observed is None else observed[y_rows],
            series=owners,
        )

    def batches(self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None) -> Iterator[Batch]:
        """Batches in order (or shuffled with ``generator``); the last one may be smaller (no window dropped)."""
        starts, owners = self.starts, self._owners
        if shuffle:
            order = torch.randperm(len(self.starts), generator=generator).to(self.starts.device)
            starts, owners = starts[order], owners[order]
        for begin in range(0, len(starts), batch_size):
            yield self.gather(starts[begin:begin + batch_size], owners[begin:begin + batch_size])

    def n_batches(self, batch_size: int) -> int:
        return -(-len(self) // batch_size)
