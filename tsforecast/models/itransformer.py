"""iTransformer (Liu et al., ICLR 2024, "iTransformer: Inverted Transformers Are Effective for Time Series
Forecasting"; reference code thuml/iTransformer and Time-Series-Library)."""
from __future__ import annotations

import torch
from torch import nn

from ..layers.attention import AttentionLayer, FullAttention
from ..layers.embedding import InvertedEmbedding
from ..layers.encoder import Encoder, EncoderLayer
from ..layers.instance_norm import InstanceNorm
from .base import Dims, ModelSpec


class ITransformerNetwork(nn.Module):
    """Variate tokens -> full-attention encoder over variates -> Linear(d_model -> horizon).

    Each channel's whole (per-window normalised) look-back is one token; calendar features are extra
    tokens that the attention can read but that produce no output. Past covariates are extra channels,
    hence variate tokens the targets attend to; each future-known covariate is one token embedding its
    look-back and forecast-step values (:class:`~tsforecast.layers.embedding.InvertedEmbedding`).
    """

    def __init__(self, dims: Dims, d_model: int, n_heads: int, e_layers: int, d_ff: int, dropout: float,
                 activation: str):
        super().__init__()
        self.output_len = dims.horizon
        self.n_channels = dims.n_channels
        # The reference detaches the window mean but not its std.
        self.norm = InstanceNorm(dims.n_channels, detach_std=False)
        self.embedding = InvertedEmbedding(dims.lookback, d_model, dropout, dims.n_future_covariates, dims.horizon)
        self.encoder = Encoder(
            [EncoderLayer(AttentionLayer(FullAttention(attention_dropout=dropout), d_model, n_heads), d_model, d_ff,
                          dropout, activation) for _ in range(e_layers)],
            norm=nn.LayerNorm(d_model))
        self.head = nn.Linear(d_model, dims.horizon)

    def forward(self, x: torch.Tensor, x_mark: torch.Tensor | None = None, y_mark=None) -> torch.Tensor:
        tokens = self.encoder(self.embedding(self.norm.normalize(x), x_mark, y_mark))
        forecast = self.head(tokens[:, :self.n_channels]).transpose(1, 2)  # only the variate tokens are forecast
        return self.norm.denormalize(forecast)


class ITransformer(ModelSpec):
    """iTransformer: each variate's look-back is one token; full attention across variates, then a linear head.

    ``d_model=None`` takes the reference ETTh1 script's size: 256 for horizons up to 192, 512 beyond;
    ``d_ff=None`` equals ``d_model`` (as in those scripts). ``tsforecast bench`` applies the reference
    scripts' per-dataset sizes (:meth:`reference_config`).

    Faithful to the reference: per-window normalization always on (mean detached, std not), inverted
    Linear(lookback -> d_model) embedding with calendar features as extra tokens, post-LN encoder
    with full softmax attention (scale 1/sqrt(d_head), dropout on the weights) and a final LayerNorm,
    Linear(d_model -> horizon) head keeping the variate tokens only. The feed-forward 1x1 convolutions
    are written as the equivalent Linear layers.

    Covariates: past covariates are extra input channels, so extra variate tokens that every target
    token attends to (their own forecasts are dropped). A future-known covariate is one more token,
    embedded from its values over the look-back AND the forecast steps (``cat(x_mark, y_mark)``) by its
    own Linear(lookback + horizon -> d_model); without covariates the network is the reference one.
    """

    name = "itransformer"
    published_name = "iTransformer"
    uses_time_features = True
    supports_future_covariates = True
    supports_past_covariates = True

    def __init__(self, d_model=None, n_heads=8, e_layers=2, d_ff=None, dropout=0.1, activation="gelu"):
        self.d_model = d_model
        self.n_heads = n_heads
        self.e_layers = e_layers
        self.d_ff = d_ff
        self.dropout = dropout
        self.activation = activation

    def resolved_d_model(self, horizon: int) -> int:
        if self.d_model is not None:
            return int(self.d_model)
        return 256 if horizon <= 192 else 512

    def check(self, dims: Dims) -> None:
        d_model = self.resolved_d_model(dims.horizon)
        if d_model % self.n_heads:
            raise ValueError(f"itransformer: d_model={d_model} is not divisible by n_heads={self.n_heads}")

    def build(self, dims: Dims) -> nn.Module:
        d_model = self.resolved_d_model(dims.horizon)
        return ITransformerNetwork(dims, d_model, self.n_heads, self.e_layers, self.d_ff or d_model, self.dropout,
                                   self.activation)

    @classmethod
    def reference_config(cls, dataset: str, horizon: int) -> dict:
        sizes = {"ETTh2": {"d_model": 128, "d_ff": 128}, "ETTm1": {"d_model": 128, "d_ff": 128},
                 "ETTm2": {"d_model": 128, "d_ff": 128}, "Weather": {"d_model": 512, "d_ff": 512, "e_layers": 3}}
        return {"params": sizes.get(dataset, {}), "training": {}}

    @classmethod
    def test_params(cls) -> dict:
        return {"d_model": 16, "n_heads": 2, "e_layers": 1, "d_ff": 16}
