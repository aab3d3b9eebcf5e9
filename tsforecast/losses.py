"""Training losses over observed values only (``Forecaster(missing="mask")``): the one home of the
masked mean that the shared training loop and every network's own ``training_loss`` use."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _masked_sse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor):
    """(sum of squared errors over the observed positions, their count)."""
    diff = pred - target
    mask = mask.expand(diff.shape)
    # Zeroed before squaring: the square's gradient 2 * diff would turn a NaN target into NaN gradients.
    # clone() keeps diff's memory layout (out-of-place masked_fill/where make it contiguous), so the sum
    # adds in mse_loss's order: an all-True mask gives the same bits as no mask.
    return (diff.clone().masked_fill_(~mask, 0.0) ** 2).sum(), mask.sum()


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error over the positions where ``mask`` is True.

    ``mask`` None: exactly ``F.mse_loss(pred, target)`` (every value observed). Else a bool tensor
    broadcastable to ``pred - target``; an all-True mask gives the same number (bit for bit on CPU).
    Unobserved targets may hold anything, NaN included: they are zeroed before squaring, so neither the
    loss nor any gradient sees them. With no observed position the loss is 0 (nothing to score adds nothing), still
    part of the graph so ``backward`` works. No host sync either way (safe inside a GPU training step).
    """
    if mask is None:
        return F.mse_loss(pred, target)
    sse, count = _masked_sse(pred, target, mask)
    return sse / count.clamp(min=1)


def masked_rmse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``sqrt(masked_mse)``; 0 with zero gradients when nothing is observed (where sqrt's gradient at 0
    would be infinite and turn the whole backward pass into NaN).

    ``mask`` None: exactly ``sqrt(mean((pred - target) ** 2))``, the expression SpaceTime has always
    trained with (``sqrt(F.mse_loss)`` gives the same loss but gradients that differ in the last bits,
    which would move the committed SpaceTime figures on a rerun)."""
    if mask is None:
        return torch.sqrt(torch.mean((pred - target) ** 2))
    sse, count = _masked_sse(pred, target, mask)
    observed = count > 0
    mse = torch.where(observed, sse / count.clamp(min=1), 1.0)  # 1.0: any positive value keeps sqrt' finite
    return torch.where(observed, torch.sqrt(mse), 0.0)
