"""The sklearn contract, predictions, rollout, training loop and persistence."""
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, TimeSeriesSplit

from conftest import make_ar_frame
from tsforecast import AR, ARNet, Forecaster
from tsforecast.data import Windows
from tsforecast.layers import InstanceNorm
from tsforecast.models import Dims
from tsforecast.metrics import ErrorAccumulator, mae, mse
from tsforecast.rollout import autoregressive_forecast, padded_length
from tsforecast.training import TrainingConfig, evaluate_loss, lr_factor, train


# ---------------------------------------------------------------------------- sklearn contract
def test_get_params_exposes_nested_model_params():
    f = Forecaster(model=ARNet(ar_reg=0.5), lookback=48, horizon=24)
    params = f.get_params()
    assert params["model__ar_reg"] == 0.5 and params["lookback"] == 48 and params["horizon"] == 24
    f.set_params(model__ar_reg=2.0, max_epochs=3)
    assert f.model.ar_reg == 2.0 and f.max_epochs == 3


def test_nested_params_work_when_model_is_given_by_name():
    f = Forecaster(model="arnet").set_params(model__hidden_layers=(4,))
    assert isinstance(f.model, ARNet) and f.model.hidden_layers == (4,)


def test_clone_copies_params_not_state(ar_frame):
    f = Forecaster(model=ARNet(ar_reg=1.0), lookback=8, horizon=4, max_epochs=1, random_state=0).fit(ar_frame)
    twin = clone(f)
    assert twin.get_params()["model__ar_reg"] == 1.0
    assert twin.model is not f.model
    assert not hasattr(twin, "network_")


def test_fit_does_not_modify_params(ar_frame):
    spec = ARNet(order=None)
    f = Forecaster(model=spec, lookback=8, horizon=4, max_epochs=1, random_state=0)
    before = f.get_params()
    f.fit(ar_frame)
    assert f.get_params() == before and spec.order is None


def test_grid_search_with_time_series_split_picks_the_true_order():
    data = make_ar_frame(n=1200, coefs=(0.5, -0.3, 0.4), seed=3)
    search = GridSearchCV(Forecaster(model=AR(), lookback=8, horizon=4),
                          {"model__order": [1, 3]}, cv=TimeSeriesSplit(n_splits=3))
    search.fit(data)
    assert search.best_params_ == {"model__order": 3}
    assert isinstance(search.best_estimator_.predict(), pd.DataFrame)


def test_grid_search_over_arnet_training_params(ar_frame):
    search = GridSearchCV(Forecaster(model=ARNet(), lookback=6, horizon=2, max_epochs=2, random_state=0),
                          {"model__ar_reg": [0.0, 10.0], "learning_rate": [1e-3]}, cv=TimeSeriesSplit(n_splits=2))
    search.fit(ar_frame)
    assert set(search.cv_results_["param_model__ar_reg"]) == {0.0, 10.0}


# ---------------------------------------------------------------------------- predictions
def test_predict_returns_future_timestamps_in_original_units(etth1):
    data = etth1.iloc[:1000]
    f = Forecaster(model="ar", lookback=24, horizon=12).fit(data)
    forecast = f.predict()
    assert list(forecast.columns) == list(data.columns)
    assert forecast.index[0] == data.index[-1] + pd.Timedelta("1h") and len(forecast) == 12
    assert forecast.index.freqstr == "h"
    # original units: the OT forecast starts near the last observed OT, not near 0
    assert abs(forecast["OT"].iloc[0] - data["OT"].iloc[-1]) < 3 * data["OT"].diff().std()


def test_predict_after_other_data_any_horizon(etth1):
    f = Forecaster(model="ar", lookback=24, horizon=12).fit(etth1.iloc[:1000])
    other = etth1.iloc[2000:2100]
    long = f.predict(other, horizon=100)
    assert long.shape == (100, 7) and long.index[0] == other.index[-1] + pd.Timedelta("1h")
    # the first 12 steps of a longer rollout are the 12-step forecast
    np.testing.assert_allclose(long.iloc[:12].to_numpy(), f.predict(other).to_numpy(), rtol=1e-6)


