"""Seasonal naive: each step repeats the value one season earlier, ``y[t+h] = y[t+h - m*ceil(h/m)]``."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .base import Dims, ModelSpec


class RepeatLastSeason(nn.Module):
    """One call forecasts a whole season (the last ``season`` look-back values); the shared rollout
    repeats it for longer horizons, which is exactly ``y[t+h - m*ceil(h/m)]``."""

    def __init__(self, season: int):
        super().__init__()
        self.output_len = season

    def forward(self, x: torch.Tensor, x_mark=None, y_mark=None) -> torch.Tensor:
        return x[:, -self.output_len:, :]


class SeasonalNaive(ModelSpec):
    """Seasonal naive forecast per channel: the value one season (``m`` steps) earlier. Nothing to learn.

    The usual baseline for seasonal data, and the forecast MASE's denominator is built on (in
    sample): a MASE below 1 beats it. With ``m = 1`` it is ``naive``.

    Parameters
    ----------
    season_length : int or None
        The season ``m`` in steps; ``None`` takes the Forecaster's ``season_length``, else the data's
        step (:func:`tsforecast.data.calendar.seasonal_period`: hourly 24, daily 7, weekly 52, monthly 12,
        quarterly 4). The Forecaster's ``lookback`` must be at least ``m``.
    """

    name = "snaive"
    fit_mode = "none"
    one_model_for_all_horizons = True

    def __init__(self, season_length: int | None = None):
        self.season_length = season_length

    def _season(self, dims: Dims) -> int:
        season = dims.season_length if self.season_length is None else self.season_length
        if isinstance(season, bool) or not isinstance(season, (int, np.integer)) or season <= 0:
            raise ValueError(f"snaive season_length must be a positive integer or None, got {season!r}")
        return int(season)

    def check(self, dims: Dims) -> None:
        season = self._season(dims)
        if dims.lookback < season:
            raise ValueError(
                f"snaive repeats the last season of the look-back, but lookback={dims.lookback} is shorter than the "
                f"season ({season} steps); set lookback >= {season}, or a shorter season with "
                f"SeasonalNaive(season_length=...) or Forecaster(season_length=...)"
            )

    def build(self, dims: Dims) -> nn.Module:
        self.check(dims)
        return RepeatLastSeason(self._season(dims))

    @classmethod
    def test_params(cls) -> dict:
        # shorter than the conformance suite's lookbacks (12, 16), and shorter than its horizons so the
        # rollout repeats the season
        return {"season_length": 4}
