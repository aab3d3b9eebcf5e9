"""Mamba-1 in pure PyTorch (Gu & Dao 2023): the selective scan and the mixer block, CPU-capable.

The mixer follows ``mamba_ssm.Mamba`` (v1.2) equation for equation and uses its initialisation:

    [x, z] = in_proj(u);   x = SiLU(causal depthwise conv(x))
    [dt, B, C] = x_proj(x);  delta = softplus(dt_proj(dt));  A = -exp(A_log)
    h_t = exp(delta_t A) * h_{t-1} + delta_t B_t x_t     (zero-order hold for A, Euler step for B)
    y_t = <C_t, h_t> + D x_t;   out = out_proj(y * SiLU(z))

Three ways to run the scan, all computing the same recurrence:

* ``"loop"``: a Python loop over time, one fused multiply-add per step. For the short sequences of
  variate tokens (11 for ETT, 25 for Weather) it is the fastest on CPU;
* ``"parallel"``: a Hillis-Steele doubling scan, log2(T) vectorised steps;
* ``"fused"``: ``mamba_ssm``'s CUDA kernel, used only when it imports and the input is on CUDA.

``"auto"`` takes the fused kernel when it is usable, else loop or parallel by device and length
(:data:`PARALLEL_SCAN_MIN_LENGTH`; timings in benchmarks/README.md).
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

SCAN_METHODS = ("auto", "loop", "parallel", "fused")
#: from this length on "auto" uses the parallel scan, per device type (measured on an H100: the loop wins
#: at 11 steps, the doubling scan from 25 on, 5x at 325). On CPU the loop was faster at every length
#: measured (11 to 325: the doubling scan's O(T log T) work and copies cost more than the loop's overhead),
#: so the CPU always loops.
PARALLEL_SCAN_MIN_LENGTH = {"cuda": 24}


@functools.lru_cache(maxsize=1)
def fused_selective_scan():
    """``mamba_ssm``'s CUDA ``selective_scan_fn``, or None where it cannot be used (no package, no CUDA
    build; released versions fail at import without their compiled extension)."""
    if not torch.cuda.is_available():
        return None
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except Exception:  # ImportError, or the extension failing to load: fall back to pure torch
        return None
    return selective_scan_fn


def call_fused_scan(scan_fn, u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                    C: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
    """Run ``mamba_ssm``'s ``selective_scan_fn`` (its channels-first layout: ``u``, ``delta`` (batch,
    channels, T); ``A`` (channels, N); ``B``, ``C`` (batch, N, T); fp32 ``D``; ``delta`` already positive,
    so no softplus) on this module's (batch, T, ...) tensors."""
    y = scan_fn(u.transpose(1, 2).contiguous(), delta.transpose(1, 2).contiguous(), A.contiguous(),
                B.transpose(1, 2).contiguous(), C.transpose(1, 2).contiguous(), D.float())
    return y.transpose(1, 2)


def scan_loop(decay: torch.Tensor, drive: torch.Tensor) -> torch.Tensor:
    """States of ``h_t = decay_t * h_{t-1} + drive_t`` (h_{-1} = 0) by a loop over time.

    ``decay``, ``drive``: (B, T, ...) -> states (B, T, ...).
    """
    state = torch.zeros_like(drive[:, 0])
    states = []
    # unbind once: per-step indexing would add one backward op per step
    for a_t, b_t in zip(decay.unbind(1), drive.unbind(1)):
        state = torch.addcmul(b_t, a_t, state)
        states.append(state)
    return torch.stack(states, dim=1)


def scan_parallel(decay: torch.Tensor, drive: torch.Tensor) -> torch.Tensor:
    """The same states as :func:`scan_loop` by Hillis-Steele doubling: after the step with offset s,
    each position holds the composition of the (up to) 2s affine maps ending there; log2(T) steps."""
    length = decay.shape[1]
    offset = 1
    while offset < length:
        drive = torch.cat([drive[:, :offset], torch.addcmul(drive[:, offset:], decay[:, offset:], drive[:, :-offset])], 1)
        decay = torch.cat([decay[:, :offset], decay[:, offset:] * decay[:, :-offset]], 1)
        offset *= 2
    return drive


