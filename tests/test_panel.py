"""Panels at the Forecaster level (issue 12): long frames of many series, per-series dates, ragged
series, missing values under ``missing="mask"``, future-known and past covariates, ARX, errors,
persistence and intervals. Tiny models (each spec's ``test_params``), few epochs, fixed seeds."""
from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from tsforecast import Forecaster
from tsforecast.data.windows import Windows
from tsforecast.models.base import Dims
from tsforecast.models.registry import get_model_class
from tsforecast.training import batch_loss


def spec(name: str, **params):
    cls = get_model_class(name)
    return cls(**{**cls.test_params(), **params})


def long_frame(series: dict, freq: str = "D", seed: int = 0, tz=None, covariates=()) -> pd.DataFrame:
    """``{id: (start, rows)}`` -> a long frame ``unique_id, ds, y[, covariates]`` of random walks."""
    rng = np.random.default_rng(seed)
    parts = []
    for sid, (start, rows) in series.items():
        part = pd.DataFrame({"unique_id": sid, "ds": pd.date_range(start, periods=rows, freq=freq, tz=tz),
                             "y": rng.normal(size=rows).cumsum() + 5.0})
        for name in covariates:
            part[name] = rng.normal(size=rows)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def rows_of(frame: pd.DataFrame, sid) -> pd.DataFrame:
    return frame[frame["unique_id"] == sid].reset_index(drop=True)


def quiet_fit(forecaster: Forecaster, *args, **kwargs) -> Forecaster:
    # small data: the batch-size and calibration warnings are expected and not what these tests check
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return forecaster.fit(*args, **kwargs)


# ---------------------------------------------------------------------------- 1. one series: long == wide
@pytest.mark.parametrize("name", ["ar", "arnet", "itransformer"])
def test_a_one_series_long_panel_forecasts_exactly_what_the_wide_path_does(name):
    wide = long_frame({"a": ("2021-01-01", 90)}, seed=1).set_index("ds")[["y"]]
    wide.index.name = None
    long = wide.rename_axis("ds").reset_index()
    long.insert(0, "unique_id", "a")
    settings = dict(lookback=12, horizon=4, max_epochs=2, learning_rate=1e-2, random_state=0)
    f_wide = quiet_fit(Forecaster(model=spec(name), **settings), wide)
    f_long = quiet_fit(Forecaster(model=spec(name), **settings), long)

    for kwargs in ({}, {"horizon": 9}, {"level": [80]}):  # the fitted horizon, a rollout, intervals
        p_wide, p_long = f_wide.predict(**kwargs), f_long.predict(**kwargs)
        assert list(p_long.columns) == ["unique_id", "ds", *p_wide.columns]
        assert (p_long["unique_id"] == "a").all()
        assert list(p_long["ds"]) == list(p_wide.index)
        np.testing.assert_array_equal(p_long[p_wide.columns].to_numpy(), p_wide.to_numpy())
    for kwargs in ({}, {"units": "original"}, {"level": [80]}):
        assert f_long.evaluate(long, **kwargs) == f_wide.evaluate(wide, **kwargs)
    np.testing.assert_array_equal(f_long.scalers_[0].mean_, f_wide.scaler_.mean_)


# ---------------------------------------------------------------------------- 2. per-series dates
@pytest.mark.parametrize("freq, starts", [("D", ("2021-01-01", "2021-01-09")),
                                          ("MS", ("2015-01-01", "2016-06-01")),
                                          ("W-SUN", ("2020-01-05", "2020-03-01"))])
def test_each_series_continues_from_its_own_last_date_in_the_inputs_frequency(freq, starts):
    data = long_frame({"a": (starts[0], 30), "b": (starts[1], 24)}, freq=freq)
    f = Forecaster(model="ar", lookback=4, horizon=3).fit(data)
    out = f.predict()
    assert list(out.columns) == ["unique_id", "ds", "y"]
    for sid in ("a", "b"):
        last = rows_of(data, sid)["ds"].iloc[-1]
        expected = pd.date_range(last, periods=4, freq=freq)[1:]
        assert list(rows_of(out, sid)["ds"]) == list(expected)
    # the two series end on different dates, so their forecasts do too
    assert rows_of(out, "a")["ds"].iloc[0] != rows_of(out, "b")["ds"].iloc[0]


def test_a_tz_aware_long_frame_keeps_its_time_zone_across_a_dst_change():
    # hourly steps over Europe/Berlin's spring-forward night (2021-03-28): the 23-hour day stays regular
    data = long_frame({"a": ("2021-03-26 00:00", 48), "b": ("2021-03-25 12:00", 62)}, freq="h",
                      tz="Europe/Berlin")
    f = Forecaster(model="ar", lookback=6, horizon=5).fit(data)
    out = f.predict()
    assert str(out["ds"].dt.tz) == "Europe/Berlin"
    for sid in ("a", "b"):
        last = rows_of(data, sid)["ds"].iloc[-1]
        assert list(rows_of(out, sid)["ds"]) == [last + pd.Timedelta(hours=k) for k in range(1, 6)]