def test_fit_is_deterministic_and_leaves_global_rng_alone(ar_frame):
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = Forecaster(model=ARNet(hidden_layers=(8,)), lookback=8, horizon=4, max_epochs=2, random_state=7).fit(ar_frame)
    assert torch.equal(torch.get_rng_state(), state)
    b = Forecaster(model=ARNet(hidden_layers=(8,)), lookback=8, horizon=4, max_epochs=2, random_state=7).fit(ar_frame)
    np.testing.assert_array_equal(a.predict().to_numpy(), b.predict().to_numpy())
    np.testing.assert_array_equal(a.predict().to_numpy(), a.predict().to_numpy())


def test_score_is_negative_mse_of_every_window(etth1):
    data = etth1.iloc[:600]
    f = Forecaster(model="naive", lookback=24, horizon=12).fit(data)
    test = etth1.iloc[600:700]
    scores = f.evaluate(test)
    assert scores["n_windows"] == 100 - 24 - 12 + 1
    scaled = f.scaler_.transform(test.to_numpy())
    windows = np.lib.stride_tricks.sliding_window_view(scaled, 36, axis=0).transpose(0, 2, 1)  # (N, 36, C)
    expected = np.mean((windows[:, 24:] - windows[:, 23:24]) ** 2)
    assert scores["mse"] == pytest.approx(expected, rel=1e-6)
    assert f.score(test) == pytest.approx(-expected, rel=1e-6)


# ---------------------------------------------------------------------------- rollout
class _Recorder(torch.nn.Module):
    """A k-step network that forecasts 'last value + 1, + 2, ...' and records what it is given."""

    def __init__(self, output_len):
        super().__init__()
        self.output_len = output_len
        self.calls = []

    def forward(self, x, x_mark, y_mark):
        self.calls.append((x.clone(), None if y_mark is None else y_mark.clone()))
        steps = torch.arange(1, self.output_len + 1, dtype=x.dtype)[None, :, None]
        return x[:, -1:, :] + steps