def selective_scan(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                   D: torch.Tensor, method: str = "auto") -> torch.Tensor:
    """Mamba-1 selective scan.

    ``u``, ``delta``: (batch, T, channels); ``A``: (channels, N); ``B``, ``C``: (batch, T, N) (shared by
    all channels); ``D``: (channels,). Returns y (batch, T, channels).
    """
    if method not in SCAN_METHODS:
        raise ValueError(f"unknown scan method {method!r}; choose one of {SCAN_METHODS}")
    fused = fused_selective_scan() if method in ("auto", "fused") and u.is_cuda else None
    if method == "fused" and fused is None:
        raise RuntimeError("scan='fused' needs mamba-ssm with its CUDA kernels and a CUDA input; use 'auto'")
    if fused is not None:
        return call_fused_scan(fused, u, delta, A, B, C, D)
    if method == "auto":
        threshold = PARALLEL_SCAN_MIN_LENGTH.get(u.device.type)
        method = "parallel" if threshold is not None and u.shape[1] >= threshold else "loop"
    decay = torch.exp(delta.unsqueeze(-1) * A)  # (batch, T, channels, N)
    drive = (delta * u).unsqueeze(-1) * B.unsqueeze(2)  # (batch, T, channels, N)
    states = scan_loop(decay, drive) if method == "loop" else scan_parallel(decay, drive)
    return torch.einsum("btdn,btn->btd", states, C) + u * D


class MambaMixer(nn.Module):
    """One Mamba-1 mixer, (B, T, d_model) -> (B, T, d_model), without norm or residual (the caller adds them).

    Parameter names, shapes and initialisation follow ``mamba_ssm.Mamba``: ``A_log`` = log(1..N) per
    channel (S4D-real), ``D`` = 1, ``dt_proj`` weight U(+-dt_rank^-1/2) and bias softplus^-1(dt) with dt
    log-uniform in [dt_min, dt_max] (floor ``dt_init_floor``).
    """

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 1, dt_rank: int | None = None,
                 dt_min: float = 1e-3, dt_max: float = 0.1, dt_init_floor: float = 1e-4, scan: str = "auto"):
        super().__init__()
        if scan not in SCAN_METHODS:
            raise ValueError(f"unknown scan method {scan!r}; choose one of {SCAN_METHODS}")
        self.d_inner = d_inner = expand * d_model
        self.d_state = d_state
        self.dt_rank = dt_rank = math.ceil(d_model / 16) if dt_rank is None else dt_rank
        self.scan = scan
        self.in_proj = nn.Linear(d_model, 2 * d_inner, bias=False)
        self.conv1d = nn.Conv1d(d_inner, d_inner, d_conv, groups=d_inner, padding=d_conv - 1, bias=True)
        self.x_proj = nn.Linear(d_inner, dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(dt_rank, d_inner, bias=True)
        nn.init.uniform_(self.dt_proj.weight, -dt_rank ** -0.5, dt_rank ** -0.5)
        dt = torch.exp(torch.rand(d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=dt_init_floor)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus^-1(dt)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(d_inner, 1))
        self.D = nn.Parameter(torch.ones(d_inner))
        self.out_proj = nn.Linear(d_inner, d_model, bias=False)

    def ssm_inputs(self, u: torch.Tensor):
        """(x, z, delta, A, B, C): everything the scan needs, from the block input u (B, T, d_model)."""
        length = u.shape[1]
        x, z = self.in_proj(u).chunk(2, dim=-1)
        x = F.silu(self.conv1d(x.transpose(1, 2))[..., :length].transpose(1, 2))  # causal: keep the first T outputs
        dt, B, C = self.x_proj(x).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.softplus(self.dt_proj(dt))
        return x, z, delta, -torch.exp(self.A_log.float()), B, C

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        x, z, delta, A, B, C = self.ssm_inputs(u)
        y = selective_scan(x, delta, A, B, C, self.D, method=self.scan)
        return self.out_proj(y * F.silu(z))


class BidirectionalMambaLayer(nn.Module):
    """S-Mamba's encoder layer (post-norm): a forward and a flipped Mamba mixer over the token axis,
    summed into the residual, then a position-wise FFN (d_model -> d_ff -> d_model, GELU)."""

    def __init__(self, d_model: int, d_ff: int, d_state: int, d_conv: int = 2, expand: int = 1,
                 dropout: float = 0.1, scan: str = "auto"):
        super().__init__()
        self.forward_mixer = MambaMixer(d_model, d_state, d_conv, expand, scan=scan)
        self.backward_mixer = MambaMixer(d_model, d_state, d_conv, expand, scan=scan)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(d_ff, d_model), nn.Dropout(dropout))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        mixed = self.forward_mixer(tokens) + self.backward_mixer(tokens.flip(1)).flip(1)
        tokens = self.norm1(tokens + mixed)
        return self.norm2(tokens + self.ffn(tokens))
