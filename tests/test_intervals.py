"""Conformal prediction intervals: predict(level=...), evaluate(level=...), adaptive updates, plotting."""
import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from conftest import make_ar_frame

from tsforecast import Forecaster, plot_forecast
from tsforecast.intervals import QuantileTracker, conformal_quantile, interval_columns
from tsforecast.models import get_model_class

L, H = 8, 4


def noise_frame(n, scale=1.0, seed=0, start="2021-01-01", channels=2):
    """I.i.d. noise around a level per channel (scale may vary per row)."""
    rng = np.random.default_rng(seed)
    scale = np.broadcast_to(np.asarray(scale, dtype=float), (n,))[:, None]
    values = 5.0 + np.arange(channels) + scale * rng.normal(size=(n, channels))
    index = pd.date_range(start, periods=n, freq="h")
    return pd.DataFrame(values, index=index, columns=[f"c{i}" for i in range(channels)])


@pytest.fixture(scope="module")
def fitted():
    data = make_ar_frame(n=900, seed=1)
    return Forecaster(model="ar", lookback=L, horizon=H).fit(data.iloc[:700], val_df=data.iloc[700 - L:800]), data


def test_columns_follow_neuralforecast_order(fitted):
    f, _ = fitted
    out = f.predict(level=[95, 80])
    assert list(out.columns) == ["c0", "c0-lo-95", "c0-lo-80", "c0-hi-80", "c0-hi-95",
                                 "c1", "c1-lo-95", "c1-lo-80", "c1-hi-80", "c1-hi-95"]
    assert interval_columns(["y"], (97.5,)) == ["y", "y-lo-97.5", "y-hi-97.5"]
    np.testing.assert_array_equal(out[["c0", "c1"]].to_numpy(), f.predict().to_numpy())  # points unchanged


@pytest.mark.parametrize("method", ["split", "adaptive"])
def test_intervals_contain_the_point_and_nest(fitted, method):
    f, data = fitted
    f = Forecaster(**{**f.get_params(), "interval_method": method}).fit(data.iloc[:700], val_df=data.iloc[700 - L:])
    out = f.predict(data.iloc[:800], level=[50, 80, 95])
    for c in ("c0", "c1"):
        bounds = out[[f"{c}-lo-95", f"{c}-lo-80", f"{c}-lo-50", c, f"{c}-hi-50", f"{c}-hi-80", f"{c}-hi-95"]]
        assert np.all(np.diff(bounds.to_numpy(), axis=1) >= 0)
        assert np.all(out[f"{c}-hi-95"] - out[f"{c}-lo-95"] > out[f"{c}-hi-50"] - out[f"{c}-lo-50"])


def test_finite_sample_quantile_by_hand():
    scores = np.arange(1.0, 10.0)[:, None, None]  # n = 9 scores 1..9
    assert conformal_quantile(scores, 80)[0, 0] == 8  # ceil(10 * 0.8) = 8th smallest
    assert conformal_quantile(scores, 50)[0, 0] == 5  # ceil(10 * 0.5) = 5th
    assert conformal_quantile(scores, 90)[0, 0] == 9  # ceil(10 * 0.9) = 9th: exactly representable, not 10
    with pytest.warns(RuntimeWarning, match="needs at least 19 calibration windows"):
        assert np.isinf(conformal_quantile(scores, 95)[0, 0])  # ceil(9.5) = 10 > 9