@pytest.mark.parametrize("output_len, horizon", [(1, 7), (3, 7), (4, 4), (5, 3)])
def test_rollout_feeds_forecasts_back(output_len, horizon):
    net = _Recorder(output_len)
    x = torch.zeros(2, 6, 1)
    x[:, -1] = 10.0
    n_future = padded_length(horizon, output_len)
    future_mark = torch.arange(n_future, dtype=torch.float32)[None, :, None].repeat(2, 1, 1)
    out = autoregressive_forecast(net, x, torch.zeros(2, 6, 1), future_mark, horizon)
    # feeding its own forecasts back, the recorder counts up by one per step
    np.testing.assert_allclose(out[0, :, 0].numpy(), 10.0 + np.arange(1, horizon + 1))
    assert len(net.calls) == -(-horizon // output_len)
    for i, (window, y_mark) in enumerate(net.calls):
        assert window.shape == (2, 6, 1)  # always the lookback
        assert y_mark[0, :, 0].tolist() == list(range(i * output_len, (i + 1) * output_len))
        assert window[0, -1, 0].item() == 10.0 + i * output_len  # the latest value, forecast included


def test_rollout_rejects_too_short_future_marks():
    with pytest.raises(ValueError, match="future_mark"):
        autoregressive_forecast(_Recorder(4), torch.zeros(1, 6, 1), torch.zeros(1, 6, 1), torch.zeros(1, 5, 1), 6)


# ---------------------------------------------------------------------------- training loop & blocks
def test_lr_schedule_halving_matches_reference_type1():
    assert [lr_factor("halving", e, 10) for e in range(4)] == [1.0, 1.0, 0.5, 0.25]
    assert lr_factor("constant", 5, 10) == 1.0
    assert lr_factor("cosine", 0, 10) == 1.0 and lr_factor("cosine", 5, 10) == pytest.approx(0.5)


def test_training_restores_the_best_validation_weights():
    torch.manual_seed(0)
    values = torch.randn(300, 2)
    net = ARNet(order=4).build(Dims(n_channels=2, lookback=4, horizon=1, n_time_features=0))
    train_w, val_w = Windows(values[:200], None, 4, 1), Windows(values[196:], None, 4, 1)
    # a large constant lr makes later epochs worse, so the best epoch is not the last one
    result = train(net, train_w, val_w, TrainingConfig(max_epochs=8, batch_size=8, learning_rate=0.5,
                                                       patience=8, lr_schedule="constant"),
                   torch.Generator().manual_seed(0))
    assert result.epochs == 8 and len(result.val_loss) == 8
    assert result.best_epoch == int(np.argmin(result.val_loss)) + 1
    assert evaluate_loss(net, val_w, 64) == pytest.approx(min(result.val_loss), rel=1e-5)


def test_early_stopping_stops_after_patience():
    torch.manual_seed(0)
    values = torch.randn(300, 1)
    net = ARNet(order=4).build(Dims(n_channels=1, lookback=4, horizon=1, n_time_features=0))
    result = train(net, Windows(values[:200], None, 4, 1), Windows(values[196:], None, 4, 1),
                   TrainingConfig(max_epochs=50, batch_size=8, learning_rate=0.5, patience=2,
                                  lr_schedule="constant"), torch.Generator().manual_seed(0))
    assert result.epochs < 50 and result.epochs - result.best_epoch == 2


def test_instance_norm_round_trip():
    x = torch.randn(3, 20, 4) * 5 + 2
    for affine in (False, True):
        norm = InstanceNorm(4, affine=affine)
        z = norm.normalize(x)
        if not affine:
            torch.testing.assert_close(z.mean(1), torch.zeros(3, 4), atol=1e-5, rtol=0)
            torch.testing.assert_close(z.std(1, unbiased=False), torch.ones(3, 4), atol=1e-3, rtol=0)
        torch.testing.assert_close(norm.denormalize(z), x, atol=1e-4, rtol=1e-4)


def test_error_accumulator_is_the_global_mean():
    rng = np.random.default_rng(0)
    true, pred = rng.normal(size=(10, 5, 3)), rng.normal(size=(10, 5, 3))
    acc = ErrorAccumulator()
    for chunk in (slice(0, 3), slice(3, 10)):  # unequal batches: a mean of batch means would differ
        acc.update(torch.from_numpy(true[chunk]), torch.from_numpy(pred[chunk]))
    result = acc.result()
    assert result["mse"] == pytest.approx(mse(true, pred)) and result["mae"] == pytest.approx(mae(true, pred))
    assert result["n_windows"] == 10


# ---------------------------------------------------------------------------- persistence
@pytest.mark.parametrize("model", [AR(order=6), ARNet(hidden_layers=(8,)), "naive"])
def test_save_load_round_trip(tmp_path, ar_frame, model):
    f = Forecaster(model=model, lookback=8, horizon=4, max_epochs=2, random_state=0).fit(ar_frame)
    f.save(tmp_path / "model")
    g = Forecaster.load(tmp_path / "model")
    assert type(g.model) is type(f.model)
    assert {k: v for k, v in g.get_params().items() if k != "model"} == \
        {k: v for k, v in f.get_params().items() if k != "model"}
    pd.testing.assert_frame_equal(g.predict(), f.predict(), check_exact=True)
    pd.testing.assert_frame_equal(g.predict(ar_frame.iloc[:50], horizon=9), f.predict(ar_frame.iloc[:50], horizon=9), check_exact=True)
    np.testing.assert_array_equal(g.scaler_.mean_, f.scaler_.mean_)
    assert g.evaluate(ar_frame.iloc[-100:]) == f.evaluate(ar_frame.iloc[-100:])
    if not isinstance(model, str) and not getattr(model, "hidden_layers", ()):
        np.testing.assert_array_equal(g.coef_, f.coef_)
