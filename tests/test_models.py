import numpy as np
import pytest
from statsmodels.tsa.ar_model import AutoReg

from conftest import make_ar_frame
from tsforecast import AR, ARNet, Forecaster, protocol_split


def test_naive_reproduces_published_repeat_on_etth1():
    split = protocol_split("ETTh1", 96)
    f = Forecaster(model="naive", lookback=96, horizon=96).fit(split.train, val_df=split.val)
    scores = f.evaluate(split.test)
    assert scores["n_windows"] == 2785
    assert scores["mse"] == pytest.approx(1.295, abs=0.005)  # DLinear paper, Repeat*, ETTh1 H=96
    assert scores["mae"] == pytest.approx(0.713, abs=0.005)


def test_naive_repeats_the_last_value(ar_frame):
    forecast = Forecaster(model="naive", lookback=8, horizon=5).fit(ar_frame).predict()
    np.testing.assert_allclose(forecast.to_numpy(), np.repeat(ar_frame.to_numpy()[-1:], 5, axis=0))


@pytest.mark.parametrize("order", [3, 24])
def test_ar_coefficients_equal_statsmodels_autoreg(etth1, order):
    data = etth1.iloc[:2000, [0, 6]]
    f = Forecaster(model=AR(order=order), lookback=24, horizon=12).fit(data)
    for j, column in enumerate(data.columns):
        reference = AutoReg(data[column].to_numpy(), lags=order, trend="c").fit()
        np.testing.assert_allclose(f.coef_[j], reference.params[1:], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(f.intercept_[j], reference.params[0], rtol=1e-4, atol=1e-5)


def test_ar_multistep_forecast_equals_statsmodels(etth1):
    """The shared rollout reproduces AutoReg's recursive forecast."""
    data = etth1.iloc[:1500, [6]]
    f = Forecaster(model=AR(order=12), lookback=12, horizon=48).fit(data)
    reference = AutoReg(data["OT"].to_numpy(), lags=12, trend="c").fit().forecast(48)
    np.testing.assert_allclose(f.predict()["OT"].to_numpy(), reference, rtol=1e-4, atol=1e-4)


def test_arnet_without_regularization_converges_to_ols():
    data = make_ar_frame(n=3000, coefs=(0.5, -0.3, 0.2), seed=1)
    ols = Forecaster(model=AR(order=3), lookback=3, horizon=1).fit(data)
    sgd = Forecaster(model=ARNet(order=3, ar_reg=0.0), lookback=3, horizon=1, max_epochs=40, learning_rate=3e-3,
                     batch_size=64, patience=40, validation_fraction=0.1, random_state=0).fit(data)
    np.testing.assert_allclose(sgd.coef_, ols.coef_, atol=0.02)
    np.testing.assert_allclose(sgd.intercept_, ols.intercept_, atol=0.05)
    np.testing.assert_allclose(ols.coef_, [[0.5, -0.3, 0.2]] * 2, atol=0.06)  # and OLS finds the true process


def test_arnet_sparsity_regularization_prunes_irrelevant_lags():
    data = make_ar_frame(n=2000, coefs=(0.5, -0.3, 0.2), seed=2)
    common = dict(lookback=16, horizon=1, max_epochs=30, learning_rate=3e-3, batch_size=64, patience=30,
                  random_state=0)
    dense = Forecaster(model=ARNet(ar_reg=0.0), **common).fit(data)
    sparse = Forecaster(model=ARNet(ar_reg=2000.0), **common).fit(data)
    irrelevant_dense = np.abs(dense.coef_[:, 3:]).mean()
    irrelevant_sparse = np.abs(sparse.coef_[:, 3:]).mean()
    assert irrelevant_sparse < 0.5 * irrelevant_dense
    assert np.abs(sparse.coef_[:, 0]).min() > 0.3  # the real lag-1 effect survives


def test_deep_arnet_trains_and_has_no_coef(ar_frame):
    f = Forecaster(model=ARNet(order=6, hidden_layers=(8, 8)), lookback=6, horizon=4, max_epochs=2,
                   random_state=0).fit(ar_frame)
    assert f.predict().shape == (4, 2)
    with pytest.raises(AttributeError, match="linear AR-Net"):
        _ = f.coef_


def test_models_registry_lists_known_models():
    from tsforecast import list_models

    assert {"naive", "ar", "arnet"} <= set(list_models())


def test_early_stopping_counts_a_tie_as_an_improvement():
    """Time-Series-Library's EarlyStopping saves on a tie (it counts a bad epoch only when
    -val_loss < -best + 0). A network whose validation loss is exactly the same every epoch while its
    weights keep moving: every epoch is kept (no early stop at patience 1) and the last one restored."""
    import torch
    from torch import nn

    from tsforecast.data.windows import Windows
    from tsforecast.training import TrainingConfig, train

    class Constant(nn.Module):
        output_len = 1

        def __init__(self):
            super().__init__()
            self.drift = nn.Parameter(torch.zeros(1))  # trained, but never read by the forecast

        def forward(self, x, x_mark=None, y_mark=None):
            return torch.zeros_like(x[:, -1:])

        def training_loss(self, x, x_mark, y, y_mark):
            return (self.drift - 100.0).pow(2).sum()

    values = torch.randn(80, 1)
    network = Constant()
    result = train(network, Windows(values[:60], None, 4, 1), Windows(values[56:], None, 4, 1),
                   TrainingConfig(max_epochs=4, batch_size=8, learning_rate=0.1, patience=1, lr_schedule="constant"),
                   torch.Generator().manual_seed(0))
    assert len(set(result.val_loss)) == 1  # the loss ties exactly every epoch
    assert result.epochs == 4 and result.best_epoch == 4
    # the last epoch's weights: Adam moves the drift by about lr per step (it would be 1/4 of this at epoch 1)
    assert float(network.drift) == pytest.approx(result.steps * 0.1, rel=0.05)
