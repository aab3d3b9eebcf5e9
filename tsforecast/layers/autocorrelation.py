"""Autoformer's Auto-Correlation (Wu et al., NeurIPS 2021, §3.2), an inner attention for
:class:`tsforecast.layers.attention.AttentionLayer`."""
from __future__ import annotations

import math

import torch
from torch import nn


def delay_aggregate(values: torch.Tensor, delay_weights: torch.Tensor) -> torch.Tensor:
    """``out[..., t] = sum_tau w[b, tau] * values[b, ..., (t + tau) mod L]`` for ``values`` (B, H, E, L) and
    sparse ``delay_weights`` (B, L) (non-zero at the selected delays).

    This is the time-delay aggregation "roll the values by each selected delay and sum them weighted";
    as a circular cross-correlation it is computed exactly by one FFT product, for all delays at once.
    """
    length = values.shape[-1]
    spectrum = torch.fft.rfft(values, dim=-1) * torch.conj(torch.fft.rfft(delay_weights, dim=-1))[:, None, None, :]
    return torch.fft.irfft(spectrum, n=length, dim=-1)


class AutoCorrelation(nn.Module):
    """Period-based dependencies instead of point-wise attention.

    * The autocorrelation of queries and keys at every delay by FFT: ``irfft(rfft(Q) * conj(rfft(K)))``.
    * ``top_k = int(factor * ln L)`` delays with the largest correlation (averaged over heads and
      channels); their softmax-normalised correlations weight the values rolled by each delay.
    * Training: the delays are chosen from the batch-averaged correlation and shared by the batch (the
      reference's speed-up); evaluation: chosen per sample.
    * Keys/values shorter than the queries are zero-padded, longer ones truncated.
    """

    def __init__(self, factor: int = 1):
        super().__init__()
        self.factor = factor

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        batch, length, heads, channels = queries.shape
        if keys.shape[1] < length:
            pad = length - keys.shape[1]
            keys = torch.cat([keys, keys.new_zeros(batch, pad, heads, channels)], dim=1)
            values = torch.cat([values, values.new_zeros(batch, pad, *values.shape[2:])], dim=1)
        else:
            keys, values = keys[:, :length], values[:, :length]
        q = queries.permute(0, 2, 3, 1)  # (B, H, E, L)
        k = keys.permute(0, 2, 3, 1)
        v = values.permute(0, 2, 3, 1)
        correlation = torch.fft.irfft(torch.fft.rfft(q, dim=-1) * torch.conj(torch.fft.rfft(k, dim=-1)), n=length, dim=-1)
        mean_correlation = correlation.mean(dim=(1, 2))  # (B, L)
        top_k = max(1, min(length, int(self.factor * math.log(length))))
        if self.training:
            delays = mean_correlation.mean(dim=0).topk(top_k).indices.expand(batch, -1)
            weights = torch.gather(mean_correlation, 1, delays)
        else:
            weights, delays = mean_correlation.topk(top_k, dim=-1)
        delay_weights = torch.zeros_like(mean_correlation).scatter(1, delays, torch.softmax(weights, dim=-1))
        return delay_aggregate(v, delay_weights).permute(0, 3, 1, 2)
