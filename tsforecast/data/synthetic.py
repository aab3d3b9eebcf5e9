"""Synthetic training series: random Gaussian-process kernel compositions (in the spirit of
Chronos' KernelSynth, Ansari et al. 2024; our own code).

Each series draws 1..``max_kernels`` kernels from a bank (periodic with everyday periods, linear
trend, RBF, rational quadratic, white noise, constant), joins them one by one with a random ``+``
or ``*``, and samples one path of the zero-mean GP with that covariance (Cholesky of the kernel
matrix over the time grid), then applies a random scale and offset. Used to pretrain the shipped
``autotimes-smollm2`` adapter beside the bundled datasets' training splits
(``benchmarks/scripts/pretrain_autotimes.py``).
"""
from __future__ import annotations

import numpy as np
import torch

#: everyday periods in steps (quarter hours a day .. days a year); only those with >= 2 cycles are used
PERIODS = (4, 7, 12, 24, 48, 52, 96, 168, 365)
KERNELS = ("periodic", "linear", "rbf", "rational_quadratic", "white_noise", "constant")
# periodic kernels carry the seasonality that real series have, so they are drawn more often
_WEIGHTS = {"periodic": 3.0, "linear": 1.0, "rbf": 1.0, "rational_quadratic": 1.0, "white_noise": 1.0,
            "constant": 0.5}


def _periods(length: int) -> list[int]:
    fitting = [p for p in PERIODS if 2 * p <= length]
    return fitting or [max(length // 2, 2)]


def _kernel(name: str, rng: np.random.Generator, t: np.ndarray, lag_index: np.ndarray, length: int):
    """One kernel matrix over the grid ``t`` (in [0, 1]) and a short description of it. The stationary
    kernels are evaluated on the ``length`` distinct lags of the regular grid and gathered (Toeplitz):
    ``length`` times fewer transcendental evaluations than on the full matrix."""
    if name in ("periodic", "rbf", "rational_quadratic"):
        value, text = _stationary(name, rng, t - t[0], length)
        return value[lag_index], text
    if name == "linear":
        center = float(rng.uniform(-0.5, 1.5))
        return np.outer(t - center, t - center) * float(rng.uniform(0.5, 4.0)), "linear"
    if name == "white_noise":
        sigma = float(rng.choice([0.05, 0.2, 0.5]))
        return np.eye(len(t)) * sigma ** 2, f"noise({sigma})"
    if name == "constant":
        return np.full((len(t), len(t)), float(rng.uniform(0.1, 1.0))), "constant"
    raise ValueError(f"unknown kernel {name!r}; choose from {KERNELS}")


def _stationary(name: str, rng: np.random.Generator, lag: np.ndarray, length: int):
    if name == "periodic":
        period = int(rng.choice(_periods(length)))
        scale = float(rng.choice([0.5, 1.0, 2.0]))  # smoothness of each cycle
        p = period / length  # the period in the grid's units
        return np.exp(-2.0 * np.sin(np.pi * lag / p) ** 2 / scale ** 2), f"periodic(p={period})"
    if name == "rbf":
        ell = float(rng.choice([0.02, 0.1, 0.5]))
        return np.exp(-0.5 * (lag / ell) ** 2), f"rbf(l={ell})"
    if name == "rational_quadratic":
        ell, alpha = float(rng.choice([0.02, 0.1, 0.5])), float(rng.choice([0.1, 1.0, 10.0]))
        return (1.0 + lag ** 2 / (2.0 * alpha * ell ** 2)) ** -alpha, f"rq(l={ell},a={alpha})"
    raise ValueError(f"unknown kernel {name!r}")


def _sample_path(cov: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw from N(0, cov): Cholesky with growing jitter, else a clipped eigendecomposition (a sum or
    product of valid kernels is positive semi-definite, but rounding can leave it slightly indefinite)."""
    z = rng.standard_normal(len(cov))
    base = max(float(np.mean(np.diag(cov))), 1e-12)
    # float32 Cholesky in torch: ~4x faster than numpy's float64 one at 512 steps; the jitter (a white
    # noise of 1% .. 10% of the path's std at most) keeps it stable in single precision
    eye = torch.eye(len(cov), dtype=torch.float32)
    matrix = torch.from_numpy(cov.astype(np.float32))
    for jitter in (1e-4, 1e-3, 1e-2):
        factor, info = torch.linalg.cholesky_ex(matrix + eye * (jitter * base))
        if int(info) == 0:
            return factor.double().numpy() @ z
    values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    return vectors @ (np.sqrt(np.clip(values, 0.0, None)) * z)


def kernel_synth(n_series: int, length: int, seed: int = 0, max_kernels: int = 5,
                 kernels: tuple[str, ...] = KERNELS, return_kernels: bool = False):
    """``n_series`` synthetic series of ``length`` steps, shape ``(n_series, length)`` (float32).

    Deterministic by ``seed``; series ``i`` does not depend on ``n_series`` (each has its own
    child seed), so a longer draw extends a shorter one. ``kernels`` restricts the bank;
    ``return_kernels=True`` also returns each series' kernel formula (e.g. ``"periodic(p=24) * linear"``).
    """
    for name, value, low in (("n_series", n_series, 0), ("length", length, 2), ("max_kernels", max_kernels, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    unknown = [k for k in kernels if k not in KERNELS]
    if unknown or not kernels:
        raise ValueError(f"kernels must be a non-empty subset of {KERNELS}, got {tuple(kernels)!r}")
    weights = np.array([_WEIGHTS[k] for k in kernels])
    weights /= weights.sum()
    t = np.linspace(0.0, 1.0, length)
    steps = np.arange(length)
    lag_index = np.abs(steps[:, None] - steps[None, :])  # the grid is regular: the lag is |i - j| steps
    out = np.empty((n_series, length), dtype=np.float32)
    formulas = []
    # one thread: a 512 x 512 Cholesky is too small to share, and on a busy 2-core machine two torch
    # threads made it 13x slower (measured: 200 series in 13.4 s vs 1.1 s)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for i, child in enumerate(np.random.SeedSequence(seed).spawn(n_series)):
            out[i], formula = _draw(np.random.default_rng(child), kernels, weights, max_kernels, t, lag_index)
            formulas.append(formula)
    finally:
        torch.set_num_threads(threads)
    return (out, formulas) if return_kernels else out


def _draw(rng: np.random.Generator, kernels, weights, max_kernels: int, t: np.ndarray, lag_index: np.ndarray):
    """One series and its kernel formula."""
    length = len(t)
    names = rng.choice(kernels, size=int(rng.integers(1, max_kernels + 1)), p=weights)
    cov, formula = _kernel(str(names[0]), rng, t, lag_index, length)
    for name in names[1:]:
        other, text = _kernel(str(name), rng, t, lag_index, length)
        if rng.random() < 0.5:
            cov, formula = cov + other, f"{formula} + {text}"
        else:
            cov, formula = cov * other, f"({formula}) * {text}"
    path = _sample_path(cov, rng)
    # a random level and scale, so the model meets series of every magnitude (log-uniform 0.1 .. 100)
    scale = 10.0 ** rng.uniform(-1.0, 2.0)
    return (scale * path + rng.normal(0.0, 3.0) * scale).astype(np.float32), formula