@pytest.mark.parametrize("method", ["split", "adaptive"])
def test_too_few_calibration_windows_give_infinite_intervals_with_a_warning(method):
    data = make_ar_frame(n=60, seed=2)
    f = Forecaster(model="naive", lookback=L, horizon=H, validation_fraction=0.25, interval_method=method).fit(data)
    assert len(f.intervals_.scores[H]) == 15 - H + 1  # the windows of the last 25% of the rows
    with pytest.warns(RuntimeWarning, match="95% interval is infinite"):
        out = f.predict(level=[80, 95])
        scores = f.evaluate(data, level=[80, 95])
    # infinite, never NaN: the adaptive trackers of an infinite level stay infinite
    assert np.isposinf(out["c0-hi-95"]).all() and np.isneginf(out["c0-lo-95"]).all()
    assert np.isfinite(out["c0-hi-80"]).all()
    assert scores["coverage_95"] == 100.0 and np.isinf(scores["width_95"]) and np.isfinite(scores["width_80"])


def test_split_coverage_is_near_nominal_on_fresh_stationary_data():
    data = make_ar_frame(n=5000, coefs=(0.5,), seed=3)
    f = Forecaster(model="ar", lookback=L, horizon=H).fit(data.iloc[:2000], val_df=data.iloc[2000 - L:3000])
    scores = f.evaluate(data.iloc[3000 - L:], level=[80, 95])
    # 1993 windows; overlapping windows are correlated, so the tolerance is looser than a binomial one
    assert abs(scores["coverage_80"] - 80) < 3 and abs(scores["coverage_95"] - 95) < 2


def test_widths_grow_with_the_step_on_a_random_walk():
    rng = np.random.default_rng(4)
    walk = pd.DataFrame(np.cumsum(rng.normal(size=(1500, 1)), axis=0), columns=["y"],
                        index=pd.date_range("2020-01-01", periods=1500, freq="D"))
    out = Forecaster(model="naive", lookback=L, horizon=12, validation_fraction=0.5).fit(walk).predict(level=[80])
    width = (out["y-hi-80"] - out["y-lo-80"]).to_numpy()
    assert width[-1] > 2.5 * width[0]  # ~sqrt(12) for a random walk
    assert np.corrcoef(np.arange(12), width)[0, 1] > 0.95


@pytest.mark.parametrize("feedback", ["step", "window"])
def test_adaptive_tracker_has_no_look_ahead(feedback):
    rng = np.random.default_rng(5)
    scores = rng.exponential(size=(60, H, 2))
    t = 30
    origin, step = np.arange(60)[:, None], np.arange(1, H + 1)[None, :]
    after_t = origin + step > t  # targets observed only after origin t (step h of origin s is row s + h)
    corrupted = np.where(after_t[..., None], 100 * scores, scores)
    radii = [QuantileTracker(np.ones((2, H, 2)), 0.1, (80, 95), feedback).radii(s) for s in (scores, corrupted)]
    np.testing.assert_array_equal(radii[0][:t + 1], radii[1][:t + 1])
    assert not np.array_equal(radii[0][t + 1:], radii[1][t + 1:])  # the corruption is used once observed
    # step 1 of origin t is observed at origin t + 1: with per-step feedback it counts there already
    assert np.array_equal(radii[0][t + 1, :, 0], radii[1][t + 1, :, 0]) == (feedback == "window")


def test_adaptive_tracker_with_several_steps_has_no_look_ahead():
    rng = np.random.default_rng(6)
    scores = rng.exponential(size=(60, H, 2))
    t = 30
    after_t = np.arange(60)[:, None] + np.arange(1, H + 1)[None, :] > t
    corrupted = np.where(after_t[..., None], 100 * scores, scores)
    radii = [QuantileTracker(np.ones((2, H, 2)), [0.01, 0.1, 1.0], (80, 95)).radii(s) for s in (scores, corrupted)]
    np.testing.assert_array_equal(radii[0][:t + 1], radii[1][:t + 1])
    assert not np.array_equal(radii[0][t + 1:], radii[1][t + 1:])


def _expert_weights(scores, steps):
    tracker = QuantileTracker(np.full((1, 1, 1), np.quantile(scores[:500], 0.8)), list(steps), (80,), rate=1.0,
                              mix=0.01)
    radii = tracker.radii(scores[:, None, None])[:, 0, 0, 0]
    weight = np.exp(tracker.log_weight[:, 0, 0, 0])
    return radii, weight / weight.sum()


