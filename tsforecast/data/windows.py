"""Sliding windows over one series by index arithmetic: no window is ever materialized up front."""
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


class Windows:
    """All stride-``stride`` windows ``[t, t + lookback + horizon)`` of a ``(T, C)`` series.

    Memory is the series itself plus one batch: a batch is gathered from its start rows on demand,
    so the number of windows costs nothing.
    """

    def __init__(self, values: torch.Tensor, marks: torch.Tensor | None, lookback: int, horizon: int, stride: int = 1,
                 mark_horizon: int | None = None):
        """``mark_horizon`` (default ``horizon``): how many future steps ``y_mark`` covers; a rollout needs
        calendar features past the horizon, so ``marks`` may extend beyond ``values`` by that much."""
        if values.ndim != 2:
            raise ValueError(f"values must be (time, channels), got shape {tuple(values.shape)}")
        mark_horizon = horizon if mark_horizon is None else mark_horizon
        if marks is not None and len(marks) < len(values) + mark_horizon - horizon:
            raise ValueError(f"marks cover {len(marks)} rows; windows need {len(values) + mark_horizon - horizon}")
        self.values, self.marks = values, marks
        self.lookback, self.horizon = lookback, horizon
        n = len(values) - lookback - horizon + 1
        self.starts = torch.arange(0, max(n, 0), stride, device=values.device)
        self._x_offsets = torch.arange(lookback, device=values.device)
        self._y_offsets = torch.arange(lookback, lookback + horizon, device=values.device)
        self._y_mark_offsets = torch.arange(lookback, lookback + mark_horizon, device=values.device)

    def __len__(self) -> int:
        return len(self.starts)

    def gather(self, starts: torch.Tensor) -> Batch:
        x_rows = starts[:, None] + self._x_offsets
        y_rows = starts[:, None] + self._y_offsets
        marks = self.marks
        return Batch(
            x=self.values[x_rows],
            x_mark=None if marks is None else marks[x_rows],
            y=self.values[y_rows],
            y_mark=None if marks is None else marks[starts[:, None] + self._y_mark_offsets],
        )

    def batches(self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None) -> Iterator[Batch]:
        """Batches in order (or shuffled with ``generator``); the last one may be smaller (no window dropped)."""
        if shuffle:
            order = torch.randperm(len(self.starts), generator=generator).to(self.starts.device)
            starts = self.starts[order]
        else:
            starts = self.starts
        for begin in range(0, len(starts), batch_size):
            yield self.gather(starts[begin:begin + batch_size])

    def n_batches(self, batch_size: int) -> int:
        return -(-len(self) // batch_size)
