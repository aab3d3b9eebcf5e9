"""Companion-matrix state-space layers (SpaceTime, Zhang et al. ICLR 2023, arXiv 2303.09489).

A companion SSM with state size d has A = S + a e_d^T: the shift matrix S (ones on the sub-diagonal)
plus a learned last column a, so x_{t+1} = A x_t + b u_t, y_t = c^T x_{t+1}, i.e. the causal convolution
y = K * u with K_l = c^T A^l b. Dividing a by its L1 norm keeps every root of the characteristic
polynomial inside the unit disk (stable). Kernels are built by Krylov doubling and applied by FFT.

Channel layout: a layer of ``n_channels`` channels holds ``n_kernels`` kernels; channel ``i`` uses
kernel ``i // (n_channels // n_kernels)`` (each kernel shared by a contiguous group of channels).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def krylov(A: torch.Tensor, b: torch.Tensor, length: int) -> torch.Tensor:
    """``[b, A b, A^2 b, ..., A^(length-1) b]`` as (..., d, length), by repeated squaring (log2 steps).

    ``A``: (..., d, d); ``b``: (..., d).
    """
    columns = b.unsqueeze(-1)
    power = A
    while columns.shape[-1] < length:
        columns = torch.cat([columns, power @ columns], dim=-1)
        power = power @ power
    return columns[..., :length]


def companion_matrix(a: torch.Tensor) -> torch.Tensor:
    """(H, d) last columns -> (H, d, d) companion matrices S + a e_d^T."""
    d = a.shape[-1]
    last_column = torch.zeros(d, dtype=a.dtype, device=a.device)
    last_column[-1] = 1.0
    return torch.diag(a.new_ones(d - 1), -1) + a.unsqueeze(-1) * last_column


def l1_normalize(v: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Divide each row of ``v`` (..., d) by its L1 norm; left as is when the mean norm is below ``eps``
    (as the reference does, so a near-zero initialisation is not blown up)."""
    norm = v.abs().sum(dim=-1, keepdim=True)
    return v / norm if norm.mean() > eps else v


