"""Every registered model passes the shared contract (tsforecast.testing.check_forecaster), and the panel
contract (tsforecast.testing.check_panel: a ragged long panel with missing targets and covariates)."""
import numpy as np
import pytest

from tsforecast import list_models
from tsforecast.testing import (check_forecast_ignores_future_targets, check_forecaster, check_panel, check_prefix_causal,
                                synthetic_frame, synthetic_panel, synthetic_panel_future)


@pytest.mark.parametrize("name", list_models())
def test_registered_model_conforms(name):
    check_forecaster(name)


@pytest.mark.parametrize("name", list_models())
def test_registered_model_conforms_on_sub_hourly_data(name):
    check_forecaster(name, lookback=12, horizon=5, data=synthetic_frame(n_rows=300, n_channels=2, freq="15min"))


@pytest.mark.parametrize("name", list_models())
def test_registered_model_conforms_on_a_panel(name):
    check_panel(name)


def test_synthetic_panel_is_ragged_with_gaps_and_known_future_covariates():
    panel = synthetic_panel(missing=True)
    assert list(panel.columns) == ["unique_id", "ds", "y", "visits", "price"]
    spans = panel.groupby("unique_id")["ds"].agg(["min", "max", "size"])
    assert spans["min"].nunique() == 3 and spans["max"].nunique() == 3  # ragged at both ends
    assert panel["y"].isna().sum() == 3 and spans.loc["s2", "size"] == 111  # NaN targets; one dropped timestamp
    # the future covariates continue the same deterministic paths: the first future step of a series equals
    # the covariate at that step in a longer version of the series
    longer = synthetic_panel(lengths=(97, 81, 113), future=("price",), past=())
    ahead = synthetic_panel_future(synthetic_panel(future=("price",), past=()), 1)
    last = longer.groupby("unique_id").tail(1).reset_index(drop=True)
    assert list(ahead["ds"]) == list(last["ds"])
    np.testing.assert_allclose(ahead["price"].to_numpy(), last["price"].to_numpy(), rtol=0, atol=1e-12)


def _batch_leak(min_batch):
    """A spec whose forecast for a window mixes in the other windows of its batch when the batch has at
    least ``min_batch`` windows (a leak between series)."""
    from torch import nn

    from tsforecast.models import Dims, ModelSpec

    class BatchMean(nn.Module):
        output_len = 1

        def forward(self, x, x_mark, y_mark):
            last = x[:, -1:, :]
            return last.mean(dim=0, keepdim=True).expand_as(last) if x.shape[0] >= min_batch else last

    class Leaky(ModelSpec):
        name = "leaky"
        fit_mode = "none"

        def build(self, dims: Dims):
            return BatchMean()

    return Leaky()


@pytest.mark.parametrize("min_batch, caught", [(1, r"predict\(ids="), (4, "pooled MSE")])
def test_check_panel_catches_a_model_that_mixes_series(min_batch, caught):
    """check_panel is not vacuous: a leak between the series of a batch is caught by the subset predict;
    one that shows only in evaluation-sized batches, by the batched-vs-one-series evaluate."""
    with pytest.raises(AssertionError, match=caught):
        check_panel(_batch_leak(min_batch))


def test_check_forecaster_catches_a_batch_dependent_model():
    """The suite is not vacuous: a network whose forecast depends on the other windows in its batch
    (a leak between samples) passes one-by-one prediction but fails the batched evaluation check."""
    from torch import nn

    from tsforecast.models import Dims, ModelSpec

    class BatchMean(nn.Module):
        output_len = 1

        def forward(self, x, x_mark, y_mark):
            return x[:, -1:, :].mean(dim=0, keepdim=True).expand(x.shape[0], 1, x.shape[2])

    class Leaky(ModelSpec):
        name = "leaky"
        fit_mode = "none"

        def build(self, dims: Dims):
            return BatchMean()

    with pytest.raises(AssertionError, match="one-by-one"):
        check_forecaster(Leaky())


@pytest.mark.parametrize("name", list_models())
def test_registered_network_ignores_future_targets(name):
    from tsforecast.models.registry import resolve_model

    spec = resolve_model(name)
    spec.set_params(**type(spec).test_params())
    check_forecast_ignores_future_targets(spec)


def test_prefix_causality_check_catches_a_network_that_reads_the_future():
    """check_prefix_causal passes a causal running mean and fails a centred moving average (which reads
    one step ahead, as a teacher-forced model that saw its own target would)."""
    import torch

    x = torch.randn(2, 12, 3)
    causal = lambda v: v.cumsum(1) / torch.arange(1, v.shape[1] + 1)[None, :, None]  # noqa: E731
    check_prefix_causal(causal, x, "running mean")
    centred = lambda v: torch.nn.functional.avg_pool1d(v.transpose(1, 2), 3, 1, 1).transpose(1, 2)  # noqa: E731
    with pytest.raises(AssertionError, match="output position 0 changed when input positions >= 1"):
        check_prefix_causal(centred, x, "centred mean")
