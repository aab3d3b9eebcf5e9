"""Metrics in the data's units (issue 11, item 4): the metric math by hand, evaluate(units="original")
against a direct numpy computation over the windows, per-step values, MASE's season, save/load."""
import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from tsforecast import Forecaster
from tsforecast.metrics import (ErrorAccumulator, HorizonAccumulator, mape, mase, resolve_season, rmse,
                                seasonal_naive_scale, smape)

LOOKBACK, HORIZON, N_TRAIN = 12, 6, 80


# ---------------------------------------------------------------------------- the metric math, by hand
# Two channels, three time points: channel 0 has a zero target, channel 1 was constant in training.
TRUE = np.array([[2.0, 5.0], [0.0, 5.0], [4.0, 5.0]])
PRED = np.array([[1.0, 5.0], [1.0, 6.0], [5.0, 5.0]])
# errors: channel 0 -> 1, 1, 1; channel 1 -> 0, 1, 0


def test_metric_functions_against_hand_computed_values():
    assert rmse(TRUE, PRED) == pytest.approx(np.sqrt(4 / 6))
    # MAPE skips the zero target: (1/2 + 1/4 + 0 + 1/5 + 0) / 5 non-zero targets
    assert mape(TRUE, PRED) == pytest.approx(100 * (0.5 + 0.25 + 0.2) / 5)
    # sMAPE: 2|e| / (|y| + |yhat|) for all six terms
    assert smape(TRUE, PRED) == pytest.approx(100 * (2 / 3 + 2 / 1 + 2 / 9 + 0 + 2 / 11 + 0) / 6)
    assert smape([0.0, 1.0], [0.0, 1.0]) == 0.0  # both zero: a perfect forecast, not 0/0
    # MASE: channel 0's MAE 1 over its scale 0.5; channel 1 (scale 2) MAE 1/3
    assert mase(TRUE, PRED, [0.5, 2.0]) == pytest.approx((1 / 0.5 + (1 / 3) / 2.0) / 2)


def test_mase_leaves_out_a_constant_channel_with_a_warning():
    with pytest.warns(RuntimeWarning, match=r"leaves out channels \[1\].*constant"):
        assert mase(TRUE, PRED, [0.5, 0.0]) == pytest.approx(1 / 0.5)
    with pytest.warns(RuntimeWarning, match="constant.*NaN"):
        assert np.isnan(mase(TRUE, PRED, [0.0, 0.0]))


def test_mape_of_only_zero_targets_is_nan_with_a_warning():
    with pytest.warns(RuntimeWarning, match="every target is 0"):
        assert np.isnan(mape([0.0, 0.0], [1.0, 2.0]))


def test_seasonal_naive_scale_by_hand():
    values = np.array([[1.0, 3.0], [2.0, 3.0], [4.0, 3.0], [8.0, 3.0], [9.0, 3.0]])
    scale, used = seasonal_naive_scale(values, 2)
    np.testing.assert_allclose(scale, [(3 + 6 + 5) / 3, 0.0])  # |4-1|, |8-2|, |9-4|; the constant channel: 0
    assert used == 2
    scale, used = seasonal_naive_scale(values, 5)  # 5 rows: no seasonal difference, so lag 1
    np.testing.assert_allclose(scale, [(1 + 2 + 4 + 1) / 4, 0.0])
    assert used == 1
    assert resolve_season(None, "MS") == 12 and resolve_season(None, "QS") == 4 and resolve_season(3, "MS") == 3
    with pytest.raises(ValueError, match="season_length must be a positive integer"):
        resolve_season(0, "MS")


def test_horizon_accumulator_streams_like_one_batch():
    rng = np.random.default_rng(0)
    true, pred = rng.normal(size=(10, 4, 3)), rng.normal(size=(10, 4, 3))
    streamed, whole = HorizonAccumulator([1.0, 2.0, 3.0]), HorizonAccumulator([1.0, 2.0, 3.0])
    for chunk in (slice(0, 3), slice(3, 10)):
        streamed.update(torch.from_numpy(true[chunk]), torch.from_numpy(pred[chunk]))
    whole.update(torch.from_numpy(true), torch.from_numpy(pred))
    a, b = streamed.result(), whole.result()
    assert a == pytest.approx(b) and a["n_windows"] == 10
    assert a["mase"] == pytest.approx(mase(true, pred, [1.0, 2.0, 3.0]))


