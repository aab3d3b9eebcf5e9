"""Time-LLM (Jin et al., ICLR 2024): patches reprogrammed onto text prototypes, read by a frozen LLM."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..llm.backbone import DEFAULT_LLM, apply_lora, frozen_state_prefixes, llm_autocast, load_backbone
from .base import Dims, ModelSpec

#: our own one-line description of the ETT data (the reference's prompt-bank prose is not copied)
ETT_DESCRIPTION = ("Electricity Transformer Temperature (ETT): hourly and 15-minute readings of a transformer's oil "
                   "temperature and six power-load series from two counties in China.")


class PatchEmbedding(nn.Module):
    """Time-LLM's patching: pad the end by repeating the last value ``stride`` times, cut patches of
    ``patch_len`` every ``stride`` steps, embed them with a circular Conv1d (kernel 3, no bias) along
    the patch axis, so each patch mixes with its neighbours."""

    def __init__(self, patch_len: int, stride: int, d_model: int, dropout: float):
        super().__init__()
        self.patch_len, self.stride = patch_len, stride
        self.conv = nn.Conv1d(patch_len, d_model, kernel_size=3, padding=1, padding_mode="circular", bias=False)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_in", nonlinearity="leaky_relu")
        self.dropout = nn.Dropout(dropout)

    def forward(self, series: torch.Tensor) -> torch.Tensor:
        """(N, L) -> (N, n_patches, d_model)."""
        padded = torch.cat([series, series[:, -1:].expand(-1, self.stride)], dim=1)
        patches = padded.unfold(1, self.patch_len, self.stride)  # (N, P, patch_len)
        return self.dropout(self.conv(patches.transpose(1, 2)).transpose(1, 2))


class Reprogramming(nn.Module):
    """Multi-head cross-attention from patch embeddings (queries) to text prototypes (keys, values);
    the per-head width is ``d_keys`` (the reference passes d_ff), output projected to the LLM width."""

    def __init__(self, d_model: int, n_heads: int, d_keys: int, d_llm: int, dropout: float):
        super().__init__()
        self.n_heads, self.d_keys = n_heads, d_keys
        self.query = nn.Linear(d_model, d_keys * n_heads)
        self.key = nn.Linear(d_llm, d_keys * n_heads)
        self.value = nn.Linear(d_llm, d_keys * n_heads)
        self.out = nn.Linear(d_keys * n_heads, d_llm)
        self.dropout = nn.Dropout(dropout)

    def forward(self, patches: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
        n, p, _ = patches.shape
        h, e = self.n_heads, self.d_keys
        q = self.query(patches).view(n, p, h, e)
        k = self.key(prototypes).view(-1, h, e)
        v = self.value(prototypes).view(-1, h, e)
        scores = torch.einsum("nphe,she->nhps", q, k) / e ** 0.5
        weights = self.dropout(torch.softmax(scores, dim=-1))
        return self.out(torch.einsum("nhps,she->nphe", weights, v).reshape(n, p, h * e))


class TimeLLMNetwork(nn.Module):
    def __init__(self, lookback: int, horizon: int, llm: str, llm_layers: int | None, patch_len: int, stride: int,
                 d_model: int, d_ff: int, n_heads: int, num_prototypes: int, dropout: float, description: str,
                 top_k: int, prompt_decimals: int, llm_dtype: str, lora_r: int, lora_alpha: float,
                 lora_target_modules, train_stride: int):
        super().__init__()
        backbone = load_backbone(llm, llm_layers)
        self.llm, self.tokenizer, self.backbone_reference = backbone.body, backbone.tokenizer, backbone.reference
        d_llm = backbone.hidden_size
        if d_ff > d_llm:
            raise ValueError(f"d_ff={d_ff} exceeds the LLM's hidden size {d_llm} (the head keeps the first d_ff channels)")
        self.output_len, self.lookback, self.d_ff = horizon, lookback, d_ff
        self.top_k, self.prompt_decimals, self.llm_dtype, self.train_stride = top_k, prompt_decimals, llm_dtype, train_stride
        self.n_patches = (lookback - patch_len) // stride + 2
        self.patch_embedding = PatchEmbedding(patch_len, stride, d_model, dropout)
        vocab = self.llm.get_input_embeddings().weight.shape[0]
        self.mapping = nn.Linear(vocab, num_prototypes)
        self.reprogramming = Reprogramming(d_model, n_heads, d_ff, d_llm, dropout)
        self.head = nn.Linear(d_ff * self.n_patches, horizon)
        self.head_dropout = nn.Dropout(dropout)
        if lora_r:
            apply_lora(self.llm, lora_r, lora_alpha, lora_target_modules)
        self._frozen = set(frozen_state_prefixes(self))
        self._prototype_cache: torch.Tensor | None = None
        self.max_series_per_call = 1024
        self.tokenizer.padding_side = "left"
        # The prompt is a fixed head (description, task) and per-series statistics. The head is
        # tokenized once; each call tokenizes only the statistics (about half of each prompt).
        self._head = (f"<|start_prompt|>Dataset description: {description}Task description: forecast the next "
                      f"{horizon} steps given the previous {lookback} steps information; Input statistics:")
        self._head_ids = self._tokenized_head()

    # ------------------------------------------------------------------ hooks
    def trainable_state_dict(self) -> dict:
        return {k: v for k, v in self.state_dict().items() if k not in self._frozen}

    def train(self, mode: bool = True):
        super().train(mode)
        self.llm.eval()
        self._prototype_cache = None  # the mapping changes while training; recompute after
        return self

    # ------------------------------------------------------------------ pieces
    def prototypes(self) -> torch.Tensor:
        """(num_prototypes, d_llm): learned combinations of the whole word-embedding matrix; computed
        once per training step, once and cached in eval mode."""
        if not self.training and self._prototype_cache is not None:
            return self._prototype_cache
        words = self.llm.get_input_embeddings().weight  # (vocab, d_llm), frozen
        protos = self.mapping(words.t()).t()
        if not self.training:
            self._prototype_cache = protos = protos.detach()
        return protos

    def prompt_statistics(self, series: torch.Tensor) -> list[str]:
        """The per-series part of the Prompt-as-Prefix for each normalized series (N, L): min, max,
        median, trend, top-k lags; each text starts with the space that follows the head."""
        with torch.no_grad():
            lows, highs = series.min(dim=1).values, series.max(dim=1).values
            medians = series.median(dim=1).values
            upward = (series[:, -1] - series[:, 0]) > 0  # the sum of first differences
            spectrum = torch.fft.rfft(series.float(), dim=1)
            autocorr = torch.fft.irfft(spectrum * spectrum.conj(), n=series.shape[1], dim=1)
            lags = torch.topk(autocorr, self.top_k, dim=1).indices
        stats = torch.stack([lows, highs, medians], dim=1).cpu().numpy().round(self.prompt_decimals)
        upward, lags = upward.cpu().numpy(), lags.cpu().numpy()
        return [self._statistics_text(lo, hi, med, up, lag) for (lo, hi, med), up, lag in zip(stats, upward, lags)]

    def _statistics_text(self, low, high, median, upward, lags) -> str:
        return (f" min value {low:g}, max value {high:g}, median value {median:g}, the trend of input is "
                f"{'upward' if upward else 'downward'}, top {self.top_k} lags are : {list(map(int, lags))}<|<end_prompt>|>")

    def prompt_texts(self, series: torch.Tensor) -> list[str]:
        """The whole prompt of each normalized series (N, L)."""
        return [self._head + text for text in self.prompt_statistics(series)]

    def _tokenized_head(self) -> torch.Tensor | None:
        """The head's token ids, if tokenizing head and statistics apart gives the ids of the whole
        prompt (true for tokenizers that split words at spaces, checked here on sample prompts);
        None otherwise, and whole prompts are tokenized on every call."""
        head = self.tokenizer(self._head)["input_ids"]
        samples = [self._statistics_text(-1.234, 2.5, 0.01, True, range(self.top_k)),
                   self._statistics_text(0.5, 12.75, -3e-05, False, range(24, 24 + self.top_k))]
        for text in samples:
            whole = self.tokenizer(self._head + text)["input_ids"]
            if head + self.tokenizer(text, add_special_tokens=False)["input_ids"] != whole:
                return None
        return torch.tensor(head)

    def prompt_ids(self, series: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded token ids and attention mask of every series' prompt, (N, T) each: the same as
        tokenizing :meth:`prompt_texts` with left padding."""
        statistics = self.prompt_statistics(series)
        head = self._head_ids
        if head is None:
            prompt = self.tokenizer([self._head + text for text in statistics], return_tensors="pt", padding=True,
                                    truncation=True, max_length=2048)
            return prompt["input_ids"], prompt["attention_mask"]
        tail = self.tokenizer(statistics, add_special_tokens=False, return_tensors="pt", padding=True)
        tail_ids, tail_mask = tail["input_ids"], tail["attention_mask"]
        n, width = tail_ids.shape
        columns = torch.arange(len(head) + width)
        # each row: padding, then the head, then its statistics (left padding keeps prompt and patches contiguous)
        offset = columns - (width - tail_mask.sum(dim=1, keepdim=True))  # column relative to the row's head start
        in_head, in_tail = (offset >= 0) & (offset < len(head)), offset >= len(head)
        ids = torch.where(in_head, head[offset.clamp(0, len(head) - 1)], self.tokenizer.pad_token_id)
        ids = torch.where(in_tail, tail_ids.gather(1, (columns - len(head)).clamp(min=0).expand(n, -1)), ids)
        return ids, (in_head | in_tail).long()

    def forward(self, x, x_mark=None, y_mark=None) -> torch.Tensor:
        batch, length, n_channels = x.shape
        if not torch.is_grad_enabled() and batch * n_channels > self.max_series_per_call:
            # Evaluation batches are large (1024 windows); the LLM's activations for all of them at
            # once (~200 tokens per series) do not fit in GPU memory, so run them in chunks.
            step = max(1, self.max_series_per_call // n_channels)
            return torch.cat([self.forward(x[i:i + step]) for i in range(0, batch, step)])
        series = x.permute(0, 2, 1).reshape(-1, length)
        mean = series.mean(dim=1, keepdim=True).detach()
        std = torch.sqrt(series.var(dim=1, keepdim=True, unbiased=False) + 1e-5).detach()
        series = (series - mean) / std
        ids, prompt_mask = (t.to(x.device) for t in self.prompt_ids(series))
        prompt_embeds = self.llm.get_input_embeddings()(ids)
        patches = self.reprogramming(self.patch_embedding(series), self.prototypes())
        embeds = torch.cat([prompt_embeds, patches.to(prompt_embeds.dtype)], dim=1)
        # Deviation (fix): the reference passes no mask, so prompt padding is attended to.
        mask = torch.cat([prompt_mask, prompt_mask.new_ones(len(ids), patches.shape[1])], dim=1)
        # Positions count real tokens only, so left padding does not shift them: with absolute position
        # embeddings (GPT-2) a window's forecast would otherwise depend on the batch it is in.
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        with llm_autocast(x.device, self.llm_dtype):
            hidden = self.llm(inputs_embeds=embeds, attention_mask=mask, position_ids=positions).last_hidden_state
        hidden = hidden.float()[:, -self.n_patches:, :self.d_ff]  # (N, P, d_ff)
        out = self.head_dropout(self.head(hidden.transpose(1, 2).reshape(len(ids), -1)))  # d_ff-major flatten
        out = out * std + mean
        return out.reshape(batch, n_channels, -1).permute(0, 2, 1)


class TimeLLM(ModelSpec):
    """Time-LLM (Jin et al., ICLR 2024; KimMeen/Time-LLM): reprogramming a frozen LLM for forecasting.

    Per channel: non-affine per-window normalization; patches of ``patch_len`` every ``stride`` steps
    (end padded by repeating the last value) embedded by a circular Conv1d; multi-head
    cross-attention from the patches onto ``num_prototypes`` text prototypes (a learned linear map of
    the LLM's whole word-embedding matrix); a Prompt-as-Prefix (dataset description, task,
    min/max/median, trend, top-k autocorrelation lags) in front; the frozen LLM; the first ``d_ff``
    channels of the last ``n_patches`` positions flattened into a linear head to ``horizon`` steps.
    One model per horizon (direct, non-autoregressive).

    Parameters
    ----------
    llm, llm_layers, llm_dtype, lora_r, lora_alpha, lora_target_modules, train_stride :
        As for :class:`~tsforecast.models.autotimes.AutoTimes` (default LLM SmolLM2-135M-Instruct,
        Q4_1 GGUF de-quantised to fp32; all layers, the analogue of the reference's "all 32"),
        including the ablation backbones ``"none"``, ``"attention"``, ``"transformer"`` and
        ``"random:<name>"`` (Tan et al., NeurIPS 2024). They keep the default LLM's word embeddings
        (frozen) and tokenizer, so the prototypes, the prompt and the head are those of the full model;
        with ``"none"`` the prompt has no effect (nothing mixes positions), as in Tan et al.'s
        "w/o LLM"; attention and Transformer block are causal and mask the prompt padding.
    patch_len, stride, d_model, d_ff, n_heads, num_prototypes, dropout :
        Reference ETTh1 settings: 16, 8, 32, 128, 8, 1000, 0.1.
    description : str
        The dataset description of the prompt.
    top_k : int
        Number of autocorrelation lags in the prompt (5).
    prompt_decimals : int
        Decimals of the prompt's statistics.

    Notes
    -----
    Deviations from the reference, each on purpose: (1) an attention mask over the prompt padding
    (the reference attends to pad tokens) and left padding, so prompt and patches are contiguous,
    with position ids counting real tokens only (so with absolute position embeddings, GPT-2, a
    window's forecast does not depend on the padding its batch gives it);
    (2) the best validation checkpoint is restored before testing (the shared training loop), and
    (3) every test window is scored (the reference drops the last incomplete batch) — fixes of
    known defects; (4) the prompt statistics are rounded to ``prompt_decimals`` (reference: full
    float precision, many more tokens); (5) the description is our own sentence, not the
    reference's prompt-bank text; (6) the default LLM is SmolLM2-135M-Instruct (4-bit, de-quantised)
    instead of LLaMA-7B; with its 49,152-word vocabulary the mapping layer alone has 49.2M weights;
    (7) prototypes are cached in eval mode (same values); (8) the learning rate is the reference's
    *effective* one (4e-4 halved every epoch, the result of its unstepped OneCycleLR) under the shared
    "halving" schedule; LoRA and ``train_stride`` are additions.

    The ablation backbones are not benchmarked for Time-LLM yet (Tan et al. found them as good or
    better in 26 of 26 cases): on the project's 2-core CPU one training step of 16 windows at look-back
    512 with 4 SmolLM2 blocks takes about 22 s (forward alone 6 s; no LLM: 4.7 s, much of it the
    prototype mapping over the 49k-word vocabulary), so 5 arms x 3 seeds need a GPU. AutoTimes'
    ablations (CPU budgets, 3 seeds) are in benchmarks/README.md: there the pretrained blocks did not help.
    """

    name = "timellm"
    published_name = "Time-LLM"
    fit_mode = "gradient"
    uses_time_features = False
    # KimMeen/Time-LLM scripts/TimeLLM_ETTh1.sh: batch 24, 100 epochs, patience 10; lr "0.01" is 4e-4 in effect.
    training_defaults = {"batch_size": 24, "learning_rate": 4e-4, "max_epochs": 100, "patience": 10,
                         "lr_schedule": "halving"}

    def __init__(self, llm: str = DEFAULT_LLM, llm_layers: int | None = None, patch_len: int = 16, stride: int = 8,
                 d_model: int = 32, d_ff: int = 128, n_heads: int = 8, num_prototypes: int = 1000,
                 dropout: float = 0.1, description: str = ETT_DESCRIPTION, top_k: int = 5, prompt_decimals: int = 3,
                 llm_dtype: str = "auto", lora_r: int = 0, lora_alpha: float = 16.0,
                 lora_target_modules: tuple[str, ...] = ("q_proj", "v_proj"), train_stride: int = 1):
        self.llm = llm
        self.llm_layers = llm_layers
        self.patch_len = patch_len
        self.stride = stride
        self.d_model = d_model
        self.d_ff = d_ff
        self.n_heads = n_heads
        self.num_prototypes = num_prototypes
        self.dropout = dropout
        self.description = description
        self.top_k = top_k
        self.prompt_decimals = prompt_decimals
        self.llm_dtype = llm_dtype
        self.lora_r = lora_r
        self.lora_alpha = lora_alpha
        self.lora_target_modules = lora_target_modules
        self.train_stride = train_stride

    def check(self, dims: Dims) -> None:
        for name in ("patch_len", "stride", "d_model", "d_ff", "n_heads", "num_prototypes", "top_k", "train_stride"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if dims.lookback < self.patch_len:
            raise ValueError(f"Time-LLM needs lookback >= patch_len={self.patch_len}, got {dims.lookback}")
        if self.top_k > dims.lookback:
            raise ValueError(f"top_k={self.top_k} lags cannot exceed the lookback {dims.lookback}")
        if isinstance(self.lora_r, bool) or not isinstance(self.lora_r, (int, np.integer)) or self.lora_r < 0:
            raise ValueError(f"lora_r must be an int >= 0 (0: no LoRA), got {self.lora_r!r}")

    def build(self, dims: Dims) -> nn.Module:
        self.check(dims)
        return TimeLLMNetwork(dims.lookback, dims.horizon, self.llm, self.llm_layers, int(self.patch_len),
                              int(self.stride), int(self.d_model), int(self.d_ff), int(self.n_heads),
                              int(self.num_prototypes), float(self.dropout), self.description, int(self.top_k),
                              int(self.prompt_decimals), self.llm_dtype, int(self.lora_r), float(self.lora_alpha),
                              tuple(self.lora_target_modules), int(self.train_stride))

    @classmethod
    def test_params(cls) -> dict:
        return {"llm": "random-llama:16x2", "patch_len": 4, "stride": 2, "d_model": 8, "d_ff": 8, "n_heads": 2,
                "num_prototypes": 10, "top_k": 3, "description": "test data."}
