"""Compute precision: fp32, or bf16 autocast where the hardware has bf16 matrix units.

One home for three things: run-time detection of bf16 units (:func:`cpu_bf16_support`,
:func:`has_bf16_units`), the Forecaster's ``precision`` setting (``"fp32"``, ``"bf16"``, ``"auto"``;
:func:`resolve_precision`, :func:`autocast`), and what an LLM backbone's ``llm_dtype`` resolves to
(:func:`llm_precision`, used by :func:`tsforecast.llm.backbone.llm_autocast`).

Why bf16 on a CPU: with AMX-BF16 (Intel Sapphire Rapids and later) or AVX512-BF16 (AMD Zen 4, Intel
Cooper Lake) oneDNN runs bf16 matrix products at 2-3x the fp32 rate. SmolLM2-135M over 224 series x 7
tokens: 1.88 s fp32 vs 0.62 s bf16 autocast on a Xeon with AMX; 23.8 s vs 8.0 s on a loaded 2-core AMD
EPYC with AVX512-BF16 (forward + backward 40.3 s vs 17.7 s). Without such units bf16 is emulated and
slower than fp32. Small matrices gain nothing (a 144-row zero-shot predict: 0.07 s fp32, 0.16 s bf16).
Accuracy: benchmarks/README.md, "bf16 on CPUs".
"""
from __future__ import annotations

import contextlib
import functools
import sys
import warnings

import torch

#: the Forecaster's ``precision`` values
PRECISIONS = ("fp32", "bf16", "auto")
#: /proc/cpuinfo flags of bf16 matrix units, the faster first
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
#: an LLM's ``llm_dtype`` -> the precision it names (``"auto"`` is resolved by :func:`llm_precision`)
LLM_DTYPES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


def parse_bf16_flag(cpuinfo: str) -> str | None:
    """The first of ``BF16_CPU_FLAGS`` in the ``flags`` line of a /proc/cpuinfo text, else None."""
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            return next((flag for flag in BF16_CPU_FLAGS if flag in flags), None)
    return None


@functools.lru_cache(maxsize=None)
def cpu_bf16_support(cpuinfo_path: str = "/proc/cpuinfo") -> str | None:
    """The CPU flag of this machine's bf16 matrix units (``"amx_bf16"``, ``"avx512_bf16"``), or None: none,
    or not Linux (where /proc/cpuinfo does not exist; such CPUs then run fp32 under ``"auto"``). Cached."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        with open(cpuinfo_path, encoding="utf-8", errors="replace") as handle:
            return parse_bf16_flag(handle.read())
    except OSError:
        return None


def has_bf16_units(device) -> bool:
    """Whether bf16 autocast is the fast path on ``device``: CUDA (as the GPU runs have always used), or a
    CPU with bf16 matrix units."""
    kind = torch.device(device).type
    return kind == "cuda" or (kind == "cpu" and cpu_bf16_support() is not None)


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}; 'fp32' is the default, "
                         "'auto' takes bf16 where the device has bf16 units")
    return precision


def resolve_precision(precision: str, device) -> str:
    """``"fp32"`` or ``"bf16"``: the setting, with ``"auto"`` = bf16 where ``device`` has bf16 units."""
    if check_precision(precision) == "auto":
        return "bf16" if has_bf16_units(device) else "fp32"
    return precision


def warn_if_slow(precision: str, device) -> None:
    """``precision="bf16"`` works everywhere, but without bf16 units it is emulated: say so."""
    if precision == "bf16" and not has_bf16_units(device):
        warnings.warn(f"precision='bf16' on {torch.device(device)} without bf16 matrix units (no amx_bf16 or "
                      "avx512_bf16 CPU flag): bf16 is emulated there and usually slower than fp32; use "
                      "precision='auto' to take bf16 only where it is fast", UserWarning, stacklevel=3)


def autocast(device, precision: str):
    """The context of a forward pass at ``precision``: no autocast at all for fp32 (the default path is
    untouched), ``torch.autocast(bfloat16)`` for bf16. Parameters and gradients stay fp32."""
    device = torch.device(device)
    if resolve_precision(precision, device) == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def llm_precision(device, llm_dtype: str, outer: str = "fp32") -> str:
    """The precision an LLM backbone computes in (``"fp32"``, ``"bf16"``, ``"fp16"``): its explicit
    ``llm_dtype``; ``"auto"`` = bf16 where ``device`` has bf16 units. ``"float32"`` and ``"auto"`` without
    bf16 units add no autocast of their own, so the LLM runs at the surrounding ``outer`` precision."""
    if llm_dtype != "auto" and llm_dtype not in LLM_DTYPES:
        raise ValueError(f"llm_dtype must be 'auto', 'float32', 'bfloat16' or 'float16', got {llm_dtype!r}")
    if llm_dtype == "auto":
        return "bf16" if has_bf16_units(device) else outer
    return outer if llm_dtype == "float32" else LLM_DTYPES[llm_dtype]


def precision_label(network: torch.nn.Module, device, precision: str) -> str:
    """What a network computes in, for ``training_.precision`` and the benchmark rows: the resolved
    precision, plus ``+llm-<p>`` when it has an LLM backbone (an ``llm_dtype`` attribute) computing at
    another one, e.g. ``"fp32+llm-bf16"`` (fp32 adapters, bf16 autocast LLM)."""
    resolved = resolve_precision(precision, device)
    llm_dtype = getattr(network, "llm_dtype", None)
    if llm_dtype is None:
        return resolved
    llm = llm_precision(device, llm_dtype, resolved)
    return resolved if llm == resolved else f"{resolved}+llm-{llm}"