def test_expert_weights_favour_the_small_step_when_errors_are_stable_and_follow_a_shift():
    steps = (0.01, 0.2)
    rng = np.random.default_rng(0)
    stable = np.abs(rng.normal(size=4000))
    radii, weight = _expert_weights(stable, steps)
    assert weight[0] > 0.6  # the steady tracker wins on i.i.d. errors ...
    assert radii[2000:].std() < 0.7 * QuantileTracker(np.full((1, 1, 1), 1.28), 0.2, (80,)).radii(
        stable[:, None, None])[2000:, 0, 0, 0].std()  # ... and the issued radii are steadier than the fast one's
    shifted = np.concatenate([stable[:2000], 4 * stable[2000:]])
    radii, weight = _expert_weights(shifted, steps)
    assert weight[1] > 0.5  # after the noise quadruples the fast tracker takes over
    late = slice(2500, None)
    assert abs((shifted[late] <= radii[late]).mean() - 0.8) < 0.05


def test_adaptive_evaluate_ignores_targets_after_the_last_origin(fitted):
    f, data = fitted
    f = Forecaster(**{**f.get_params(), "interval_method": "adaptive"}).fit(data.iloc[:700], val_df=data.iloc[700 - L:])
    test = data.iloc[700 - L:]
    corrupted = test.copy()
    corrupted.iloc[-H:] *= 50  # only the last window's targets: after every forecast origin
    a, b = f.evaluate(test, level=[80]), f.evaluate(corrupted, level=[80])
    assert a["width_80"] == b["width_80"] and a["coverage_80"] != b["coverage_80"]


def test_adaptive_recovers_coverage_when_the_noise_doubles():
    train, val = noise_frame(1000, seed=6), noise_frame(500 + L, seed=7)
    test = noise_frame(3000, scale=np.r_[np.ones(500), 2 * np.ones(2500)], seed=8)
    results = {}
    for method in ("split", "adaptive"):
        f = Forecaster(model="naive", lookback=L, horizon=H, interval_method=method).fit(train, val_df=val)
        results[method] = f.evaluate(test, level=[80])["coverage_80"]
    assert results["split"] < 65  # static intervals are far too narrow after the shift
    assert abs(results["adaptive"] - 80) < 4


def test_predict_adaptive_walks_x_without_changing_the_forecaster(fitted):
    f, data = fitted
    f = Forecaster(**{**f.get_params(), "interval_method": "adaptive"}).fit(data.iloc[:700], val_df=data.iloc[700 - L:])
    before = f.predict(level=[80])
    shifted = data.iloc[:900].copy()
    shifted.iloc[700:] = 5 * (shifted.iloc[700:] - shifted.iloc[700:].mean()) + shifted.iloc[700:].mean()
    walked = f.predict(shifted, level=[80])
    assert (walked["c0-hi-80"] - walked["c0-lo-80"]).mean() > 1.5 * (before["c0-hi-80"] - before["c0-lo-80"]).mean()
    pd.testing.assert_frame_equal(f.predict(level=[80]), before)  # the fitted state is unchanged


def test_rollout_beyond_the_trained_horizon_gets_intervals(fitted):
    f, _ = fitted
    out = f.predict(horizon=3 * H, level=[80])
    assert out.shape == (3 * H, 6) and np.isfinite(out.to_numpy()).all()
    assert 3 * H in f.intervals_.scores and len(f.intervals_.scores[3 * H]) == len(f.intervals_.scores[H]) - 2 * H
    width = (out["c0-hi-80"] - out["c0-lo-80"]).to_numpy()
    assert width[-1] > width[0]


