"""Input embeddings: value, positional and calendar parts, and the inverted (variate-token) embedding."""
from __future__ import annotations

import torch
from torch import nn


class InvertedEmbedding(nn.Module):
    """One token per variate: each channel's whole look-back (and each calendar feature's) is mapped
    by one Linear(lookback -> d_model) (iTransformer; also S-Mamba).

    ``x`` (B, L, C), ``x_mark`` (B, L, F) or None -> tokens (B, C + F, d_model): the C variate tokens
    first, then the F calendar-feature tokens.
    """

    def __init__(self, lookback: int, d_model: int, dropout: float = 0.1):
        super().__init__()
        self.value = nn.Linear(lookback, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, x_mark: torch.Tensor | None = None) -> torch.Tensor:
        tokens = x if x_mark is None else torch.cat([x, x_mark], dim=2)
        return self.dropout(self.value(tokens.transpose(1, 2)))
