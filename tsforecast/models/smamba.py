"""S-Mamba (Wang et al., "Is Mamba Effective for Time Series Forecasting?", arXiv 2403.11144)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..layers.embedding import InvertedEmbedding
from ..layers.instance_norm import InstanceNorm
from ..layers.mamba import SCAN_METHODS, BidirectionalMambaLayer, fused_selective_scan
from .base import Dims, ModelSpec


class SMambaNetwork(nn.Module):
    """Variate tokens -> ``e_layers`` bidirectional Mamba layers -> LayerNorm -> Linear(d_model -> horizon)."""

    def __init__(self, dims: Dims, d_model: int, d_ff: int, d_state: int, d_conv: int, expand: int, e_layers: int,
                 dropout: float, use_norm: bool, scan: str):
        super().__init__()
        self.output_len = dims.horizon
        self.n_channels = dims.n_channels
        self.use_norm = use_norm
        # As the reference: the window mean is detached, the std is not (see SMamba's Notes).
        self.norm = InstanceNorm(dims.n_channels, affine=False, detach_std=False)
        self.embedding = InvertedEmbedding(dims.lookback, d_model, dropout, dims.n_future_covariates, dims.horizon)
        self.layers = nn.ModuleList(BidirectionalMambaLayer(d_model, d_ff, d_state, d_conv, expand, dropout, scan)
                                    for _ in range(e_layers))
        self.final_norm = nn.LayerNorm(d_model)
        self.projector = nn.Linear(d_model, dims.horizon)

    def forward(self, x: torch.Tensor, x_mark=None, y_mark=None) -> torch.Tensor:
        if self.use_norm:
            x = self.norm.normalize(x)
        tokens = self.embedding(x, x_mark, y_mark)  # (B, C + F, d_model): variates, then mark features
        for layer in self.layers:
            tokens = layer(tokens)
        out = self.projector(self.final_norm(tokens)).transpose(1, 2)[:, :, :self.n_channels]
        return self.norm.denormalize(out) if self.use_norm else out


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


class SMamba(ModelSpec):
    """S-Mamba: iTransformer's variate-token encoder with each attention block replaced by two Mamba-1
    mixers, one over the tokens in order and one over the flipped order, summed (post-norm), then an FFN.

    Each channel's look-back (and each calendar feature's) is one token (Linear(lookback -> d_model));
    the Mamba scan runs over the C + F tokens; Linear(d_model -> horizon) gives all steps at once. Inputs
    are normalised per window and channel (``use_norm``). The Mamba mixer is our own pure-PyTorch
    implementation (:mod:`tsforecast.layers.mamba`); mamba-ssm's CUDA scan is used only when it imports.

    Covariates, as in :class:`~tsforecast.models.itransformer.ITransformer`: past covariates are extra
    variate tokens; each future-known covariate is one token embedded from its look-back and forecast-step
    values by its own Linear(lookback + horizon -> d_model) (no extra parameters without covariates).

    Parameters
    ----------
    d_model, d_ff : token width and FFN width
    d_state : SSM state size N per channel (the reference scripts use 2)
    d_conv, expand : causal depthwise conv width and inner expansion of the mixer (reference: 2 and 1)
    e_layers : number of encoder layers
    dropout : dropout of the embedding and the FFN
    use_norm : per-window normalisation (the "non-stationary" normalisation of iTransformer)
    scan : "auto" (fused CUDA kernel if usable; else on CUDA the parallel scan from 24 tokens, the loop
        below; on CPU the loop), "loop", "parallel" or "fused"

    Notes
    -----
    Deviations from the reference code (wzhwzhwzh0921/S-D-Mamba): the unused ``man``, ``man2`` and
    attention modules built in each encoder layer are left out (they do not affect the output, only the
    parameter count and the RNG stream at init); the FFN's kernel-size-1 convolutions are written as the
    equivalent Linear layers; test windows are scored in batches rather than with batch size 1 (same
    figures). Training uses the package's loop with the reference settings (Adam, MSE, batch 32, lr
    halved every epoch from the second, 10 epochs, patience 3; per-dataset settings in
    :meth:`reference_config`).

    The per-window normalisation detaches the mean but not the std, as the reference does. (Until
    issue 15 the std was detached too. The network's input is data, which never requires a gradient,
    so the std carries none either way: forward values and parameter gradients are bitwise the same
    (tests/test_ssm.py), and the committed S-Mamba figures stand for this code.)
    """

    name = "smamba"
    published_name = "S-Mamba"
    uses_time_features = True
    supports_future_covariates = True
    supports_past_covariates = True
    fit_mode = "gradient"
    training_defaults = {}  # the reference run.py defaults are the package's (Adam, lr 1e-4, bs 32, 10 epochs)

    def __init__(self, d_model: int = 256, d_ff: int = 256, d_state: int = 2, d_conv: int = 2, expand: int = 1,
                 e_layers: int = 2, dropout: float = 0.1, use_norm: bool = True, scan: str = "auto"):
        self.d_model = d_model
        self.d_ff = d_ff
        self.d_state = d_state
        self.d_conv = d_conv
        self.expand = expand
        self.e_layers = e_layers
        self.dropout = dropout
        self.use_norm = use_norm
        self.scan = scan

    def check(self, dims: Dims) -> None:
        for name in ("d_model", "d_ff", "d_state", "d_conv", "expand", "e_layers"):
            _positive_int(name, getattr(self, name))
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.scan not in SCAN_METHODS:
            raise ValueError(f"scan must be one of {SCAN_METHODS}, got {self.scan!r}")
        if self.scan == "fused" and fused_selective_scan() is None:
            raise ValueError("scan='fused' needs mamba-ssm with its CUDA kernels and a GPU, which are not available "
                             "here; use scan='auto'")

    def build(self, dims: Dims) -> nn.Module:
        self.check(dims)
        return SMambaNetwork(dims, int(self.d_model), int(self.d_ff), int(self.d_state), int(self.d_conv),
                             int(self.expand), int(self.e_layers), float(self.dropout), bool(self.use_norm), self.scan)

    @classmethod
    def test_params(cls) -> dict:
        return {"d_model": 16, "d_ff": 16, "d_state": 2, "e_layers": 1}

    @classmethod
    def reference_config(cls, dataset: str, horizon: int) -> dict:
        """The official scripts' settings (scripts/multivariate_forecasting/*/S_Mamba_*.sh, lookback 96)."""
        d_model, e_layers, lr, epochs = 256, 2, 5e-5, None
        if dataset == "ETTh1":
            lr = 7e-5 if horizon in (96, 192) else 5e-5
        elif dataset == "ETTh2":
            lr = {96: 4e-5, 192: 4e-5, 336: 3e-5, 720: 7e-5}.get(horizon, 4e-5)
        elif dataset == "ETTm1":
            d_model = 256 if horizon == 96 else 128
        elif dataset == "ETTm2":
            d_model = 256 if horizon == 96 else 128
            lr = 3e-5 if horizon == 336 else 5e-5
        elif dataset == "Weather":
            d_model, e_layers, epochs = 512, 3, 5
        else:
            return {"params": {}, "training": {}}
        training = {"learning_rate": lr, "batch_size": 32, "patience": 3, "lr_schedule": "halving",
                    "max_epochs": epochs or 10}
        return {"params": {"d_model": d_model, "d_ff": d_model, "e_layers": e_layers, "d_state": 2},
                "training": training}
