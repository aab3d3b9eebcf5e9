"""Per-channel autoregressive blocks: each channel gets its own weights over its own lags."""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


def lag_matrix(x: torch.Tensor, order: int) -> torch.Tensor:
    """``(B, L, C)`` window -> ``(B, C, order)`` lags, lag 1 (the latest value) first."""
    return x[:, -order:, :].flip(1).transpose(1, 2)


class ChannelwiseLinear(nn.Module):
    """``y[b, c] = sum_k weight[c, k] * x[b, -k, c] + bias[c]``: one linear AR(order) per channel.

    ``weight`` is stored lag 1 first; ``forward`` takes the window in time order ``(B, L, C)`` and
    contracts its last ``order`` steps directly, so no lag matrix is built (rollouts call this per step).
    """

    def __init__(self, n_channels: int, order: int):
        super().__init__()
        self.order = order
        self.weight = nn.Parameter(torch.zeros(n_channels, order))
        self.bias = nn.Parameter(torch.zeros(n_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, C) -> (B, C)
        return torch.einsum("btc,ct->bc", x[:, -self.order:, :], self.weight.flip(1)) + self.bias


class ChannelwiseMLP(nn.Module):
    """An MLP over the lags with separate weights per channel (batched, no Python loop over channels)."""

    def __init__(self, n_channels: int, sizes: list[int]):
        super().__init__()
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = 1.0 / math.sqrt(fan_in)
            self.weights.append(nn.Parameter(torch.empty(n_channels, fan_in, fan_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(n_channels, fan_out).uniform_(-bound, bound)))

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (B, C, in) -> (B, C, out)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.einsum("bci,cio->bco", h, w) + b
            if i < last:
                h = torch.relu(h)
        return h


def sliding_lags(values: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """For a 1-D series: the ``(n - order, order)`` lag design (lag 1 first, a view) and the targets."""
    windows = np.lib.stride_tricks.sliding_window_view(values[:-1], order)[:, ::-1]
    return windows, values[order:]


class FutureCovariateTerm(nn.Module):
    """``y[b, c] = sum_j weight[c, j] * f[b, j]``: the future-known covariates of the forecast step as
    contemporaneous regressors (the X of ARX), one weight per channel and covariate.

    Reads the last ``n_covariates`` columns of ``y_mark`` at its first step (the step a one-step network
    forecasts). Zero-initialized: the term starts as a no-op and the fit alone sets it.
    """

    def __init__(self, n_channels: int, n_covariates: int):
        super().__init__()
        self.n_covariates = n_covariates
        self.weight = nn.Parameter(torch.zeros(n_channels, n_covariates))

    def forward(self, y_mark: torch.Tensor | None) -> torch.Tensor:  # (B, output_len, F) -> (B, C)
        if y_mark is None or y_mark.shape[-1] < self.n_covariates:
            got = "none" if y_mark is None else f"{y_mark.shape[-1]} mark columns"
            raise ValueError(f"this network was built with {self.n_covariates} future covariates and needs their "
                             f"values at the forecast step as the last columns of y_mark, got {got}; pass future_covariates")
        return y_mark[:, 0, -self.n_covariates:].to(self.weight.dtype) @ self.weight.T