def causal_conv(u: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """``y_t = sum_{l<=t} kernel_l u_{t-l}`` by FFT. ``u``: (B, H, L); ``kernel``: (H, K), K <= L or longer."""
    length = u.shape[-1]
    n = 2 * length
    kernel = kernel[..., :length]
    spectrum = torch.fft.rfft(u, n=n) * torch.fft.rfft(kernel, n=n)
    return torch.fft.irfft(spectrum, n=n)[..., :length]


def _expand_kernels(kernels: torch.Tensor, n_channels: int) -> torch.Tensor:
    """(n_kernels, ...) -> (n_channels, ...): each kernel repeated over its group of channels."""
    return kernels.repeat_interleave(n_channels // kernels.shape[0], dim=0)


class CompanionSSM(nn.Module):
    """Open-loop companion SSM over (B, L, n_channels), with a learned per-channel skip D."""

    def __init__(self, n_channels: int, n_kernels: int, kernel_dim: int):
        super().__init__()
        if n_channels % n_kernels:
            raise ValueError(f"n_channels ({n_channels}) must be a multiple of n_kernels ({n_kernels})")
        self.n_channels = n_channels
        self.a = nn.Parameter(torch.randn(n_kernels, kernel_dim))
        self.b = nn.Parameter(torch.randn(n_kernels, kernel_dim))
        self.c = nn.Parameter(torch.randn(n_kernels, kernel_dim))
        self.skip = nn.Parameter(torch.ones(n_channels))

    def transition(self) -> torch.Tensor:
        return companion_matrix(l1_normalize(self.a))

    def kernel(self, length: int) -> torch.Tensor:
        """(n_kernels, length): K_l = c^T A^l b."""
        return torch.einsum("hdl,hd->hl", krylov(self.transition(), self.b, length), self.c)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        u = u.transpose(1, 2)
        y = causal_conv(u, _expand_kernels(self.kernel(u.shape[-1]), self.n_channels)) + self.skip[:, None] * u
        return y.transpose(1, 2)


def differencing_kernel(order: int) -> torch.Tensor:
    """Coefficients of (1 - z^-1)^order: [1], [1, -1], [1, -2, 1], ..."""
    kernel = torch.ones(1)
    for _ in range(order):
        kernel = torch.cat([kernel, kernel.new_zeros(1)]) - torch.cat([kernel.new_zeros(1), kernel])
    return kernel


def moving_average_residual_kernel(window: int) -> torch.Tensor:
    """u_t minus the mean of the last ``window`` values: delta_0 - 1/window over ``window`` taps."""
    kernel = torch.full((window,), -1.0 / window)
    kernel[0] += 1.0
    return kernel


class PreprocessingSSM(nn.Module):
    """SpaceTime's fixed (untrained) preprocessing layer: differencing of orders 0..n_diff-1 and
    moving-average residuals with random windows, as causal convolutions over (B, L, n_channels).

    The kernels are a buffer (saved with the model), so a loaded model applies the same windows.
    """

    def __init__(self, n_channels: int, n_differencing: int = 4, n_moving_average: int = 4,
                 ma_window_range: tuple[int, int] = (4, 64)):
        super().__init__()
        n_kernels = n_differencing + n_moving_average
        if n_channels % n_kernels:
            raise ValueError(f"n_channels ({n_channels}) must be a multiple of the {n_kernels} preprocessing kernels")
        low, high = ma_window_range
        windows = torch.randint(low, high, (n_moving_average,)).tolist()  # torch's RNG: seeded by the Forecaster
        kernels = [differencing_kernel(k) for k in range(n_differencing)]
        kernels += [moving_average_residual_kernel(w) for w in windows]
        # the widest kernel possible, not the widest drawn: the buffer's shape must not depend on the draw,
        # or a saved model could not be loaded into a freshly built one
        width = max(n_differencing, high - 1)
        stacked = torch.stack([F.pad(k, (0, width - len(k))) for k in kernels])
        # channel i uses kernel i % n_kernels (the 8 kernels tiled over the channels)
        self.n_kernels = n_kernels
        self.register_buffer("kernels", stacked.repeat(n_channels // n_kernels, 1))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """(B, L, n_channels) -> (B, L, n_channels). A (B, L, 1) input stands for the same series in every
        channel (SpaceTime's repeat embedding): it is filtered once per distinct kernel, then tiled."""
        if u.shape[-1] == 1:
            distinct = causal_conv(u.transpose(1, 2), self.kernels[:self.n_kernels])
            return distinct.repeat(1, self.kernels.shape[0] // self.n_kernels, 1).transpose(1, 2)
        return causal_conv(u.transpose(1, 2), self.kernels).transpose(1, 2)


class ClosedLoopCompanionSSM(nn.Module):
    """The SpaceTime decoder: a companion SSM per channel (a, b, c as in :class:`CompanionSSM`, no
    skip) plus a vector k that predicts the layer's own next input, u_t ~ k^T x_t.

    Over the horizon no input is observed, so the state evolves as x_{n+j} = (A + b k^T)^j x_n from the
    state x_n after the look-back. ``forward`` returns the forecast outputs c^T x_{n+j}, j = 0..H-1
    (j = 0 is the open-loop output at the last look-back step, the one-step-ahead forecast).

    Batch-free evaluation: the row vectors c^T (A + b k^T)^j are computed once per call (Krylov doubling on
    the transpose), then contracted with every sample's last state, itself one contraction of the
    Krylov matrix [b, A b, ...] with the time-reversed input. Nothing scales with batch x d^2.
    """

    def __init__(self, n_channels: int, kernel_dim: int):
        super().__init__()
        self.a = nn.Parameter(torch.randn(n_channels, kernel_dim))
        self.b = nn.Parameter(torch.randn(n_channels, kernel_dim))
        self.c = nn.Parameter(torch.randn(n_channels, kernel_dim))
        self.k = nn.Parameter(torch.randn(n_channels, kernel_dim))

    def _normalized(self):
        return (l1_normalize(self.a), l1_normalize(self.b), l1_normalize(self.c), l1_normalize(self.k))

    def last_state(self, u: torch.Tensor, A: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """x_n = sum_j A^(n-1-j) b u_j for u (B, n, H) -> (B, H, d)."""
        powers_b = krylov(A, b, u.shape[1])  # (H, d, n): column m is A^m b
        return torch.einsum("hdm,bmh->bhd", powers_b, u.flip(1))

    def forward(self, u: torch.Tensor, horizon: int) -> torch.Tensor:
        """(B, n, H) look-back inputs -> (B, horizon, H) closed-loop outputs."""
        a, b, c, k = self._normalized()
        A = companion_matrix(a)
        state = self.last_state(u, A, b)
        closed = A + b.unsqueeze(-1) * k.unsqueeze(-2)  # A + b k^T
        readout = krylov(closed.transpose(-1, -2), c, horizon)  # (H, d, horizon): column j is (c^T M^j)^T
        return torch.einsum("hdj,bhd->bjh", readout, state)

    def open_loop(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For training: over the look-back, the outputs c^T x_{t+1} and the next-input predictions
        k^T x_{t+1} (both predict position t+1 from inputs up to t), each (B, n, H)."""
        a, b, c, k = self._normalized()
        powers_b = krylov(companion_matrix(a), b, u.shape[1])
        kernels = torch.einsum("hdl,hd->hl", powers_b, c), torch.einsum("hdl,hd->hl", powers_b, k)
        u_t = u.transpose(1, 2)
        return tuple(causal_conv(u_t, kernel).transpose(1, 2) for kernel in kernels)
