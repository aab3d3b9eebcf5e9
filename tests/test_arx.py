"""ARX: AR with future-known covariates, fitted by least squares as one global model over a panel
(tsforecast.models.ar), and AR-Net's covariate term trained by SGD (tsforecast.models.arnet)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tsforecast.models.ar import AR
from tsforecast.models.arnet import ARNet
from tsforecast.models.base import Dims


def simulate_arx(n: int, seed: int, const=0.5, phi=(0.6, -0.2), beta=1.5, noise=0.3):
    """``y_t = const + phi_1 y_{t-1} + phi_2 y_{t-2} + beta f_t + e_t`` with ``f`` i.i.d. and known."""
    rng = np.random.default_rng(seed)
    f = rng.normal(size=n)
    e = noise * rng.normal(size=n)
    y = np.zeros(n)
    for t in range(n):
        lags = sum(p * y[t - k - 1] for k, p in enumerate(phi) if t - k - 1 >= 0)
        y[t] = const + lags + beta * f[t] + e[t]
    return y, f


def build(spec, order=2, n_exog=1, n_channels=1):
    dims = Dims(n_channels=n_channels, lookback=order, horizon=1, n_time_features=n_exog, n_future_covariates=n_exog)
    return spec.build(dims).double()  # float64 weights: compare with statsmodels to 1e-8


def arx_params(network) -> np.ndarray:
    """``[intercept, phi_1..phi_p, beta_1..beta_K]`` of channel 0, statsmodels' order."""
    coef, intercept = network.coefficients()
    return np.concatenate([intercept[:1], coef[0], network.exog_coefficients()[0]])


def design_rows(series, covariates, order):
    """The ARX design built row by row (independently of the library): rows touching a NaN are skipped."""
    rows, targets = [], []
    for y, f in zip(series, covariates):
        for t in range(order, len(y)):
            row = [1.0, *(y[t - k] for k in range(1, order + 1)), *np.atleast_1d(f[t])]
            if np.isnan(row).any() or np.isnan(y[t]):
                continue
            rows.append(row)
            targets.append(y[t])
    return np.array(rows), np.array(targets)


def test_arx_equals_statsmodels_autoreg_with_exog():
    from statsmodels.tsa.ar_model import AutoReg

    y, f = simulate_arx(400, seed=0)
    spec = AR(order=2)
    network = build(spec)
    spec.fit_closed_form(network, [y[:, None]], [f[:, None]])
    result = AutoReg(y, lags=2, trend="c", exog=f).fit()
    np.testing.assert_allclose(arx_params(network), result.params, rtol=0, atol=1e-8)
    assert abs(network.exog_coefficients()[0, 0] - 1.5) < 0.1  # and it recovers the true effect

    # the one-step forecast of the network is statsmodels' prediction at the same rows
    rows = np.array([2, 57, 250, 399])
    x = torch.from_numpy(np.stack([y[t - 2:t] for t in rows]))[:, :, None]
    y_mark = torch.from_numpy(f[rows])[:, None, None]
    with torch.no_grad():
        forecast = network(x, None, y_mark)[:, 0, 0].numpy()
    expected = np.array([result.predict(start=t, end=t)[0] for t in rows])
    np.testing.assert_allclose(forecast, expected, rtol=0, atol=1e-8)


def test_panel_with_missing_values_is_one_lstsq_over_the_observed_rows():
    y_a, f_a = simulate_arx(300, seed=1)
    y_b, f_b = simulate_arx(200, seed=2, const=-1.0)  # another level: still one global model
    y_a[50] = np.nan  # a missing target: drops the rows with target 50, 51 and 52 (as target, lag 1, lag 2)
    f_b[100] = np.nan  # a missing covariate: drops the row with target 100 only
    design, target = design_rows([y_a, y_b], [f_a, f_b], order=2)
    assert len(design) == (300 - 2 - 3) + (200 - 2 - 1)
    expected, *_ = np.linalg.lstsq(design, target, rcond=None)

    spec = AR(order=2)
    network = build(spec)
    spec.fit_closed_form(network, [y_a[:, None], y_b[:, None]], [f_a[:, None], f_b[:, None]])
    np.testing.assert_allclose(arx_params(network), expected, rtol=0, atol=1e-10)
    # the series carry information: the pooled fit differs from series A's alone
    alone = build(spec)
    spec.fit_closed_form(alone, [y_a[:, None]], [f_a[:, None]])
    assert np.abs(arx_params(alone) - expected).max() > 1e-3


def test_panel_without_covariates_pools_channels_separately():
    rng = np.random.default_rng(3)
    panel = [rng.normal(size=(n, 2)).cumsum(axis=0) for n in (40, 25)]
    panel[1][7, 0] = np.nan  # channel 0 loses rows, channel 1 keeps all of series 1's
    spec = AR(order=3)
    network = spec.build(Dims(n_channels=2, lookback=3, horizon=1, n_time_features=0)).double()
    spec.fit_closed_form(network, panel)
    coef, intercept = network.coefficients()
    for c in range(2):
        design, target = design_rows([s[:, c] for s in panel], [np.zeros((len(s), 0)) for s in panel], order=3)
        assert len(design) == 37 + 22 - (4 if c == 0 else 0)
        expected, *_ = np.linalg.lstsq(design, target, rcond=None)
        np.testing.assert_allclose(np.concatenate([intercept[c:c + 1], coef[c]]), expected, rtol=0, atol=1e-10)
    assert network.exog_coefficients().shape == (2, 0)