@pytest.mark.parametrize("method", ["split", "adaptive"])
def test_save_load_keeps_the_intervals_exactly(fitted, tmp_path, method):
    f, data = fitted
    f.set_params(interval_method=method)
    try:
        f.predict(horizon=2 * H, level=[80])  # a cached rollout horizon travels too
        f.save(tmp_path / "m")
        g = Forecaster.load(tmp_path / "m")
        for horizon in (H, 2 * H):
            pd.testing.assert_frame_equal(g.predict(data.iloc[:850], horizon=horizon, level=[80, 95]),
                                          f.predict(data.iloc[:850], horizon=horizon, level=[80, 95]),
                                          check_exact=True)
        assert g.evaluate(data.iloc[700:], level=[90]) == f.evaluate(data.iloc[700:], level=[90])
    finally:
        f.set_params(interval_method="split")


def test_intervals_do_not_depend_on_which_horizons_were_asked_before():
    data = make_ar_frame(n=900, seed=1)
    first = Forecaster(model="ar", lookback=L, horizon=H).fit(data.iloc[:700], val_df=data.iloc[700 - L:800])
    second = Forecaster(model="ar", lookback=L, horizon=H).fit(data.iloc[:700], val_df=data.iloc[700 - L:800])
    first.predict(horizon=3 * H, level=[80])  # caches a longer rollout horizon first
    for horizon in (2 * H, H // 2, H):
        pd.testing.assert_frame_equal(first.predict(horizon=horizon, level=[80, 95]),
                                      second.predict(horizon=horizon, level=[80, 95]), check_exact=True)


def test_evaluate_counts_ties_with_the_radius_as_calibration_does(fitted):
    # On its own calibration windows one score per step and channel IS the radius: each is inside
    # (score <= radius), as the conformal rank counts it, not on either side by float64 rounding.
    f, data = fitted
    calibration = data.iloc[700 - L:800]
    scores = f.intervals_.scores[H].astype(np.float64)
    for level in (80, 95):
        radius = conformal_quantile(scores, level)
        expected = 100 * (scores <= radius).mean()
        assert f.evaluate(calibration, level=[level])[f"coverage_{level}"] == pytest.approx(expected, abs=1e-9)
        assert expected >= level


@pytest.mark.parametrize("units", ["scaled", "original"])
def test_evaluate_interval_scores_match_numpy(fitted, units):
    f, data = fitted
    test = data.iloc[800 - L:860]  # after the calibration rows (on them, targets sit exactly on the bounds)
    scores = f.evaluate(test, level=[80, 95], units=units)
    n_windows = len(test) - L - H + 1
    for level in (80, 95):
        hits, widths, winkler = [], [], []
        alpha = 1 - level / 100
        for i in range(n_windows):
            out = f.predict(test.iloc[i:i + L], level=[level])
            truth = test.iloc[i + L:i + L + H].to_numpy()
            lo = out[[f"{c}-lo-{level}" for c in test]].to_numpy()
            hi = out[[f"{c}-hi-{level}" for c in test]].to_numpy()
            hits.append((lo <= truth) & (truth <= hi))
            widths.append(hi - lo)
            winkler.append(hi - lo + 2 / alpha * (np.maximum(lo - truth, 0) + np.maximum(truth - hi, 0)))
        assert scores[f"coverage_{level}"] == pytest.approx(100 * np.mean(hits), abs=1e-9)
        assert scores[f"width_{level}"] == pytest.approx(np.mean(widths), rel=1e-6)
        assert scores[f"winkler_{level}"] == pytest.approx(np.mean(winkler), rel=1e-6)
    assert scores["n_windows"] == n_windows and ("mse" in scores) == (units == "scaled")


@pytest.mark.parametrize("level", [0, 100, 150, -5, "x", "80", [], [80, "95"], True, float("nan")])
def test_bad_levels_get_a_clear_error(fitted, level):
    f, data = fitted
    with pytest.raises(ValueError, match="level"):
        f.predict(level=level)
    with pytest.raises(ValueError, match="level"):
        f.evaluate(data.iloc[700:], level=level)


def test_bad_interval_method_is_rejected_at_fit(fitted):
    _, data = fitted
    with pytest.raises(ValueError, match="interval_method"):
        Forecaster(model="naive", lookback=L, horizon=H, interval_method="quantile").fit(data)


@pytest.mark.parametrize("model", ["naive", "snaive", "arnet", "itransformer", "smamba"])
def test_every_model_family_gets_intervals(model):
    data = make_ar_frame(n=200, seed=9)
    spec = get_model_class(model)(**get_model_class(model).test_params())
    f = Forecaster(model=spec, lookback=L, horizon=H, max_epochs=1, random_state=0).fit(data)
    n_holdout = round(0.1 * 200)  # gradient models: the early-stopping hold-out; others: the same share of rows
    assert len(f.intervals_.scores[H]) == n_holdout - H + 1
    out = f.predict(level=[80])
    assert np.all(out["c0-lo-80"] <= out["c0"]) and np.all(out["c0"] <= out["c0-hi-80"])


def test_plot_forecast_writes_a_png(fitted, tmp_path):
    f, data = fitted
    forecast = f.predict(data.iloc[:800], level=[80, 95])
    fig = plot_forecast(data.iloc[:800], forecast, truth=data.iloc[800:800 + H], columns=["c1"], history_rows=50)
    assert len(fig.axes) == 1 and len(fig.axes[0].collections) == 2  # two shaded bands
    fig.savefig(tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    assert len(plot_forecast(data, f.predict()).axes) == 2  # no intervals, one subplot per channel
    with pytest.raises(ValueError, match="not in both"):
        plot_forecast(data, forecast, columns=["nope"])


def test_plot_forecast_draws_each_series_of_a_long_frame(tmp_path):
    rng = np.random.default_rng(0)
    parts = [pd.DataFrame({"unique_id": sid, "ds": pd.date_range(start, periods=n, freq="D"),
                           "y": level + np.sin(np.arange(n) / 3) + 0.1 * rng.normal(size=n)})
             for sid, start, n, level in (("a", "2024-01-01", 80, 0.0), ("b", "2024-02-01", 60, 10.0))]
    long = pd.concat(parts, ignore_index=True)
    f = Forecaster("ar", lookback=7, horizon=5).fit(long)
    forecast = f.predict(level=[80])
    assert list(forecast.columns) == ["unique_id", "ds", "y", "y-lo-80", "y-hi-80"]
    fig = plot_forecast(long, forecast)
    assert len(fig.axes) == 2  # one row per series
    for ax, sid in zip(fig.axes, ("a", "b")):
        assert ax.get_ylabel() == f"{sid}: y" and len(ax.collections) == 1
        # the forecast line starts after that series' own history
        history_end = long[long.unique_id == sid].ds.max()
        forecast_x = pd.to_datetime(ax.lines[1].get_xdata())
        assert forecast_x.min() > history_end
    fig.savefig(tmp_path / "panel.png")
    assert len(plot_forecast(long, forecast, ids=["b"]).axes) == 1
    with pytest.raises(ValueError, match=r"ids \['zz'\] are not in the forecast"):
        plot_forecast(long, forecast, ids=["zz"])
    with pytest.raises(ValueError, match="history is not"):
        plot_forecast(long.set_index("ds")[["y"]], forecast)


def test_a_model_saved_without_calibration_loads_and_asks_to_refit_for_intervals(fitted, tmp_path):
    import json

    f, _ = fitted
    f.save(tmp_path / "m")
    config_path = tmp_path / "m" / "config.json"
    config = json.loads(config_path.read_text())
    del config["state"]["intervals"]  # as written before intervals existed
    config_path.write_text(json.dumps(config))
    g = Forecaster.load(tmp_path / "m")
    pd.testing.assert_frame_equal(g.predict(), f.predict())
    with pytest.raises(ValueError, match="refit"):
        g.predict(level=[80])
