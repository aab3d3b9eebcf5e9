"""Series decomposition (Autoformer): trend = moving average, seasonal = the rest."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MovingAverage(nn.Module):
    """Moving average over time of ``(B, L, C)``, stride 1, replicate padding so the output keeps length L:
    ``kernel - 1 - (kernel - 1) // 2`` copies of the first step in front and ``(kernel - 1) // 2`` copies
    of the last step behind, so ``trend[t]`` averages ``x[t - ceil((k-1)/2) .. t + floor((k-1)/2)]``.

    For the odd kernels of Autoformer and Time-Series-Library (25) both ends get ``(k - 1) // 2``, as
    there. An even kernel follows the FEDformer code (MAZiqing/FEDformer ``moving_avg``), the only
    reference that runs one: its default ``moving_avg=[24]`` pads 12 in front and 11 behind, and that is
    the code behind the published Autoformer figures on ETTh1/ETTh2/ETTm1. (Autoformer and
    Time-Series-Library pad ``(k - 1) // 2`` at both ends, which for an even kernel yields L - 1 steps
    and fails in ``x - trend``.)"""

    def __init__(self, kernel_size: int):
        super().__init__()
        if kernel_size < 1:
            raise ValueError(f"moving-average kernel must be >= 1, got {kernel_size}")
        self.kernel_size = kernel_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        back = (self.kernel_size - 1) // 2
        front = self.kernel_size - 1 - back
        padded = F.pad(x.transpose(1, 2), (front, back), mode="replicate")
        return F.avg_pool1d(padded, self.kernel_size, stride=1).transpose(1, 2)


class SeriesDecomposition(nn.Module):
    """``x -> (seasonal, trend)`` with ``trend = MovingAverage(kernel)(x)`` and ``seasonal = x - trend``."""

    def __init__(self, kernel_size: int = 25):
        super().__init__()
        self.moving_average = MovingAverage(kernel_size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        trend = self.moving_average(x)
        return x - trend, trend


class SeasonalLayerNorm(nn.Module):
    """Autoformer's ``my_Layernorm``: LayerNorm over features, then remove the mean over time (the
    seasonal part has no level)."""

    def __init__(self, d_model: int):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        return x - x.mean(dim=1, keepdim=True)