def test_a_period_dtype_time_column_gives_periods_back():
    data = long_frame({"a": ("2015-01", 30), "b": ("2016-03", 26)}, freq="MS")
    data["ds"] = data["ds"].dt.to_period("M")
    out = Forecaster(model="ar", lookback=4, horizon=3).fit(data).predict()
    assert isinstance(out["ds"].dtype, pd.PeriodDtype)
    assert list(rows_of(out, "b")["ds"]) == list(pd.period_range("2018-05", periods=3, freq="M"))


# ---------------------------------------------------------------------------- 3. ragged panel
def ragged_panel():
    return long_frame({"a": ("2021-01-01", 80), "b": ("2021-02-10", 50), "c": ("2020-12-01", 65)}, seed=3)


def test_a_ragged_panel_fits_predicts_and_evaluates_every_series():
    data = ragged_panel()
    lookback, horizon = 8, 3
    f = quiet_fit(Forecaster(model=spec("arnet"), lookback=lookback, horizon=horizon, max_epochs=2,
                             learning_rate=1e-2, random_state=0), data)
    assert f.series_ids_ == ["a", "b", "c"]
    assert len(f.scalers_) == 3 and f.mase_scales_.shape == (3, 1)
    # each series is scaled on its own training rows (the first 90% here: the rest is the hold-out)
    assert not np.allclose(f.scalers_[0].mean_, f.scalers_[1].mean_)

    out = f.predict()
    assert list(out.columns) == ["unique_id", "ds", "y"]
    assert list(out["unique_id"]) == ["a"] * 3 + ["b"] * 3 + ["c"] * 3
    assert np.isfinite(out["y"]).all()

    scores = f.evaluate(data)
    rows = data.groupby("unique_id").size()
    assert scores["n_windows"] == int((rows - lookback - horizon + 1).sum())
    assert np.isfinite(scores["mse"]) and np.isfinite(scores["mae"])
    assert set(f.evaluate(data, units="original")) >= {"mae", "rmse", "mase", "n_windows"}

    # a subset by id, or by giving only some series' rows: the same forecasts as in the full call
    only_b = f.predict(ids=["b"])
    pd.testing.assert_frame_equal(only_b, rows_of(out, "b"), check_exact=True)
    from_x = f.predict(X=rows_of(data, "b"))
    pd.testing.assert_frame_equal(from_x, only_b, check_exact=True)
    two = f.predict(X=data, ids=["c", "a"])
    assert set(two["unique_id"]) == {"a", "c"}
    pd.testing.assert_frame_equal(rows_of(two, "c"), rows_of(out, "c"), check_exact=True)
    # evaluate on one series scores that series' windows only
    assert f.evaluate(rows_of(data, "c"))["n_windows"] == 65 - lookback - horizon + 1


# ---------------------------------------------------------------------------- 4. missing values
def test_masked_batch_loss_is_the_mse_over_the_observed_targets_only():
    torch.manual_seed(0)
    lookback, horizon = 6, 3
    dims = Dims(n_channels=2, lookback=lookback, horizon=horizon, n_time_features=0)
    network = spec("itransformer").build(dims).eval()
    values = torch.randn(40, 2)
    observed = torch.rand(40, 2) > 0.3
    windows = Windows(values, None, lookback, horizon, observed=observed)
    batch = next(windows.batches(64))
    assert batch.y_observed is not None and not batch.y_observed.all()
    with torch.no_grad():
        loss = batch_loss(network, batch).item()
        forecast = network(batch.x, None, None)[:, :horizon].numpy()
    y, seen = batch.y.numpy(), batch.y_observed.numpy()
    by_hand = float(np.mean((forecast[seen] - y[seen]) ** 2, dtype=np.float64))
    assert loss == pytest.approx(by_hand, rel=1e-6)
    # the targets under the mask are never read: wild values there leave the loss as it was
    wild = batch.y.clone()
    wild[~batch.y_observed] = 1e6
    batch.y = wild
    with torch.no_grad():
        assert batch_loss(network, batch).item() == loss


def tail_nan_and_truncated(rows=70, seed=4):
    """A series whose last target is NaN, and the same series without that row."""
    data = long_frame({"a": ("2021-01-01", rows), "b": ("2021-01-20", rows - 10)}, seed=seed)
    with_nan = data.copy()
    last_a = with_nan.index[with_nan["unique_id"] == "a"][-1]
    with_nan.loc[last_a, "y"] = np.nan
    return with_nan, data.drop(index=last_a)


def test_ar_a_missing_target_changes_nothing_but_the_rows_it_would_have_entered():
    with_nan, truncated = tail_nan_and_truncated()
    settings = dict(model="ar", lookback=3, horizon=1, missing="mask")
    f_nan = Forecaster(**settings).fit(with_nan)
    f_cut = Forecaster(**settings).fit(truncated)
    # the scaler skips the NaN, least squares skips the row whose target it is: the same fit
    np.testing.assert_array_equal(f_nan.network_.coefficients()[0], f_cut.network_.coefficients()[0])
    np.testing.assert_array_equal(f_nan.network_.coefficients()[1], f_cut.network_.coefficients()[1])
    np.testing.assert_array_equal(f_nan.scalers_[0].mean_, f_cut.scalers_[0].mean_)


