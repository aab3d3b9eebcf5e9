"""State-space layers and models: the Mamba selective scan and mixer, the companion SSM kernels and the
closed-loop decoder, each against a direct sequential re-derivation; S-Mamba and SpaceTime specs."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from tsforecast import Forecaster, SMamba, SpaceTime
from tsforecast.layers.companion_ssm import (ClosedLoopCompanionSSM, CompanionSSM, PreprocessingSSM, companion_matrix,
                                             differencing_kernel, krylov, l1_normalize)
from tsforecast.layers.mamba import (MambaMixer, call_fused_scan, fused_selective_scan, scan_loop, scan_parallel,
                                     selective_scan)
from tsforecast.models.base import Dims


# ---------------------------------------------------------------------- Mamba
def direct_selective_scan(u, delta, A, B, C, D):
    """Mamba-1's recurrence written out per time step, channel and state (the maths of mamba_ssm's
    ``selective_scan_ref``, re-derived): h = exp(delta a) h + delta b x; y = <c, h> + D x."""
    batch, length, channels = u.shape
    n_state = A.shape[1]
    y = torch.zeros_like(u)
    for i in range(batch):
        h = torch.zeros(channels, n_state, dtype=u.dtype)
        for t in range(length):
            for d in range(channels):
                h[d] = torch.exp(delta[i, t, d] * A[d]) * h[d] + delta[i, t, d] * B[i, t] * u[i, t, d]
                y[i, t, d] = (h[d] * C[i, t]).sum() + D[d] * u[i, t, d]
    return y


def random_scan_inputs(length, batch=2, channels=3, n_state=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(batch, length, channels, generator=g, dtype=torch.float64)
    delta = F.softplus(torch.randn(batch, length, channels, generator=g, dtype=torch.float64))
    A = -torch.exp(torch.randn(channels, n_state, generator=g, dtype=torch.float64))
    B = torch.randn(batch, length, n_state, generator=g, dtype=torch.float64)
    C = torch.randn(batch, length, n_state, generator=g, dtype=torch.float64)
    D = torch.randn(channels, generator=g, dtype=torch.float64)
    return u, delta, A, B, C, D


@pytest.mark.parametrize("length", [1, 11, 70])
@pytest.mark.parametrize("method", ["loop", "parallel", "auto"])
def test_selective_scan_matches_the_direct_recurrence(length, method):
    inputs = random_scan_inputs(length)
    expected = direct_selective_scan(*inputs)
    torch.testing.assert_close(selective_scan(*inputs, method=method), expected, rtol=1e-10, atol=1e-10)


def test_loop_and_parallel_scans_have_the_same_gradients():
    g = torch.Generator().manual_seed(1)
    decay = torch.rand(3, 37, 4, 2, generator=g, dtype=torch.float64).requires_grad_()
    drive = torch.randn(3, 37, 4, 2, generator=g, dtype=torch.float64).requires_grad_()
    weights = torch.randn(3, 37, 4, 2, generator=g, dtype=torch.float64)
    grads = []
    for scan in (scan_loop, scan_parallel):
        (scan(decay, drive) * weights).sum().backward()
        grads.append((decay.grad.clone(), drive.grad.clone()))
        decay.grad = drive.grad = None
    torch.testing.assert_close(grads[0], grads[1])


def test_selective_scan_rejects_an_unknown_method():
    with pytest.raises(ValueError, match="unknown scan method"):
        selective_scan(*random_scan_inputs(3), method="blelloch")
    with pytest.raises(ValueError, match="unknown scan method"):
        MambaMixer(8, scan="fast")


def test_mamba_mixer_matches_a_direct_rederivation():
    """The mixer's wiring (in_proj split, causal depthwise conv, x_proj split, softplus dt, gate, out_proj)
    recomputed from its weights with explicit loops, on top of the direct scan."""
    torch.manual_seed(0)
    mixer = MambaMixer(d_model=6, d_state=3, d_conv=3, expand=2).double()
    u = torch.randn(2, 9, 6, dtype=torch.float64)
    xz = u @ mixer.in_proj.weight.T
    x, z = xz[..., :12], xz[..., 12:]
    w, bias = mixer.conv1d.weight[:, 0, :], mixer.conv1d.bias  # (channels, taps): tap k-1 multiplies x_t
    conv = torch.zeros_like(x)
    for t in range(9):
        for k in range(3):
            if t - k >= 0:
                conv[:, t] += w[:, 2 - k] * x[:, t - k]
    x = F.silu(conv + bias)
    proj = x @ mixer.x_proj.weight.T
    dt, B, C = proj[..., :1], proj[..., 1:4], proj[..., 4:]
    delta = F.softplus(dt @ mixer.dt_proj.weight.T + mixer.dt_proj.bias)
    y = direct_selective_scan(x, delta, -torch.exp(mixer.A_log), B, C, mixer.D)
    expected = (y * F.silu(z)) @ mixer.out_proj.weight.T
    torch.testing.assert_close(mixer(u), expected)


def test_mamba_mixer_is_causal_and_initialised_as_the_reference():
    torch.manual_seed(0)
    mixer = MambaMixer(d_model=32, d_state=4, d_conv=2, expand=1, dt_min=1e-3, dt_max=0.1)
    torch.testing.assert_close(mixer.A_log, torch.log(torch.arange(1.0, 5.0)).repeat(32, 1))
    assert torch.equal(mixer.D, torch.ones(32)) and mixer.dt_rank == 2
    dt = F.softplus(mixer.dt_proj.bias)
    assert dt.min() >= 1e-3 * 0.999 and dt.max() <= 0.1 * 1.001
    assert mixer.dt_proj.weight.abs().max() <= 2 ** -0.5
    u = torch.randn(2, 10, 32)
    changed = u.clone()
    changed[:, 6:] += 1.0
    with torch.no_grad():
        a, b = mixer(u), mixer(changed)
    torch.testing.assert_close(a[:, :6], b[:, :6])
    assert not torch.allclose(a[:, 6:], b[:, 6:])


def channels_first_selective_scan(u, delta, A, B, C, D):
    """The contract of mamba_ssm's ``selective_scan_fn`` (default flags), written out in its own
    channels-first layout: u, delta (batch, channels, T); A (channels, N); B, C (batch, N, T); D (channels,)."""
    batch, channels, length = u.shape
    y = torch.zeros_like(u)
    for i in range(batch):
        h = torch.zeros(channels, A.shape[1], dtype=u.dtype)
        for t in range(length):
            h = torch.exp(delta[i, :, t, None] * A) * h + delta[i, :, t, None] * B[i, None, :, t] * u[i, :, t, None]
            y[i, :, t] = h @ C[i, :, t] + D * u[i, :, t]
    return y


def test_fused_kernel_is_called_in_its_own_layout():
    """The CUDA kernel cannot run here; this checks our call into it (transposes, argument order) against
    a stand-in written in the kernel's layout."""
    inputs = random_scan_inputs(9, batch=2, channels=3, n_state=2)
    torch.testing.assert_close(call_fused_scan(channels_first_selective_scan, *inputs), direct_selective_scan(*inputs),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.skipif(fused_selective_scan() is None, reason="mamba-ssm's CUDA kernels are not importable here")
def test_fused_cuda_scan_agrees_with_the_torch_scans():  # pragma: no cover - needs CUDA and mamba-ssm
    inputs = [t.float().cuda() for t in random_scan_inputs(25, batch=4, channels=16, n_state=4)]
    fused = selective_scan(*inputs, method="fused")
    torch.testing.assert_close(fused, selective_scan(*inputs, method="loop"), rtol=1e-4, atol=1e-4)


def test_fused_scan_is_refused_clearly_where_it_cannot_run():
    if fused_selective_scan() is not None:
        pytest.skip("mamba-ssm's CUDA kernels are usable here")
    with pytest.raises(RuntimeError, match="mamba-ssm"):
        selective_scan(*random_scan_inputs(3), method="fused")
    with pytest.raises(ValueError, match="mamba-ssm"):
        SMamba(scan="fused").check(Dims(3, 16, 8, 4))


# ---------------------------------------------------------------------- S-Mamba
def test_smamba_network_shapes_and_parameter_count():
    spec = SMamba(**SMamba.reference_config("ETTh1", 96)["params"])
    net = spec.build(Dims(n_channels=7, lookback=96, horizon=96, n_time_features=4))
    x, marks = torch.randn(3, 96, 7), torch.randn(3, 96, 4)
    assert net(x, marks, None).shape == (3, 96, 7)
    # 1.15 M at the ETTh1 settings (ssm.md §2.3; the unused modules of the reference are not built)
    assert sum(p.numel() for p in net.parameters()) == 1_145_696


def test_smamba_reference_config_follows_the_scripts():
    assert SMamba.reference_config("ETTh1", 192) == {
        "params": {"d_model": 256, "d_ff": 256, "e_layers": 2, "d_state": 2},
        "training": {"learning_rate": 7e-5, "batch_size": 32, "patience": 3, "lr_schedule": "halving", "max_epochs": 10}}
    assert SMamba.reference_config("ETTh1", 720)["training"]["learning_rate"] == 5e-5
    assert SMamba.reference_config("ETTh2", 336)["training"]["learning_rate"] == 3e-5
    assert SMamba.reference_config("ETTm1", 192)["params"]["d_model"] == 128
    assert SMamba.reference_config("ETTm2", 96)["params"]["d_model"] == 256
    weather = SMamba.reference_config("Weather", 96)
    assert weather["params"]["e_layers"] == 3 and weather["params"]["d_model"] == 512
    assert weather["training"]["max_epochs"] == 5
    assert SMamba.reference_config("elsewhere", 96) == {"params": {}, "training": {}}


@pytest.mark.parametrize("params, match", [({"d_model": 0}, "d_model"), ({"dropout": 1.5}, "dropout"),
                                           ({"scan": "fast"}, "scan"), ({"e_layers": 2.5}, "e_layers")])
def test_smamba_rejects_bad_hyperparameters(params, match):
    with pytest.raises(ValueError, match=match):
        SMamba(**params).check(Dims(3, 16, 8, 4))


# ---------------------------------------------------------------------- companion SSM
def test_companion_kernel_matches_the_explicit_recurrence():
    torch.manual_seed(0)
    ssm = CompanionSSM(n_channels=4, n_kernels=2, kernel_dim=5).double()
    A = ssm.transition()
    assert torch.equal(A[0, 1:, :-1], torch.eye(4, dtype=torch.float64))  # shift matrix below the diagonal
    u = torch.randn(3, 12, 4, dtype=torch.float64)
    expected = torch.zeros_like(u)
    for channel in range(4):
        kernel = channel // 2  # each kernel serves a contiguous group of channels
        x = torch.zeros(3, 5, dtype=torch.float64)
        for t in range(12):
            x = x @ A[kernel].T + ssm.b[kernel] * u[:, t, channel:channel + 1]  # x_{t+1} = A x_t + b u_t
            expected[:, t, channel] = x @ ssm.c[kernel] + ssm.skip[channel] * u[:, t, channel]
    torch.testing.assert_close(ssm(u), expected)


def test_krylov_doubling_matches_repeated_products():
    A, b = torch.randn(3, 4, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    expected = torch.stack([torch.linalg.matrix_power(A, l) @ b.unsqueeze(-1) for l in range(11)], -1)[..., 0, :]
    torch.testing.assert_close(krylov(A, b, 11), expected)


def test_l1_normalised_companion_matrix_is_stable():
    torch.manual_seed(0)
    A = companion_matrix(l1_normalize(torch.randn(50, 16) * 5))
    assert torch.linalg.eigvals(A).abs().max() <= 1 + 1e-6


def test_preprocessing_kernels():
    assert differencing_kernel(3).tolist() == [1, -3, 3, -1]
    torch.manual_seed(0)
    pre = PreprocessingSSM(n_channels=16, ma_window_range=(3, 6))
    u = torch.full((1, 20, 16), 2.0)
    out = pre(u)[0, 6:]  # past every kernel's width: only order-0 differencing keeps a constant
    torch.testing.assert_close(out[:, [0, 8]], torch.full((14, 2), 2.0))
    torch.testing.assert_close(out[:, [c for c in range(16) if c % 8]], torch.zeros(14, 14))
    # the buffer's shape does not depend on the random windows (a saved model loads into any fresh build)
    assert all(PreprocessingSSM(16, ma_window_range=(3, 6)).kernels.shape == (16, 5) for _ in range(5))
    # a one-channel input (the implicit repeat embedding) gives the same as the series copied to every channel
    series = torch.randn(3, 20, 1)
    torch.testing.assert_close(pre(series), pre(series.expand(-1, -1, 16)))


def _explicit_closed_loop(ssm, u, horizon):
    """Run the decoder's recurrence step by step: consume the look-back, then feed back its own input
    prediction k^T x as the next input."""
    a, b, c, k = (l1_normalize(p) for p in (ssm.a, ssm.b, ssm.c, ssm.k))
    A = companion_matrix(a)
    batch, length, channels = u.shape
    out = torch.zeros(batch, horizon, channels, dtype=u.dtype)
    for h in range(channels):
        x = torch.zeros(batch, A.shape[-1], dtype=u.dtype)
        for t in range(length):
            x = x @ A[h].T + b[h] * u[:, t, h:h + 1]
        for j in range(horizon):
            out[:, j, h] = x @ c[h]
            x = x @ A[h].T + b[h] * (x @ k[h]).unsqueeze(-1)
    return out


def test_batch_free_closed_loop_matches_the_stepwise_feedback():
    torch.manual_seed(0)
    ssm = ClosedLoopCompanionSSM(n_channels=3, kernel_dim=6).double()
    u = torch.randn(4, 15, 3, dtype=torch.float64)
    forecast = ssm(u, horizon=9)
    torch.testing.assert_close(forecast, _explicit_closed_loop(ssm, u, 9))
    # one sample at a time gives the same numbers (nothing couples the batch)
    torch.testing.assert_close(torch.cat([ssm(u[i:i + 1], 9) for i in range(4)]), forecast)
    # the first forecast step is the open-loop output after the last look-back input
    outputs, _ = ssm.open_loop(u)
    torch.testing.assert_close(forecast[:, 0], outputs[:, -1])


# ---------------------------------------------------------------------- SpaceTime
def ar_series(coefficients, n_rows, seed, noise=1.0):
    rng = np.random.default_rng(seed)
    order = len(coefficients)
    values = np.zeros(n_rows + 200)
    for t in range(order, len(values)):
        values[t] = np.dot(coefficients, values[t - order:t][::-1]) + noise * rng.normal()
    return values[200:]


def ar_oracle_forecasts(coefficients, windows, horizon):
    """The optimal forecasts of a known AR(p) process: roll the true recurrence out without noise."""
    order = len(coefficients)
    out = np.zeros((len(windows), horizon))
    for i, window in enumerate(windows):
        history = list(window[-order:])
        for j in range(horizon):
            history.append(np.dot(coefficients, history[::-1][:order]))
            out[i, j] = history[-1]
    return out


def test_spacetime_learns_an_ar_process():
    """The paper's claim (Prop. 1): a companion SSM represents AR(p) exactly, which prior deep SSMs
    cannot. Fitted on an AR(3) series, SpaceTime's 6-step forecasts come within 25% of the optimal
    forecasts of the true process (the noise floor), far below the naive and the mean forecasts."""
    coefficients = [1.2, -0.2, -0.3]
    lookback, horizon = 24, 6
    values = ar_series(coefficients, 1500, seed=0)
    frame = pd.DataFrame({"y": values}, index=pd.date_range("2020-01-01", periods=len(values), freq="h"))
    train, test = frame.iloc[:1200], frame.iloc[1200 - lookback:]
    model = SpaceTime(model_dim=16, n_kernels=2, kernel_dim=8, ma_window_range=(2, 6), dropout=0.0)
    forecaster = Forecaster(model=model, lookback=lookback, horizon=horizon, max_epochs=12, batch_size=64,
                            learning_rate=3e-2, random_state=0, device="cpu").fit(train)
    got = forecaster.evaluate(test)["mse"]
    scale = forecaster.scaler_.scale_[0]
    series = test["y"].to_numpy()
    starts = range(len(series) - lookback - horizon + 1)
    windows = np.stack([series[s:s + lookback] for s in starts])
    targets = np.stack([series[s + lookback:s + lookback + horizon] for s in starts])
    oracle = np.mean((ar_oracle_forecasts(coefficients, windows, horizon) - targets) ** 2) / scale ** 2
    naive = np.mean((windows[:, -1:] - targets) ** 2) / scale ** 2
    mean_forecast = np.mean((targets - forecaster.scaler_.mean_[0]) ** 2) / scale ** 2
    assert got < 1.25 * oracle, (got, oracle)
    assert got < 0.5 * naive and got < 0.8 * mean_forecast, (got, naive, mean_forecast)


def test_spacetime_training_loss_has_the_three_terms():
    torch.manual_seed(0)
    spec = SpaceTime(model_dim=16, n_kernels=2, kernel_dim=8, ma_window_range=(2, 6), dropout=0.0)
    x, y = torch.randn(4, 20, 2), torch.randn(4, 5, 2)
    net = spec.build(Dims(2, 20, 5, 0))
    full = net.training_loss(x, None, y, None)
    net.loss_weights = (1.0, 0.0, 0.0)
    forecast_only = net.training_loss(x, None, y, None)
    torch.testing.assert_close(forecast_only, torch.sqrt(F.mse_loss(net(x), y)))
    assert full > forecast_only


def test_spacetime_parameter_count_matches_the_reference_layout():
    net = SpaceTime().build(Dims(1, 336, 720, 0))
    # the reference's 52,737 less its unused 128-parameter decoder skip
    assert sum(p.numel() for p in net.parameters()) == 52_609


@pytest.mark.parametrize("params, match", [({"model_dim": 20}, "multiple"), ({"kernel_dim": 1}, "kernel_dim"),
                                           ({"ma_window_range": (5, 5)}, "ma_window_range"),
                                           ({"loss_weights": (0, 1, 1)}, "loss_weights")])
def test_spacetime_rejects_bad_hyperparameters(params, match):
    with pytest.raises(ValueError, match=match):
        SpaceTime(**params).check(Dims(3, 16, 8, 0))



def test_smamba_std_is_not_detached_and_that_changes_no_gradient():
    """The reference detaches the window mean only. The input is data (no gradient), so detaching the
    std as well (the code before issue 15) gives bitwise the same forecasts and parameter gradients."""
    dims = Dims(n_channels=3, lookback=16, horizon=4, n_time_features=4)
    torch.manual_seed(0)
    network = SMamba(**SMamba.test_params()).build(dims).eval()
    assert network.norm.detach_std is False
    x, marks, y = torch.randn(5, 16, 3), torch.rand(5, 16, 4), torch.randn(5, 4, 3)

    def run():
        network.zero_grad()
        out = network(x, marks)
        F.mse_loss(out, y).backward()
        return out.detach(), {k: p.grad.clone() for k, p in network.named_parameters() if p.grad is not None}

    out, grads = run()
    network.norm.detach_std = True
    out_detached, grads_detached = run()
    assert torch.equal(out, out_detached) and grads and grads.keys() == grads_detached.keys()
    assert all(torch.equal(grads[k], grads_detached[k]) for k in grads)
