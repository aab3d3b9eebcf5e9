"""Input embeddings: value, positional and calendar parts, and the inverted (variate-token) embedding."""
from __future__ import annotations

import math

import torch
from torch import nn


class InvertedEmbedding(nn.Module):
    """One token per variate: each channel's whole look-back (and each calendar feature's) is mapped
    by one Linear(lookback -> d_model) (iTransformer; also S-Mamba).

    ``x`` (B, L, C), ``x_mark`` (B, L, F) or None -> tokens (B, C + F, d_model): the C variate tokens
    first, then the F mark tokens.

    Future-known covariates (the last ``n_future_covariates`` mark columns) are known over the forecast
    steps too, so their tokens are built from their whole known path, ``cat(x_mark, y_mark)`` over
    ``lookback + output_len`` steps, by their own Linear(lookback + output_len -> d_model): a window of
    ``lookback`` steps would miss the first forecast steps whenever ``output_len > lookback``. With
    ``n_future_covariates=0`` nothing is created and ``y_mark`` is ignored (the reference network).
    """

    def __init__(self, lookback: int, d_model: int, dropout: float = 0.1, n_future_covariates: int = 0,
                 output_len: int = 0):
        super().__init__()
        self.value = nn.Linear(lookback, d_model)
        self.n_future_covariates = n_future_covariates
        if n_future_covariates:
            if output_len < 1:
                raise ValueError("InvertedEmbedding: future covariates need output_len >= 1 (the forecast steps)")
            self.output_len = output_len
            self.future = nn.Linear(lookback + output_len, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, x_mark: torch.Tensor | None = None,
                y_mark: torch.Tensor | None = None) -> torch.Tensor:
        k = self.n_future_covariates
        if not k:
            tokens = x if x_mark is None else torch.cat([x, x_mark], dim=2)
            return self.dropout(self.value(tokens.transpose(1, 2)))
        if x_mark is None or y_mark is None or y_mark.shape[1] != self.output_len:
            got = None if y_mark is None else tuple(y_mark.shape)
            raise ValueError(f"InvertedEmbedding: {k} future covariates need x_mark and y_mark of "
                             f"{self.output_len} steps (the forecast steps' covariate values), got y_mark {got}")
        known = self.value(torch.cat([x, x_mark[..., :-k]], dim=2).transpose(1, 2))
        future = self.future(torch.cat([x_mark[..., -k:], y_mark[..., -k:]], dim=1).transpose(1, 2))
        return self.dropout(torch.cat([known, future], dim=1))


class TokenEmbedding(nn.Module):
    """Value embedding of the Transformer forecasters: Conv1d(k=3, circular padding, no bias) over time."""

    def __init__(self, n_channels: int, d_model: int):
        super().__init__()
        self.conv = nn.Conv1d(n_channels, d_model, kernel_size=3, padding=1, padding_mode="circular", bias=False)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_in", nonlinearity="leaky_relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.transpose(1, 2)).transpose(1, 2)


class PositionalEncoding(nn.Module):
    """Fixed sinusoidal positions (Vaswani et al. 2017), added to (B, L, d_model) embeddings."""

    def __init__(self, d_model: int, max_len: int = 5000):
        super().__init__()
        position = torch.arange(max_len, dtype=torch.float32)[:, None]
        frequency = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        table = torch.zeros(max_len, d_model)
        table[:, 0::2] = torch.sin(position * frequency)
        table[:, 1::2] = torch.cos(position * frequency[: d_model // 2])
        self.register_buffer("table", table, persistent=False)

    def forward(self, length: int) -> torch.Tensor:
        return self.table[:length]


class DataEmbedding(nn.Module):
    """Value (token conv) + optional sinusoidal position + calendar-feature Linear (no bias), then dropout.

    ``positional=True`` is Informer's ``DataEmbedding``; ``False`` is Autoformer's ``DataEmbedding_wo_pos``.
    """

    def __init__(self, n_channels: int, d_model: int, n_time_features: int, positional: bool = True,
                 dropout: float = 0.1):
        super().__init__()
        self.value = TokenEmbedding(n_channels, d_model)
        self.position = PositionalEncoding(d_model) if positional else None
        self.calendar = nn.Linear(n_time_features, d_model, bias=False) if n_time_features > 0 else None
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, x_mark: torch.Tensor | None) -> torch.Tensor:
        out = self.value(x)
        if self.position is not None:
            out = out + self.position(x.shape[1])
        if self.calendar is not None and x_mark is not None:
            out = out + self.calendar(x_mark)
        return self.dropout(out)
