"""The KernelSynth-style generator of synthetic pretraining series (tsforecast.data.synthetic)."""
import re
import time

import numpy as np
import pytest
import torch

from tsforecast.data.synthetic import KERNELS, PERIODS, kernel_synth


def test_shape_dtype_finite_and_determinism():
    x = kernel_synth(20, 128, seed=3)
    assert x.shape == (20, 128) and x.dtype == np.float32
    assert np.isfinite(x).all()
    np.testing.assert_array_equal(x, kernel_synth(20, 128, seed=3))
    assert not np.allclose(x, kernel_synth(20, 128, seed=4))
    # series i has its own child seed: a shorter draw is a prefix of a longer one
    np.testing.assert_array_equal(kernel_synth(5, 128, seed=3), x[:5])


def test_series_differ_in_level_scale_and_shape():
    x = kernel_synth(40, 256, seed=0)
    stds = x.std(axis=1)
    assert stds.max() / max(stds.min(), 1e-9) > 10  # log-uniform random scale
    assert len(np.unique(np.round(x[:, 0], 3))) == 40


def _dominant_period(series: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(series - series.mean())) ** 2
    spectrum[0] = 0
    return len(series) / int(np.argmax(spectrum))


def test_periodic_kernel_shows_its_period_in_the_spectrum():
    length = 480
    x, formulas = kernel_synth(30, length, seed=1, max_kernels=1, kernels=("periodic",), return_kernels=True)
    periods = [int(re.fullmatch(r"periodic\(p=(\d+)\)", f).group(1)) for f in formulas]
    assert set(periods) <= {p for p in PERIODS if 2 * p <= length}
    assert len(set(periods)) >= 4  # variety: several different seasonalities
    matched = 0
    for series, period in zip(x, periods):
        # the spectrum peaks at the period or one of its harmonics (a sharp periodic kernel has several)
        found = _dominant_period(series)
        harmonics = [period / k for k in range(1, 6)]
        matched += any(abs(found - h) / h < 0.1 for h in harmonics)
    assert matched >= 0.9 * len(periods)


def test_trend_kernel_gives_a_trend_and_noise_is_rough():
    trend = kernel_synth(10, 200, seed=2, max_kernels=1, kernels=("linear",))
    noise = kernel_synth(10, 200, seed=2, max_kernels=1, kernels=("white_noise",))

    def lag1(v):
        v = v - v.mean()
        return float((v[1:] * v[:-1]).sum() / (v * v).sum())

    assert min(lag1(s) for s in trend) > 0.95  # a straight line (plus 1% jitter) is nearly perfectly autocorrelated
    assert max(abs(lag1(s)) for s in noise) < 0.3


def test_every_kernel_combination_samples_cleanly():
    # products of low-rank kernels are nearly singular: the jittered Cholesky / eigh fallback must cope
    x, formulas = kernel_synth(60, 300, seed=7, max_kernels=5, return_kernels=True)
    assert np.isfinite(x).all()
    used = " ".join(formulas)
    for name in ("periodic", "linear", "rbf", "rq", "noise", "constant"):
        assert name in used
    assert any("*" in f for f in formulas) and any("+" in f for f in formulas)


def test_speed_and_threads_restored():
    threads = torch.get_num_threads()
    start = time.perf_counter()
    kernel_synth(100, 512, seed=0)
    assert time.perf_counter() - start < 10.0  # ~0.4 s on an idle core; 1,000 x 512 in ~3.5 s on a busy 2-core machine
    assert torch.get_num_threads() == threads


@pytest.mark.parametrize("kwargs, match", [
    ({"n_series": -1, "length": 10}, "n_series"),
    ({"n_series": 2, "length": 1}, "length"),
    ({"n_series": 2, "length": 10, "max_kernels": 0}, "max_kernels"),
    ({"n_series": 2, "length": 10, "kernels": ("sine",)}, "subset of"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kernel_synth(**kwargs)


def test_short_series_still_get_a_period():
    x, formulas = kernel_synth(3, 6, seed=0, max_kernels=1, kernels=("periodic",), return_kernels=True)
    assert np.isfinite(x).all() and all(f == "periodic(p=3)" for f in formulas)
    assert set(KERNELS) >= {"periodic", "linear"}