# ---------------------------------------------------------------------------- evaluate(units="original")
def monthly_frame(n=120, seed=0):
    """Monthly sales with a yearly season (level ~100) and small counts with exact zeros."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    sales = 100 + 20 * np.sin(2 * np.pi * t / 12) + 0.5 * t + rng.normal(scale=3, size=n)
    counts = rng.poisson(1.5, size=n).astype(float)
    return pd.DataFrame({"sales": sales, "counts": counts}, index=pd.date_range("2010-01-01", periods=n, freq="MS"))


def windows_of(forecaster, frame, lookback, horizon):
    """(targets, forecasts) over every stride-1 window of ``frame``, built one by one with predict()."""
    values, starts = frame.to_numpy(), range(len(frame) - lookback - horizon + 1)
    truth = np.stack([values[s + lookback:s + lookback + horizon] for s in starts])
    forecast = np.stack([forecaster.predict(frame.iloc[s:s + lookback]).to_numpy() for s in starts])
    # the naive model repeats the last look-back value (up to its float32 arithmetic)
    np.testing.assert_allclose(forecast, np.stack([np.repeat(values[s + lookback - 1][None], horizon, axis=0)
                                                   for s in starts]), atol=1e-5)
    return truth, forecast


@pytest.fixture(scope="module")
def fitted():
    df = monthly_frame()
    train, test = df.iloc[:N_TRAIN], df.iloc[N_TRAIN - LOOKBACK:]
    return Forecaster(model="naive", lookback=LOOKBACK, horizon=HORIZON, device="cpu").fit(train), train, test


def test_evaluate_in_original_units_matches_numpy(fitted):
    f, train, test = fitted
    result = f.evaluate(test, units="original")
    assert set(result) == {"mae", "rmse", "mape", "smape", "mase", "n_windows"}
    truth, forecast = windows_of(f, test, LOOKBACK, HORIZON)
    assert result["n_windows"] == len(truth) == len(test) - LOOKBACK - HORIZON + 1
    err = np.abs(forecast - truth)
    nonzero = truth != 0
    assert (~nonzero).any()  # the counts channel has exact zeros, which MAPE must skip
    seasonal = np.mean(np.abs(train.to_numpy()[12:] - train.to_numpy()[:-12]), axis=0)
    expected = {
        "mae": err.mean(),
        "rmse": np.sqrt((err ** 2).mean()),
        "mape": 100 * (err[nonzero] / np.abs(truth[nonzero])).mean(),
        "smape": 100 * np.mean(2 * err / (np.abs(truth) + np.abs(forecast))),  # no forecast is exactly 0
        "mase": np.mean(err.mean(axis=(0, 1)) / seasonal),
    }
    for name, value in expected.items():
        assert result[name] == pytest.approx(value, rel=1e-6), name
    np.testing.assert_allclose(f.mase_scale_, seasonal, rtol=1e-12)


def test_per_step_values_average_back_to_the_overall_values(fitted):
    f, _, test = fitted
    clean = test.assign(counts=test["counts"] + 1.0)  # no zero target: MAPE's per-step weights are equal
    result = f.evaluate(clean, units="original", per_step=True)
    steps = result["per_step"]
    assert list(steps.index) == list(range(1, HORIZON + 1)) and steps.index.name == "step"
    assert list(steps.columns) == ["mae", "rmse", "mape", "smape", "mase"]
    for name in ("mae", "mape", "smape", "mase"):
        assert steps[name].mean() == pytest.approx(result[name], rel=1e-12), name
    assert np.sqrt((steps["rmse"] ** 2).mean()) == pytest.approx(result["rmse"], rel=1e-12)
    # the naive forecast degrades with the horizon on a trending, seasonal series
    assert steps["mae"].iloc[-1] > steps["mae"].iloc[0]
    # per_step values equal to evaluating that single step: the first step is a horizon-1 evaluation
    assert f.evaluate(clean.iloc[:-(HORIZON - 1)], horizon=1, units="original")["mae"] == \
        pytest.approx(steps["mae"].iloc[0], rel=1e-12)


def test_mase_season_from_the_frequency_and_overridden(fitted):
    f, train, test = fitted
    assert f.mase_season_ == 12
    g = Forecaster(model="naive", lookback=LOOKBACK, horizon=HORIZON, season_length=3, device="cpu").fit(train)
    assert g.mase_season_ == 3
    values = train.to_numpy()
    np.testing.assert_allclose(g.mase_scale_, np.mean(np.abs(values[3:] - values[:-3]), axis=0), rtol=1e-12)
    same, changed = f.evaluate(test, units="original"), g.evaluate(test, units="original")
    assert changed["mae"] == same["mae"] and changed["mase"] != pytest.approx(same["mase"], rel=1e-3)
    # too few training rows for one seasonal difference: lag 1, recorded
    h = Forecaster(model="naive", lookback=LOOKBACK, horizon=HORIZON, season_length=N_TRAIN, device="cpu").fit(train)
    assert h.mase_season_ == 1
    np.testing.assert_allclose(h.mase_scale_, np.mean(np.abs(np.diff(values, axis=0)), axis=0), rtol=1e-12)
    with pytest.raises(ValueError, match="season_length"):
        Forecaster(model="naive", lookback=LOOKBACK, horizon=HORIZON, season_length="12").fit(train)


def test_a_channel_constant_in_training_gives_finite_mase_and_a_warning(fitted):
    _, train, test = fitted
    flat = train.assign(counts=2.0)
    f = Forecaster(model="naive", lookback=LOOKBACK, horizon=HORIZON, device="cpu").fit(flat)
    assert f.mase_scale_[1] == 0.0
    with pytest.warns(RuntimeWarning, match=r"MASE leaves out channels \['counts'\]"):
        result = f.evaluate(test, units="original")
    truth, forecast = windows_of(f, test, LOOKBACK, HORIZON)
    assert result["mase"] == pytest.approx(np.abs(forecast - truth)[..., 0].mean() / f.mase_scale_[0], rel=1e-6)
    assert all(np.isfinite(result[k]) for k in ("mae", "rmse", "mape", "smape", "mase"))


def test_scaled_units_are_the_protocol_figures_unchanged():
    rng = np.random.default_rng(1)
    df = pd.DataFrame(rng.normal(size=(200, 3)).cumsum(axis=0), columns=list("abc"),
                      index=pd.date_range("2020-01-01", periods=200, freq="h"))
    f = Forecaster(model="ar", lookback=24, horizon=8, device="cpu").fit(df.iloc[:150])
    test = df.iloc[150 - 24:]
    default = f.evaluate(test)
    assert default == f.evaluate(test, units="scaled") and set(default) == {"mse", "mae", "n_windows"}
    # the protocol's numbers: the global mean on the training-scaled data, via ErrorAccumulator
    scaled = f.scaler_.transform(test.to_numpy())
    truth = np.stack([scaled[s + 24:s + 32] for s in range(len(test) - 31)])
    forecast = np.stack([f.scaler_.transform(f.predict(test.iloc[s:s + 24]).to_numpy()) for s in range(len(test) - 31)])
    acc = ErrorAccumulator()
    acc.update(torch.from_numpy(truth), torch.from_numpy(forecast))
    assert default["mse"] == pytest.approx(acc.result()["mse"], rel=1e-5)
    assert f.score(test) == -default["mse"]
    stepped = f.evaluate(test, per_step=True)
    assert {k: stepped[k] for k in default} == default  # the overall figures do not move with per_step
    assert list(stepped["per_step"].columns) == ["mse", "mae"]
    assert stepped["per_step"]["mse"].mean() == pytest.approx(default["mse"], rel=1e-9)


def test_bad_units_name_the_allowed_values(fitted):
    f, _, test = fitted
    with pytest.raises(ValueError, match=r"units must be one of \('scaled', 'original'\), got 'data'"):
        f.evaluate(test, units="data")


def test_save_load_round_trips_mase(fitted, tmp_path):
    f, _, test = fitted
    f.save(tmp_path / "model")
    loaded = Forecaster.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.mase_scale_, f.mase_scale_)
    assert loaded.mase_season_ == f.mase_season_
    assert loaded.evaluate(test, units="original") == f.evaluate(test, units="original")
    # a model saved before MASE's scale was recorded: MASE is NaN with a warning, the rest still works
    config_path = tmp_path / "model" / "config.json"
    config = json.loads(config_path.read_text())
    for key in ("mase_scales", "mase_season"):
        config["state"].pop(key)
    config_path.write_text(json.dumps(config))
    old = Forecaster.load(tmp_path / "model")
    with pytest.warns(RuntimeWarning, match="MASE is unavailable.*refit"):
        result = old.evaluate(test, units="original")
    assert np.isnan(result["mase"]) and result["mae"] == f.evaluate(test, units="original")["mae"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the protocol figures need no MASE scale: no warning
        assert old.evaluate(test) == f.evaluate(test)
