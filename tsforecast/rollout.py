"""The one autoregressive rollout: any network, any horizon.

A network produces ``output_len`` steps per call from the last ``lookback`` steps. To forecast
``horizon`` steps, call it, append its forecast to the context, slide the window and repeat,
``ceil(horizon / output_len)`` calls in all. Calendar features of the future are known in advance,
so the caller passes them for every step the calls will cover (:func:`padded_length`).

Past covariates (input channels after the ``n_targets`` targets) are observed only up to the forecast
origin: when a rollout needs them beyond it, each holds its last observed value (a naive forecast;
the network's own output for those channels is never used). Future-known covariates are marks, given
for every step.
"""
from __future__ import annotations

import torch
from torch import nn


def padded_length(horizon: int, output_len: int) -> int:
    """Number of future steps the rollout's calls cover (a multiple of ``output_len``)."""
    return -(-horizon // output_len) * output_len


@torch.no_grad()
def autoregressive_forecast(network: nn.Module, x: torch.Tensor, x_mark: torch.Tensor | None,
                            future_mark: torch.Tensor | None, horizon: int, n_targets: int | None = None) -> torch.Tensor:
    """Forecast ``horizon`` steps of the first ``n_targets`` channels (default: all) after each window:
    the network's own ``rollout(x, x_mark, future_mark, horizon)`` when it has one (e.g. a KV-cached
    decoder; such networks take no past covariates), else :func:`sliding_forecast`."""
    custom = getattr(network, "rollout", None)
    if custom is not None:
        return custom(x, x_mark, future_mark, horizon)[..., :n_targets]
    return sliding_forecast(network, x, x_mark, future_mark, horizon, n_targets)


@torch.no_grad()
def sliding_forecast(network: nn.Module, x: torch.Tensor, x_mark: torch.Tensor | None,
                     future_mark: torch.Tensor | None, horizon: int, n_targets: int | None = None) -> torch.Tensor:
    """Forecast ``horizon`` steps after each window by sliding the look-back window over the forecasts.

    Parameters
    ----------
    network : a model network (``forward(x, x_mark, y_mark)``, attribute ``output_len``)
    x : ``(B, lookback, C)`` scaled look-back windows
    x_mark : ``(B, lookback, F)`` or None
    future_mark : ``(B, padded_length(horizon, output_len), F)`` or None
    horizon : number of steps wanted
    n_targets : the first channels are forecast; the others (past covariates) hold their last value

    Returns ``(B, horizon, n_targets)``. With ``horizon <= output_len`` this is one call, sliced.
    """
    step = network.output_len
    batch, lookback, n_channels = x.shape
    n_targets = n_channels if n_targets is None else n_targets
    n_calls = -(-horizon // step)
    if future_mark is not None and future_mark.shape[1] < n_calls * step:
        raise ValueError(f"future_mark covers {future_mark.shape[1]} steps; the rollout needs {n_calls * step}")
    # One buffer holds the context and every forecast; each call reads a sliding window of it. The
    # window is made contiguous: strided views make torch's einsum/matmul kernels ~10x slower.
    buffer = x.new_empty(batch, lookback + n_calls * step, n_channels)
    buffer[:, :lookback] = x
    if n_targets < n_channels:
        buffer[:, lookback:, n_targets:] = x[:, -1:, n_targets:]
    marks = None if x_mark is None else torch.cat([x_mark, future_mark[:, :n_calls * step]], dim=1)
    for call in range(n_calls):
        begin = call * step
        window_mark = None if marks is None else marks[:, begin:begin + lookback]
        y_mark = None if marks is None else marks[:, begin + lookback:begin + lookback + step]
        out = network(buffer[:, begin:begin + lookback].contiguous(), window_mark, y_mark)
        buffer[:, begin + lookback:begin + lookback + step, :n_targets] = out[..., :n_targets]
    return buffer[:, lookback:lookback + horizon, :n_targets]
