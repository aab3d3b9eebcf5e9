"""Per-window instance normalization (RevIN, Kim et al. ICLR 2022; the "non-stationary" normalization of
iTransformer/PatchTST when ``affine=False``)."""
from __future__ import annotations

import torch
from torch import nn


class InstanceNorm(nn.Module):
    """``normalize`` removes each window's per-channel mean and std; ``denormalize`` puts them back.

    Statistics are taken over the time axis of the input window, ``(B, L, C)``, and kept on the
    module between the two calls, so a model calls ``normalize`` on its input and ``denormalize`` on
    its output within one forward pass.
    """

    def __init__(self, n_channels: int, affine: bool = False, eps: float = 1e-5, detach_std: bool = True):
        super().__init__()
        self.eps = eps
        self.affine = affine
        # iTransformer lets gradients flow through the std (only the mean is detached); RevIN detaches both.
        self.detach_std = detach_std
        if affine:
            self.weight = nn.Parameter(torch.ones(n_channels))
            self.bias = nn.Parameter(torch.zeros(n_channels))
        self._mean: torch.Tensor | None = None
        self._std: torch.Tensor | None = None

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        self._mean = x.mean(dim=1, keepdim=True).detach()
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + self.eps)
        self._std = std.detach() if self.detach_std else std
        x = (x - self._mean) / self._std
        if self.affine:
            x = x * self.weight + self.bias
        return x

    def denormalize(self, y: torch.Tensor) -> torch.Tensor:
        if self._mean is None:
            raise RuntimeError("InstanceNorm.denormalize called before normalize")
        if self.affine:
            y = (y - self.bias) / (self.weight + self.eps * self.eps)
        return y * self._std + self._mean
