"""Attention variants behind one interface, and the multi-head projection layer that wraps them.

An *inner attention* maps queries ``(B, L, H, E)``, keys ``(B, S, H, E)``, values ``(B, S, H, D)`` to
``(B, L, H, D)``; :class:`AttentionLayer` adds the per-head input projections and the output
projection. Variants: :class:`FullAttention` (scaled dot product), :class:`ProbSparseAttention`
(Informer) and :class:`tsforecast.layers.autocorrelation.AutoCorrelation` (Autoformer).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class FullAttention(nn.Module):
    """softmax(Q Kᵀ / √E) V with dropout on the attention weights; ``causal`` masks future keys."""

    def __init__(self, causal: bool = False, attention_dropout: float = 0.1):
        super().__init__()
        self.causal = causal
        self.attention_dropout = attention_dropout

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        # torch's fused kernel computes exactly this, without materializing intermediate copies.
        out = F.scaled_dot_product_attention(
            queries.transpose(1, 2), keys.transpose(1, 2), values.transpose(1, 2), is_causal=self.causal,
            dropout_p=self.attention_dropout if self.training else 0.0)
        return out.transpose(1, 2)


def _log_count(factor: int, length: int) -> int:
    """Informer's sample sizes ``factor * ceil(ln length)``, capped at ``length``."""
    return min(length, factor * int(math.ceil(math.log(length))))


class ProbSparseAttention(nn.Module):
    """Informer's ProbSparse self-attention (Zhou et al., AAAI 2021, §3.1).

    Each query's sparsity is estimated on ``U = factor * ceil(ln L_K)`` randomly sampled keys as
    ``M = max_j(q k_jᵀ) - sum_j(q k_jᵀ) / L_K``; only the ``u = factor * ceil(ln L_Q)`` queries with the
    largest ``M`` attend (full softmax over all keys, scale 1/√E). The others output the mean of the
    values, or with ``causal`` the running sum of the values (as the reference's masked decoder
    self-attention does), and the attending queries then see only keys up to their own position.

    Deviation (documented): the reference draws the key sample from the global RNG on every call, so
    its forecasts change from call to call even at evaluation. Here training draws from the global RNG
    (seeded by ``fit``), while evaluation uses a fixed-seed generator: forecasts are reproducible and the
    same whatever the batch (the sample is shared by the batch, as in the reference).
    """

    def __init__(self, causal: bool = False, factor: int = 5, eval_seed: int = 0):
        super().__init__()
        self.causal = causal
        self.factor = factor
        self.eval_seed = eval_seed

    def _sample_keys(self, n_queries: int, n_keys: int, n_samples: int, device: torch.device) -> torch.Tensor:
        generator = None if self.training else torch.Generator().manual_seed(self.eval_seed)
        return torch.randint(n_keys, (n_queries, n_samples), generator=generator).to(device)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        q, k, v = queries.transpose(1, 2), keys.transpose(1, 2), values.transpose(1, 2)  # (B, H, L, E)
        n_queries, n_keys = q.shape[2], k.shape[2]
        n_samples, n_top = _log_count(self.factor, n_keys), _log_count(self.factor, n_queries)

        # Sparsity measurement on the sampled keys: (B, H, L_Q, U) scores. Gathering the sampled keys
        # materializes (B, H, L_Q, U, E); when the full (B, H, L_Q, L_K) score matrix is smaller
        # (L_K < U * E, i.e. all the usual look-backs), gather the same scores from it instead.
        sample = self._sample_keys(n_queries, n_keys, n_samples, q.device)
        if n_keys < n_samples * q.shape[-1]:
            all_scores = q @ k.transpose(-2, -1)
            sampled_scores = torch.gather(all_scores, 3, sample.expand(*all_scores.shape[:2], -1, -1))
        else:
            sampled_scores = torch.einsum("bhqe,bhque->bhqu", q, k[:, :, sample])
        sparsity = sampled_scores.amax(-1) - sampled_scores.sum(-1) / n_keys
        top = sparsity.topk(n_top, dim=-1, sorted=False).indices  # (B, H, u)

        q_top = torch.gather(q, 2, top[..., None].expand(-1, -1, -1, q.shape[-1]))
        scores = q_top @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, u, L_K)
        if self.causal:
            future = torch.arange(n_keys, device=q.device) > top[..., None]
            scores = scores.masked_fill(future, float("-inf"))
        attended = torch.softmax(scores, dim=-1) @ v  # (B, H, u, D); the reference applies no dropout here

        if self.causal:
            context = v.cumsum(dim=2)
        else:
            context = v.mean(dim=2, keepdim=True).expand(-1, -1, n_queries, -1)
        context = context.scatter(2, top[..., None].expand(-1, -1, -1, v.shape[-1]), attended)
        return context.transpose(1, 2)


def mix_heads(out: torch.Tensor) -> torch.Tensor:
    """Informer's ``mix``: merge the heads of an inner attention's ``(B, L, H, D)`` output the way the
    reference code line does when its ProbSparse attention returns ``(B, H, L, D)`` and the layer
    reshapes it with ``view(B, L, -1)``: the (H, L, D) block of each sample is read row-major into L rows
    of H * D features, so a row mixes several heads' outputs at several time steps (row ``l`` holds
    the flat elements ``[l * H * D, (l + 1) * H * D)`` of the (H, L, D) block)."""
    batch, length = out.shape[:2]
    return out.transpose(1, 2).reshape(batch, length, -1)


class AttentionLayer(nn.Module):
    """Multi-head wrapper: project (B, L, d_model) inputs to ``n_heads`` heads, run the inner attention,
    merge the heads and project back to d_model.

    ``mix=True`` merges the heads with :func:`mix_heads` (Informer's reference behaviour) instead of
    concatenating each time step's heads.
    """

    def __init__(self, attention: nn.Module, d_model: int, n_heads: int, mix: bool = False):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        d_head = d_model // n_heads
        self.inner = attention
        self.n_heads = n_heads
        self.mix = mix
        self.query = nn.Linear(d_model, d_head * n_heads)
        self.key = nn.Linear(d_model, d_head * n_heads)
        self.value = nn.Linear(d_model, d_head * n_heads)
        self.out = nn.Linear(d_head * n_heads, d_model)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        batch, n_queries, _ = queries.shape
        n_keys, heads = keys.shape[1], self.n_heads
        out = self.inner(self.query(queries).view(batch, n_queries, heads, -1),
                         self.key(keys).view(batch, n_keys, heads, -1),
                         self.value(values).view(batch, n_keys, heads, -1))
        return self.out(mix_heads(out) if self.mix else out.reshape(batch, n_queries, -1))