def test_ar_with_an_interior_nan_is_least_squares_over_the_rows_without_it():
    y = long_frame({"a": ("2021-01-01", 120)}, seed=5)["y"].to_numpy()
    y = y - y.mean()
    y[40] = np.nan
    wide = pd.DataFrame({"y": y}, index=pd.date_range("2021-01-01", periods=120, freq="D"))
    f = Forecaster(model="ar", lookback=2, horizon=1, missing="mask").fit(wide)
    rows = [[1.0, y[t - 1], y[t - 2]] for t in range(2, 120) if not np.isnan([y[t], y[t - 1], y[t - 2]]).any()]
    targets = [y[t] for t in range(2, 120) if not np.isnan([y[t], y[t - 1], y[t - 2]]).any()]
    assert len(rows) == 118 - 3  # the NaN is the target of one row and a lag of two
    params, *_ = np.linalg.lstsq(np.array(rows), np.array(targets), rcond=None)
    np.testing.assert_allclose(f.coef_[0], params[1:], rtol=1e-5)
    np.testing.assert_allclose(f.intercept_, params[:1], atol=1e-5)


def test_gradient_model_a_masked_target_never_enters_the_fit():
    # horizon 1 and no hold-out: a window whose one target is missing is left out, and the last row is
    # never an input of a training window, so the fit equals the one on the series without that row
    with_nan, truncated = tail_nan_and_truncated()
    settings = dict(model=spec("arnet"), lookback=6, horizon=1, max_epochs=2, learning_rate=1e-2,
                    validation_fraction=0.0, missing="mask", random_state=0)
    f_nan = quiet_fit(Forecaster(**settings), with_nan)
    f_cut = quiet_fit(Forecaster(**settings), truncated)
    for a, b in zip(f_nan.network_.state_dict().values(), f_cut.network_.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    pd.testing.assert_frame_equal(f_nan.predict(X=truncated), f_cut.predict(X=truncated), check_exact=True)
    assert f_nan.evaluate(truncated) == f_cut.evaluate(truncated)


def test_training_reads_no_value_under_the_mask():
    # the same windows with wild values at masked target-only positions (each series' last rows, never
    # an input): the trained weights are identical bit for bit
    from tsforecast.training import TrainingConfig, train

    lookback, horizon = 6, 2
    values = torch.randn(60, 1)
    observed = torch.ones(60, 1, dtype=torch.bool)
    observed[28:30] = False  # the last rows of the first series (rows 0..29)
    observed[59] = False
    wild = values.clone()
    wild[~observed] = 1e6
    segments = [(0, 30), (30, 30)]
    weights = []
    for v in (values, wild):
        torch.manual_seed(0)
        network = spec("arnet").build(Dims(n_channels=1, lookback=lookback, horizon=horizon, n_time_features=0))
        windows = Windows(v, None, lookback, horizon, segments=segments, observed=observed)
        config = TrainingConfig(max_epochs=2, batch_size=2, learning_rate=1e-2, patience=3, lr_schedule="halving")
        train(network, windows, None, config, torch.Generator().manual_seed(0))
        weights.append([p.detach().clone() for p in network.parameters()])
    for a, b in zip(*weights):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_a_gap_in_timestamps_is_a_row_of_nan_under_mask_and_an_error_under_raise():
    data = long_frame({"a": ("2021-01-01", 60), "b": ("2021-01-05", 50)}, seed=6)
    gap_row = data.index[(data["unique_id"] == "b") & (data["ds"] == pd.Timestamp("2021-01-20"))][0]
    with_gap = data.drop(index=gap_row)
    nan_row = data.copy()
    nan_row.loc[gap_row, "y"] = np.nan
    settings = dict(model=spec("arnet"), lookback=6, horizon=2, max_epochs=2, learning_rate=1e-2, random_state=0)

    with pytest.raises(ValueError, match=r"series 'b' has 1 gap\(s\).*2021-01-19 00:00:00 -> 2021-01-21 00:00:00"
                                         r".*missing='mask'") as err:
        Forecaster(**settings).fit(with_gap)
    # the fill the message shows works on the long frame as given
    df = with_gap.copy()
    fix = re.search(r"e\.g\. (df = .*\.reset_index\(\))\)", str(err.value)).group(1)
    exec(fix, {}, scope := {"df": df})
    assert len(scope["df"]) == len(data) and not scope["df"]["y"].isna().any()
    quiet_fit(Forecaster(**settings), scope["df"])

    f_gap = quiet_fit(Forecaster(missing="mask", **settings), with_gap)
    f_nan = quiet_fit(Forecaster(missing="mask", **settings), nan_row)
    assert len(f_gap.histories_[1]) == 6
    pd.testing.assert_frame_equal(f_gap.predict(), f_nan.predict(), check_exact=True)
    assert f_gap.evaluate(nan_row) == f_nan.evaluate(nan_row)


def test_a_nan_in_the_last_lookback_at_predict_is_reported():
    data = long_frame({"a": ("2021-01-01", 40), "b": ("2021-01-01", 40)}, seed=7)
    data.loc[data.index[(data["unique_id"] == "b")][-2], "y"] = np.nan
    f = Forecaster(model="ar", lookback=4, horizon=2, missing="mask").fit(data)
    with pytest.warns(UserWarning, match=r"1 series have missing target values in their last lookback=4 rows "
                                         r"\('b': 1\).*last observation carried forward"):
        out = f.predict()
    assert np.isfinite(out["y"]).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f.predict(ids=["a"])  # a series without a gap: no warning


def test_nan_with_missing_raise_names_it_and_each_suggested_fix_works():
    data = long_frame({"a": ("2021-01-01", 30), "b": ("2021-01-01", 30)}, seed=8, covariates=["f"])
    data.loc[33, "y"] = np.nan
    settings = dict(model="ar", lookback=4, horizon=2, future_covariates=["f"])
    with pytest.raises(ValueError, match=r"series 'b' contains 1 NaN values \(first: at 2021-01-04 00:00:00 in "
                                         r"'y'\).*missing='mask'") as err:
        Forecaster(**settings).fit(data)
    fix = re.search(r"e\.g\. (df\[.*)\) or drop", str(err.value)).group(1)
    exec(fix, {}, scope := {"df": data.copy()})
    assert not scope["df"][["y", "f"]].isna().any().any()
    assert (scope["df"]["unique_id"] == data["unique_id"]).all()
    Forecaster(**settings).fit(scope["df"])
    Forecaster(missing="mask", **settings).fit(data)


# ---------------------------------------------------------------------------- 5. covariates
def driven_panel(n_series=4, rows=200, seed=0):
    """``y_t = 0.5 y_{t-1} + 2 f_t + 0.1 e_t``, ``f`` i.i.d. and known in advance."""
    rng = np.random.default_rng(seed)
    parts = []
    for s in range(n_series):
        f, y = rng.normal(size=rows), np.zeros(rows)
        for t in range(rows):
            y[t] = 0.5 * (y[t - 1] if t else 0.0) + 2.0 * f[t] + 0.1 * rng.normal()
        parts.append(pd.DataFrame({"unique_id": f"s{s}", "ds": pd.date_range("2021-01-01", periods=rows, freq="D"),
                                   "y": y, "f": f}))
    return pd.concat(parts, ignore_index=True)


def leading_panel(n_series=4, rows=200, seed=0):
    """``y_t = 2 z_{t-1} + 0.1 e_t``, ``z`` i.i.d. and observed only up to the forecast origin."""
    rng = np.random.default_rng(seed)
    parts = []
    for s in range(n_series):
        z = rng.normal(size=rows)
        y = 2.0 * np.concatenate([[0.0], z[:-1]]) + 0.1 * rng.normal(size=rows)
        parts.append(pd.DataFrame({"unique_id": f"s{s}", "ds": pd.date_range("2021-01-01", periods=rows, freq="D"),
                                   "y": y, "z": z}))
    return pd.concat(parts, ignore_index=True)


def covariate_gain(data, column, role, name, lookback, horizon, params=None, **settings):
    """Held-out scaled MSE with the covariate, and without it (the column dropped)."""
    train = data.groupby("unique_id").head(160)
    test = data.groupby("unique_id").tail(40 + lookback)
    common = dict(lookback=lookback, horizon=horizon, batch_size=32, validation_fraction=0.0, random_state=0,
                  **settings)
    model = spec(name, **(params or {}))
    f_with = quiet_fit(Forecaster(model=model, **{role: [column]}, **common), train)
    f_without = quiet_fit(Forecaster(model=spec(name, **(params or {})), **common), train.drop(columns=column))
    return f_with.evaluate(test)["mse"], f_without.evaluate(test.drop(columns=column))["mse"]


# (family, settings): short trainings that learn the covariate. S-Mamba reads the future covariate as
# the last token of its bidirectional scan, behind the calendar tokens, and learns it only slowly
# through them: it is checked without calendar features, with a wider state.
FUTURE_SETTINGS = {
    "ar": dict(),
    "arnet": dict(max_epochs=10, learning_rate=1e-2),
    "itransformer": dict(max_epochs=5, learning_rate=1e-2),
    "smamba": dict(max_epochs=5, learning_rate=1e-2, time_features=None,
                   params=dict(d_model=32, d_ff=32, e_layers=2)),
    "autoformer": dict(max_epochs=3, learning_rate=1e-2),
    "informer": dict(max_epochs=3, learning_rate=1e-2),
}


def test_every_family_that_supports_future_covariates_is_tested():
    from tsforecast.models.registry import MODELS

    assert sorted(FUTURE_SETTINGS) == sorted(n for n, c in MODELS.items() if c.supports_future_covariates)


@pytest.mark.parametrize("name", sorted(FUTURE_SETTINGS))
def test_a_driving_future_covariate_beats_the_fit_without_it(name):
    with_f, without = covariate_gain(driven_panel(), "f", "future_covariates", name, lookback=16, horizon=4,
                                     **FUTURE_SETTINGS[name])
    assert without > 0.8  # the driver is i.i.d.: without it most of the variance is unpredictable
    assert with_f < 0.5 * without, (with_f, without)


@pytest.mark.parametrize("name", ["itransformer", "informer"])
def test_a_leading_past_covariate_helps(name):
    with_z, without = covariate_gain(leading_panel(), "z", "past_covariates", name, lookback=16, horizon=1,
                                     max_epochs=3, learning_rate=1e-2)
    assert without > 0.8
    assert with_z < 0.5 * without, (with_z, without)


def test_past_covariates_are_inputs_only_and_hold_their_last_value_in_a_rollout():
    data = leading_panel(n_series=2, rows=80)
    f = quiet_fit(Forecaster(model=spec("itransformer"), lookback=8, horizon=2, max_epochs=1,
                             past_covariates=["z"], random_state=0), data)
    assert f.roles_.past == ("z",) and f.columns_ == ["y"]
    out = f.predict(horizon=4)  # two network calls: the second reads z beyond the origin
    assert list(out.columns) == ["unique_id", "ds", "y"]  # never forecast
    # the rollout's second call is a forecast from the data extended by the first one's forecasts, with
    # z held at its last observed value
    s0 = rows_of(data, "s0")
    first = rows_of(out, "s0").iloc[:2]
    extended = pd.concat([s0, pd.DataFrame({"unique_id": "s0", "ds": first["ds"], "y": first["y"],
                                            "z": s0["z"].iloc[-1]})], ignore_index=True)
    second = f.predict(X=extended, horizon=2)
    np.testing.assert_allclose(second["y"].to_numpy(), rows_of(out, "s0")["y"].iloc[2:].to_numpy(), rtol=1e-5)
    # z inside the look-back is read; z before it is not
    moved = data.copy()
    moved.loc[moved.index[-1], "z"] += 1.0
    assert not np.array_equal(f.predict(X=moved)["y"], f.predict(X=data)["y"])
    early = data.copy()
    early.loc[0:60, "z"] = 99.0
    pd.testing.assert_frame_equal(f.predict(X=early), f.predict(X=data), check_exact=True)


# ---------------------------------------------------------------------------- 6. ARX == statsmodels
def test_arx_forecaster_equals_statsmodels_autoreg_with_exog():
    from statsmodels.tsa.ar_model import AutoReg

    rng = np.random.default_rng(0)
    n, horizon, order = 300, 5, 2
    f = rng.normal(size=n + horizon)
    y = np.zeros(n)
    for t in range(n):
        y[t] = 0.5 + 0.6 * (y[t - 1] if t else 0) - 0.2 * (y[t - 2] if t > 1 else 0) + 1.5 * f[t] + 0.3 * rng.normal()
    y += 10.0
    index = pd.date_range("2020-01-01", periods=n + horizon, freq="D")
    frame = pd.DataFrame({"y": y, "f": f[:n]}, index=index[:n])
    forecaster = Forecaster(model="ar", lookback=order, horizon=horizon, future_covariates=["f"]).fit(frame)
    result = AutoReg(y, lags=order, trend="c", exog=f[:n]).fit()
    # the network keeps float32 weights: agreement to float32's precision, not 1e-8
    np.testing.assert_allclose(forecaster.coef_[0], result.params[1:1 + order], rtol=1e-6)
    np.testing.assert_allclose(forecaster.exog_coef_[0], result.params[1 + order:], rtol=1e-6)
    np.testing.assert_allclose(forecaster.intercept_, result.params[:1], rtol=1e-6)
    future = pd.DataFrame({"f": f[n:]}, index=index[n:])
    out = forecaster.predict(future_covariates=future)
    expected = result.predict(start=n, end=n + horizon - 1, exog_oos=f[n:, None])
    assert list(out.index) == list(index[n:])
    np.testing.assert_allclose(out["y"].to_numpy(), expected, rtol=1e-6)


# ---------------------------------------------------------------------------- 7. bad inputs
def covariate_panel():
    return long_frame({"a": ("2021-01-01", 40), "b": ("2021-01-06", 36)}, seed=9, covariates=["f"])


def future_for(f: Forecaster, horizon: int, value=1.0) -> pd.DataFrame:
    """Long future covariates for every fitted series' forecast steps."""
    parts = []
    for sid, history in zip(f.series_ids_, f.histories_):
        last = f.calendar_.external(history.index)[-1]
        parts.append(pd.DataFrame({"unique_id": sid, "ds": pd.date_range(last, periods=horizon + 1, freq="D")[1:],
                                   "f": value}))
    return pd.concat(parts, ignore_index=True)


def test_future_covariates_missing_columns_or_dates_are_named():
    data = covariate_panel()
    f = Forecaster(model="ar", lookback=4, horizon=3, future_covariates=["f"]).fit(data)
    future = future_for(f, 3)
    with pytest.raises(ValueError, match=r"fitted with future covariates \['f'\]: predict needs their values for the "
                                         r"3 forecast steps"):
        f.predict()
    with pytest.raises(ValueError, match=r"future_covariates lacks the column\(s\) \['f'\]"):
        f.predict(future_covariates=future.drop(columns="f"))
    short = future.drop(index=future.index[-1])  # b's last step
    with pytest.raises(ValueError, match=r"lacks 1 of the 3 forecast steps of series 'b' \(first: 2021-02-13"):
        f.predict(future_covariates=short)
    with pytest.raises(ValueError, match=r"lacks 2 of the 5 forecast steps of series 'a'"):
        f.predict(horizon=5, future_covariates=future)  # a longer horizon needs more covariates
    assert len(f.predict(future_covariates=future)) == 6
    # the fit data lacking a declared covariate, and predict data lacking a fitted column
    with pytest.raises(ValueError, match=r"has no covariate column\(s\) \['g'\]"):
        Forecaster(model="ar", lookback=4, horizon=3, future_covariates=["g"]).fit(data)
    with pytest.raises(ValueError, match=r"predict data lacks the column\(s\) \['f'\]"):
        f.predict(X=data.drop(columns="f"), future_covariates=future)
    plain = Forecaster(model="ar", lookback=4, horizon=3).fit(data.drop(columns="f"))
    with pytest.raises(ValueError, match="fitted without future covariates"):
        plain.predict(future_covariates=future)


def test_evaluate_with_future_covariates_reads_them_from_the_frame():
    data = covariate_panel()
    f = Forecaster(model="ar", lookback=4, horizon=3, future_covariates=["f"]).fit(data)
    assert f.evaluate(data)["n_windows"] == (40 - 6) + (36 - 6)
    with pytest.raises(ValueError, match=r"evaluation data lacks the column\(s\) \['f'\]"):
        f.evaluate(data.drop(columns="f"))


def test_an_unknown_id_is_named_at_predict_and_evaluate():
    data = covariate_panel().drop(columns="f")
    f = Forecaster(model="ar", lookback=4, horizon=3).fit(data)
    stranger = long_frame({"zz": ("2021-01-01", 30)})
    message = r"series the forecaster was not fitted on: 'zz'; fit on them first \(known series: 'a', 'b'\)"
    with pytest.raises(ValueError, match="ids has " + message):
        f.predict(ids=["a", "zz"])
    with pytest.raises(ValueError, match="predict data has " + message):
        f.predict(X=stranger)
    with pytest.raises(ValueError, match="evaluation data has " + message):
        f.evaluate(stranger)


def test_ids_that_are_empty_or_have_no_rows_in_x_are_errors():
    data = covariate_panel().drop(columns="f")
    f = Forecaster(model="ar", lookback=4, horizon=3).fit(data)
    with pytest.raises(ValueError, match="ids is empty"):
        f.predict(ids=[])
    with pytest.raises(ValueError, match=r"ids 'a' have no rows in the predict data; add their rows to X, or leave "
                                         r"X=None"):
        f.predict(X=rows_of(data, "b"), ids=["a"])
    pd.testing.assert_frame_equal(f.predict(ids=["a"]), f.predict(X=data, ids=["a"]), check_exact=True)


def test_future_covariate_times_of_another_kind_are_errors_not_a_silent_shift():
    # hourly in Europe/Berlin runs on UTC inside: naive local times read as UTC would move every value
    data = long_frame({"a": ("2021-03-01", 60), "b": ("2021-03-02", 50)}, freq="h", tz="Europe/Berlin",
                      covariates=["f"])
    f = Forecaster(model="ar", lookback=4, horizon=3, future_covariates=["f"]).fit(data)
    future = pd.concat([pd.DataFrame({"unique_id": sid, "ds": pd.date_range(rows_of(data, sid)["ds"].iloc[-1],
                                                                            periods=8, freq="h")[1:],
                                      "f": np.arange(7.0)}) for sid in ("a", "b")], ignore_index=True)
    naive = future.assign(ds=future["ds"].dt.tz_localize(None))
    with pytest.raises(ValueError, match=r"timestamps are tz-naive but the fit data's are in Europe/Berlin; "
                                         r"localize them with tz_localize\('Europe/Berlin'\)"):
        f.predict(future_covariates=naive)
    fixed = naive.assign(ds=naive["ds"].dt.tz_localize("Europe/Berlin"))
    pd.testing.assert_frame_equal(f.predict(future_covariates=fixed), f.predict(future_covariates=future))
    # the same instants in another zone are the same steps
    utc = future.assign(ds=future["ds"].dt.tz_convert("UTC"))
    pd.testing.assert_frame_equal(f.predict(future_covariates=utc), f.predict(future_covariates=future))
    # a wide fit reads future covariates indexed by time
    wide = rows_of(data, "a").set_index("ds")[["y", "f"]]
    g = Forecaster(model="ar", lookback=4, horizon=3, future_covariates=["f"]).fit(wide)
    wide_future = rows_of(future, "a").set_index("ds")[["f"]]
    with pytest.raises(TypeError, match="future_covariates' index must be timestamps"):
        g.predict(future_covariates=rows_of(future, "a"))
    assert len(g.predict(future_covariates=wide_future)) == 3


def test_a_series_without_one_observed_target_is_named():
    data = covariate_panel().drop(columns="f")
    data.loc[data["unique_id"] == "b", "y"] = np.nan
    with pytest.raises(ValueError, match=r"series 'b': column 'y' has no observed value in the training rows.*"
                                         r"df\[df\['unique_id'\] != 'b'\]") as err:
        Forecaster(model="ar", lookback=4, horizon=3, missing="mask").fit(data)
    df = data
    kept = eval(re.search(r"\((df\[df\[.*\])\)$", str(err.value)).group(1))
    assert Forecaster(model="ar", lookback=4, horizon=3, missing="mask").fit(kept).series_ids_ == ["a"]


def test_mixed_frequencies_across_series_are_an_error():
    data = pd.concat([long_frame({"a": ("2021-01-01", 30)}, freq="D"),
                      long_frame({"b": ("2021-01-03", 30)}, freq="W-SUN")], ignore_index=True)
    with pytest.raises(ValueError, match=r"mixes frequencies across series \('D' \(day\): 'a'; 'W-SUN' .*: 'b'\)"):
        Forecaster(model="ar", lookback=4, horizon=2).fit(data)


def test_duplicate_id_time_pairs_are_an_error_whose_fixes_work():
    data = covariate_panel().drop(columns="f")
    doubled = pd.concat([data, data.iloc[[45]]], ignore_index=True)
    with pytest.raises(ValueError, match=r"1 duplicate \(unique_id, ds\) pairs, the first \('b', 2021-01-11"):
        Forecaster(model="ar", lookback=4, horizon=3).fit(doubled)
    for fix in (doubled.drop_duplicates(["unique_id", "ds"]),
                doubled.groupby(["unique_id", "ds"], as_index=False).mean()):
        pd.testing.assert_frame_equal(Forecaster(model="ar", lookback=4, horizon=3).fit(fix).predict(),
                                      Forecaster(model="ar", lookback=4, horizon=3).fit(data).predict())


def test_a_series_too_short_for_one_window_is_skipped_with_a_warning_naming_it():
    data = long_frame({"a": ("2021-01-01", 40), "tiny": ("2021-01-01", 6), "b": ("2021-01-01", 30)})
    with pytest.warns(UserWarning, match=r"1 series skipped \('tiny'\): fewer than lookback \+ horizon = 7 rows"):
        f = Forecaster(model="ar", lookback=4, horizon=3).fit(data)
    assert f.series_ids_ == ["a", "b"]
    with pytest.warns(UserWarning, match=r"1 series skipped \('tiny'\)"):
        scores = f.evaluate(data.loc[data["unique_id"] != "b"])
    assert scores["n_windows"] == 40 - 7 + 1
    with pytest.raises(ValueError, match="no series of the fit data has lookback \\+ horizon = 7 rows"), \
            pytest.warns(UserWarning, match="skipped"):
        Forecaster(model="ar", lookback=4, horizon=3).fit(data[data["unique_id"] == "tiny"])


@pytest.mark.parametrize("name, role, able", [
    ("naive", "future_covariates", "ar, arnet, autoformer, informer, itransformer, smamba"),
    ("ar", "past_covariates", "autoformer, informer, itransformer, smamba"),
    ("arnet", "past_covariates", "autoformer, informer, itransformer, smamba"),
])
def test_an_unsupported_covariate_role_is_an_error_at_fit_naming_the_models_that_support_it(name, role, able):
    data = covariate_panel()
    with pytest.raises(ValueError, match=rf"model '{name}' does not use {role} \(\['f'\]\); models that do: {able}"):
        Forecaster(model=name, lookback=4, horizon=3, **{role: ["f"]}).fit(data)


def test_a_long_frame_for_a_wide_fit_and_a_wide_frame_for_a_long_fit_are_errors():
    data = covariate_panel().drop(columns="f")
    wide = rows_of(data, "a").set_index("ds")[["y"]]
    f_wide = Forecaster(model="ar", lookback=4, horizon=3).fit(wide)
    f_long = Forecaster(model="ar", lookback=4, horizon=3).fit(data)
    with pytest.raises(ValueError, match="predict data is a long frame .* fitted on a wide frame"):
        f_wide.predict(data)
    with pytest.raises(ValueError, match="evaluation data is a long frame"):
        f_wide.evaluate(data)
    with pytest.raises(ValueError, match="predict data has no id column 'unique_id', but the forecaster was fitted "
                                         "on a long frame"):
        f_long.predict(wide)
    with pytest.raises(ValueError, match="evaluation data has no id column"):
        f_long.evaluate(wide)


# ---------------------------------------------------------------------------- 8. persistence
def test_save_load_of_a_panel_model_with_covariates_round_trips_exactly(tmp_path):
    data = long_frame({"a": ("2021-01-01", 60), "b": ("2021-01-10", 50)}, seed=10, covariates=["f", "z"])
    f = quiet_fit(Forecaster(model=spec("itransformer"), lookback=8, horizon=3, max_epochs=1, future_covariates=["f"],
                             past_covariates=["z"], random_state=0), data)
    future = future_for(f, 3, value=0.5)
    f.save(tmp_path / "model")
    g = Forecaster.load(tmp_path / "model")
    assert g.series_ids_ == f.series_ids_
    for level in (None, [80]):
        a, b = f.predict(future_covariates=future, level=level), g.predict(future_covariates=future, level=level)
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert list(a.columns) == ["unique_id", "ds", "y", "y-lo-80", "y-hi-80"]
    pd.testing.assert_frame_equal(f.predict(X=data, future_covariates=future),
                                  g.predict(X=data, future_covariates=future), check_exact=True)
    assert f.evaluate(data, level=[80]) == g.evaluate(data, level=[80])


# ---------------------------------------------------------------------------- 9. intervals
def test_panel_intervals_hold_the_point_forecast_per_series_and_adaptive_is_an_error():
    data = long_frame({"a": ("2021-01-01", 120), "b": ("2021-01-10", 90), "c": ("2021-02-01", 100)}, seed=11)
    data.loc[data["unique_id"] == "b", "y"] *= 100.0  # another scale: each series' bounds unscale on their own
    f = Forecaster(model="ar", lookback=6, horizon=4, validation_fraction=0.3).fit(data)
    out = f.predict(level=[80, 95])
    assert list(out.columns) == ["unique_id", "ds", "y", "y-lo-95", "y-lo-80", "y-hi-80", "y-hi-95"]
    for sid in ("a", "b", "c"):
        part = rows_of(out, sid)
        assert (part["y-lo-95"] <= part["y-lo-80"]).all() and (part["y-lo-80"] <= part["y"]).all()
        assert (part["y"] <= part["y-hi-80"]).all() and (part["y-hi-80"] <= part["y-hi-95"]).all()
        assert (part["y-hi-80"] > part["y-lo-80"]).all()
    width = (out["y-hi-80"] - out["y-lo-80"]).groupby(out["unique_id"]).mean()
    assert width["b"] > 20 * width["a"]  # in b's units
    scores = f.evaluate(data, level=[80])
    assert 0.0 <= scores["coverage_80"] <= 100.0
    # split conformal: every window of a series has that series' forecast width, in its own units
    windows = data.groupby("unique_id").size() - 6 - 4 + 1
    assert scores["width_80"] == pytest.approx(float((width * windows).sum() / windows.sum()), rel=1e-9)
    adaptive = Forecaster(model="ar", lookback=6, horizon=4, interval_method="adaptive").fit(data)
    with pytest.raises(ValueError, match="interval_method='adaptive' follows one series.*fitted on 3 series: use "
                                         "interval_method='split' for a panel"):
        adaptive.predict(level=[80])
    with pytest.raises(ValueError, match="interval_method='adaptive' follows one series"):
        adaptive.evaluate(data, level=[80])


def test_panel_evaluate_scores_each_window_in_its_own_series_units():
    # by hand: every window's forecast from predict(X=its look-back), scored against its targets
    data = long_frame({"a": ("2021-01-01", 24), "b": ("2021-01-05", 20)}, seed=12)
    data.loc[data["unique_id"] == "b", "y"] = data.loc[data["unique_id"] == "b", "y"] * 50.0 + 300.0
    lookback, horizon = 4, 2
    f = Forecaster(model="ar", lookback=lookback, horizon=horizon).fit(data)
    errors, scaled = [], []
    for number, sid in enumerate(f.series_ids_):
        rows = rows_of(data, sid)
        for start in range(len(rows) - lookback - horizon + 1):
            forecast = f.predict(X=rows.iloc[start:start + lookback])["y"].to_numpy()
            error = forecast - rows["y"].iloc[start + lookback:start + lookback + horizon].to_numpy()
            errors.append(error)
            scaled.append(error / f.scalers_[number].scale_[0])
    errors, scaled = np.concatenate(errors), np.concatenate(scaled)
    original = f.evaluate(data, units="original", per_step=True)
    assert original["n_windows"] == len(errors) // horizon
    assert original["mae"] == pytest.approx(np.abs(errors).mean(), rel=1e-5)
    assert original["rmse"] == pytest.approx(np.sqrt((errors ** 2).mean()), rel=1e-5)
    per_step = np.abs(errors.reshape(-1, horizon)).mean(axis=0)
    np.testing.assert_allclose(original["per_step"]["mae"].to_numpy(), per_step, rtol=1e-5)
    protocol = f.evaluate(data)
    assert protocol["mse"] == pytest.approx((scaled ** 2).mean(), rel=1e-4)
    assert protocol["mae"] == pytest.approx(np.abs(scaled).mean(), rel=1e-4)
