"""Encoder and decoder stacks of the Transformer forecasters (post-LN, as in the reference code).

The position-wise feed-forward network is the reference's pair of 1x1 convolutions, written as the
equivalent pair of Linear layers over the feature axis (same function, same initialisation
distribution, no transposes).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .decomposition import SeriesDecomposition

ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu}


def activation_function(name: str):
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


class FeedForward(nn.Module):
    """d_model -> d_ff -> d_model with activation and dropout after each layer."""

    def __init__(self, d_model: int, d_ff: int, dropout: float, activation: str, bias: bool = True):
        super().__init__()
        self.expand = nn.Linear(d_model, d_ff, bias=bias)
        self.contract = nn.Linear(d_ff, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.activation = activation_function(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.contract(self.dropout(self.activation(self.expand(x)))))


class EncoderLayer(nn.Module):
    """x + attention -> LayerNorm -> + feed-forward -> LayerNorm."""

    def __init__(self, attention: nn.Module, d_model: int, d_ff: int, dropout: float = 0.1, activation: str = "gelu"):
        super().__init__()
        self.attention = attention
        self.feed_forward = FeedForward(d_model, d_ff, dropout, activation)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.dropout(self.attention(x, x, x)))
        return self.norm2(x + self.feed_forward(x))


class DistillingLayer(nn.Module):
    """Informer's self-attention distilling between encoder layers: Conv1d(k=3, circular) -> BatchNorm ->
    ELU -> MaxPool(k=3, stride 2), which halves the sequence (96 -> 49)."""

    def __init__(self, d_model: int):
        super().__init__()
        self.conv = nn.Conv1d(d_model, d_model, kernel_size=3, padding=2, padding_mode="circular")
        self.norm = nn.BatchNorm1d(d_model)
        self.pool = nn.MaxPool1d(kernel_size=3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(F.elu(self.norm(self.conv(x.transpose(1, 2))))).transpose(1, 2)


class Encoder(nn.Module):
    """Encoder layers, optionally with a distilling layer after each but the last, then a final norm."""

    def __init__(self, layers: list[nn.Module], distilling: list[nn.Module] | None = None, norm: nn.Module | None = None):
        super().__init__()
        if distilling and len(distilling) != len(layers) - 1:
            raise ValueError("one distilling layer goes between each pair of encoder layers")
        self.layers = nn.ModuleList(layers)
        self.distilling = nn.ModuleList(distilling or [])
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.distilling):
                x = self.distilling[i](x)
        return x if self.norm is None else self.norm(x)


class DecoderLayer(nn.Module):
    """x + self-attention -> LN -> + cross-attention on the encoder output -> LN -> + feed-forward -> LN."""

    def __init__(self, self_attention: nn.Module, cross_attention: nn.Module, d_model: int, d_ff: int,
                 dropout: float = 0.1, activation: str = "gelu"):
        super().__init__()
        self.self_attention = self_attention
        self.cross_attention = cross_attention
        self.feed_forward = FeedForward(d_model, d_ff, dropout, activation)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.dropout(self.self_attention(x, x, x)))
        x = self.norm2(x + self.dropout(self.cross_attention(x, memory, memory)))
        return self.norm3(x + self.feed_forward(x))


class Decoder(nn.Module):
    """Decoder layers, final norm, projection to the output channels."""

    def __init__(self, layers: list[nn.Module], norm: nn.Module, projection: nn.Module):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = norm
        self.projection = projection

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, memory)
        return self.projection(self.norm(x))


# ---------------------------------------------------------------- Autoformer's decomposition layers
class DecompositionEncoderLayer(nn.Module):
    """Autoformer encoder layer: x + attention -> keep the seasonal part -> + feed-forward (no bias) -> keep
    the seasonal part. The trend is discarded: the encoder models seasonality only."""

    def __init__(self, attention: nn.Module, d_model: int, d_ff: int, moving_avg: int = 25, dropout: float = 0.1,
                 activation: str = "gelu"):
        super().__init__()
        self.attention = attention
        self.feed_forward = FeedForward(d_model, d_ff, dropout, activation, bias=False)
        self.decomposition1 = SeriesDecomposition(moving_avg)
        self.decomposition2 = SeriesDecomposition(moving_avg)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, _ = self.decomposition1(x + self.dropout(self.attention(x, x, x)))
        x, _ = self.decomposition2(x + self.feed_forward(x))
        return x


class DecompositionDecoderLayer(nn.Module):
    """Autoformer decoder layer: self-attention, cross-attention and feed-forward, each followed by a
    decomposition; the three trend parts are summed and projected to the output channels by a
    Conv1d(k=3, circular, no bias), to be accumulated onto the running trend."""

    def __init__(self, self_attention: nn.Module, cross_attention: nn.Module, d_model: int, n_channels: int,
                 d_ff: int, moving_avg: int = 25, dropout: float = 0.1, activation: str = "gelu"):
        super().__init__()
        self.self_attention = self_attention
        self.cross_attention = cross_attention
        self.feed_forward = FeedForward(d_model, d_ff, dropout, activation, bias=False)
        self.decomposition1 = SeriesDecomposition(moving_avg)
        self.decomposition2 = SeriesDecomposition(moving_avg)
        self.decomposition3 = SeriesDecomposition(moving_avg)
        self.dropout = nn.Dropout(dropout)
        self.trend_projection = nn.Conv1d(d_model, n_channels, kernel_size=3, padding=1, padding_mode="circular",
                                          bias=False)

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, trend1 = self.decomposition1(x + self.dropout(self.self_attention(x, x, x)))
        x, trend2 = self.decomposition2(x + self.dropout(self.cross_attention(x, memory, memory)))
        x, trend3 = self.decomposition3(x + self.feed_forward(x))
        trend = self.trend_projection((trend1 + trend2 + trend3).transpose(1, 2)).transpose(1, 2)
        return x, trend


class DecompositionDecoder(nn.Module):
    """Autoformer decoder: refines the seasonal part layer by layer while accumulating the trend;
    returns ``(seasonal projected to the channels, trend)``."""

    def __init__(self, layers: list[nn.Module], norm: nn.Module, projection: nn.Module):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = norm
        self.projection = projection

    def forward(self, x: torch.Tensor, memory: torch.Tensor, trend: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for layer in self.layers:
            x, residual_trend = layer(x, memory)
            trend = trend + residual_trend
        return self.projection(self.norm(x)), trend
