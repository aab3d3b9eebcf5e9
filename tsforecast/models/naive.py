"""Repeat: the last observed value of each channel, repeated over the horizon."""
from __future__ import annotations

import torch
from torch import nn

from .base import Dims, ModelSpec


class RepeatLast(nn.Module):
    def __init__(self, output_len: int):
        super().__init__()
        self.output_len = output_len

    def forward(self, x: torch.Tensor, x_mark=None, y_mark=None) -> torch.Tensor:
        return x[:, -1:, :].expand(-1, self.output_len, -1)


class Naive(ModelSpec):
    """Naive (random-walk) forecast: "Repeat" in the DLinear paper's tables. Nothing to learn."""

    name = "naive"
    published_name = "Repeat"
    fit_mode = "none"

    def build(self, dims: Dims) -> nn.Module:
        return RepeatLast(dims.horizon)