def test_one_series_without_covariates_is_bit_identical_to_the_single_series_fit():
    values = np.random.default_rng(4).normal(size=(500, 3)).cumsum(axis=0)
    values = (values - values.mean(axis=0)) / values.std(axis=0)
    order = 24
    spec = AR(order=order)
    network = spec.build(Dims(n_channels=3, lookback=order, horizon=1, n_time_features=0))
    spec.fit_closed_form(network, [values])
    # the fit before panels and covariates: the same design (intercept, lag 1 first) and the same lstsq call
    weight, bias = np.empty((3, order)), np.empty(3)
    for c in range(3):
        lags = np.lib.stride_tricks.sliding_window_view(values[:-1, c], order)[:, ::-1]
        design = np.hstack([np.ones((len(lags), 1)), lags])
        solution, *_ = np.linalg.lstsq(design, values[order:, c], rcond=None)
        bias[c], weight[c] = solution[0], solution[1:]
    expected = torch.from_numpy(weight).float(), torch.from_numpy(bias).float()
    assert torch.equal(network.linear.weight, expected[0]) and torch.equal(network.linear.bias, expected[1])
    # a bare array (the wide path) is the same one series
    again = spec.build(Dims(n_channels=3, lookback=order, horizon=1, n_time_features=0))
    spec.fit_closed_form(again, values)
    assert torch.equal(again.linear.weight, network.linear.weight)


@pytest.mark.parametrize("spec", [AR(order=2), ARNet(order=2), ARNet(order=2, hidden_layers=(4,))],
                         ids=["ar", "arnet", "deep-arnet"])
def test_the_covariate_weight_exists_only_with_covariates(spec):
    # saved models and checkpoints without covariates keep their keys
    plain = spec.build(Dims(n_channels=2, lookback=2, horizon=1, n_time_features=4))
    assert not any(key.startswith("exog") for key in plain.state_dict())
    arx = spec.build(Dims(n_channels=2, lookback=2, horizon=1, n_time_features=4, n_future_covariates=3))
    assert arx.state_dict()["exog.weight"].shape == (2, 3)
    assert set(arx.state_dict()) - set(plain.state_dict()) == {"exog.weight"}
    # the covariates are the LAST mark columns: calendar features before them are not read
    with torch.no_grad():
        arx.exog.weight.copy_(torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, -1.0]]))
    x = torch.zeros(1, 2, 2)
    y_mark = torch.tensor([[[100.0, 1.0, 1.0, 1.0]]])
    with torch.no_grad():
        delta = arx(x, None, y_mark) - arx(x, None, torch.zeros_like(y_mark))
    torch.testing.assert_close(delta, torch.tensor([[[6.0, -1.0]]]))
    with pytest.raises(ValueError, match=r"built with 3 future covariates .* got none; pass future_covariates"):
        arx(x, None, None)


def test_too_few_usable_rows_names_an_order_that_fits():
    y, f = simulate_arx(60, seed=5)
    spec = AR(order=24)
    message = (r"AR\(24\) needs at least 50 training rows .* \(24 lags \+ an intercept \+ 1 future covariate, from at "
               r"least 26 targets\), got 40; give more rows or fewer future covariates or lower the order "
               r"\(lookback, or AR\(order=\.\.\.\)\) to at most 19")
    with pytest.raises(ValueError, match=message):
        spec.fit_closed_form(build(spec, order=24), [y[:40, None]], [f[:40, None]])
    spec.fit_closed_form(build(AR(order=19), order=19), [y[:40, None]], [f[:40, None]])  # the fix works

    # a panel with gaps: counted in usable targets, per channel
    gappy = y[:24].copy()
    gappy[::6] = np.nan  # 4 runs of 5 observed values: an AR(q) uses 5 - q targets of each
    panel, covariates = [gappy[:, None], y[:5, None]], [f[:24, None], f[:5, None]]  # + 5 - q from a short series
    spec4 = AR(order=4)
    with pytest.raises(ValueError, match=r"AR\(4\) needs at least 6 usable targets .* channel 0 \(0-based\) has 5 over "
                                         r"2 series of 29 rows; .* lower the order .* to at most 3"):
        spec4.fit_closed_form(build(spec4, order=4), panel, covariates)
    spec3 = AR(order=3)
    spec3.fit_closed_form(build(spec3, order=3), panel, covariates)  # the fix works


def test_arnet_learns_the_covariate_effect_by_sgd():
    y, f = simulate_arx(600, seed=6, const=0.0, phi=(0.5,), beta=2.0, noise=0.1)
    order = 2
    x = torch.from_numpy(np.stack([y[t - order:t] for t in range(order, len(y))])).float()[:, :, None]
    y_mark = torch.from_numpy(f[order:]).float()[:, None, None]
    target = torch.from_numpy(y[order:]).float()[:, None, None]
    for hidden in ((), (8,)):
        torch.manual_seed(0)
        network = ARNet(order=order, hidden_layers=hidden).build(
            Dims(n_channels=1, lookback=order, horizon=1, n_time_features=1, n_future_covariates=1))
        optimizer = torch.optim.Adam(network.parameters(), lr=0.05)
        for _ in range(300):
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(network(x, None, y_mark), target)
            loss.backward()
            optimizer.step()
        assert abs(network.exog_coefficients()[0, 0] - 2.0) < 0.05, hidden
        assert loss.item() < 0.02, hidden  # the noise variance is 0.01
