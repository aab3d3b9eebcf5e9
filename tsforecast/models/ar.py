"""Classic autoregression AR(p) per channel, fitted by ordinary least squares."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..layers.autoregressive import ChannelwiseLinear, sliding_lags
from .base import Dims, ModelSpec


def lag_order(order: int | None, dims: Dims, model: str) -> int:
    """The AR order to use (``None``: the lookback), checked against the lookback."""
    order = dims.lookback if order is None else order
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order <= 0:
        raise ValueError(f"{model} order must be a positive integer, got {order!r}")
    if order > dims.lookback:
        raise ValueError(f"{model} order {order} exceeds lookback {dims.lookback}; raise lookback or lower order")
    return int(order)


class LinearAR(nn.Module):
    """One-step linear AR per channel: ``y_t = c + sum_k phi_k y_{t-k}``."""

    output_len = 1

    def __init__(self, n_channels: int, order: int):
        super().__init__()
        self.order = order
        self.linear = ChannelwiseLinear(n_channels, order)

    def forward(self, x: torch.Tensor, x_mark=None, y_mark=None) -> torch.Tensor:
        return self.linear(x).unsqueeze(1)

    def coefficients(self) -> tuple[np.ndarray, np.ndarray]:
        return self.linear.weight.detach().cpu().double().numpy(), self.linear.bias.detach().cpu().double().numpy()


class AR(ModelSpec):
    """AR(``order``) per channel with an intercept, fitted by OLS (conditional MLE), as statsmodels'
    ``AutoReg(series, lags=order, trend="c")``: on the same series the coefficients are equal.

    The fit uses every target of the training series that has ``order`` observed lags. Forecasts
    beyond one step are recursive (the shared rollout), as ``AutoRegResults.forecast``.

    Parameters
    ----------
    order : int or None
        Number of lags; ``None`` uses the Forecaster's ``lookback``.
    """

    name = "ar"
    fit_mode = "closed_form"

    def __init__(self, order: int | None = None):
        self.order = order

    def check(self, dims: Dims) -> None:
        lag_order(self.order, dims, "AR")

    def build(self, dims: Dims) -> nn.Module:
        return LinearAR(dims.n_channels, lag_order(self.order, dims, "AR"))

    def fit_closed_form(self, network: LinearAR, train_values: np.ndarray) -> None:
        order = network.order
        n_rows, n_channels = train_values.shape
        if n_rows < 2 * order + 1:
            raise ValueError(
                f"AR({order}) needs at least {2 * order + 1} training rows for a determined least-squares fit "
                f"({order} lags + an intercept, from at least {order + 1} targets), got {n_rows}; give more rows "
                f"or lower the order (lookback, or AR(order=...)) to at most {(n_rows - 1) // 2}"
            )
        weight = np.empty((n_channels, order))
        bias = np.empty(n_channels)
        for c in range(n_channels):
            lags, target = sliding_lags(train_values[:, c], order)
            design = np.hstack([np.ones((len(target), 1)), lags])
            # A singular design (a constant channel) is fine: lstsq returns the minimum-norm solution.
            # NaN/inf values (e.g. from a variance that overflowed) make LAPACK's SVD fail instead.
            # (Huge finite values do not fail: the intercept's column falls under lstsq's rcond and is dropped.)
            try:
                with np.errstate(over="ignore", invalid="ignore"):
                    solution, *_ = np.linalg.lstsq(design, target, rcond=None)
            except np.linalg.LinAlgError as err:
                column = train_values[:, c]
                n_bad = int((~np.isfinite(column)).sum())
                found = f"{n_bad} NaN/inf values" if n_bad else f"values up to {np.max(np.abs(column)):.3g}"
                raise ValueError(
                    f"AR least squares failed on channel {c} (0-based) ({err}): it has {found}; fit on finite, "
                    "standardized values (Forecaster.fit standardizes the data)"
                ) from None
            bias[c], weight[c] = solution[0], solution[1:]
        with torch.no_grad():
            network.linear.weight.copy_(torch.from_numpy(weight))
            network.linear.bias.copy_(torch.from_numpy(bias))
