"""Every registered model passes the shared contract (tsforecast.testing.check_forecaster)."""
import pytest

from tsforecast import list_models
from tsforecast.testing import check_forecast_ignores_future_targets, check_forecaster, check_prefix_causal, synthetic_frame


@pytest.mark.parametrize("name", list_models())
def test_registered_model_conforms(name):
    check_forecaster(name)


@pytest.mark.parametrize("name", list_models())
def test_registered_model_conforms_on_sub_hourly_data(name):
    check_forecaster(name, lookback=12, horizon=5, data=synthetic_frame(n_rows=300, n_channels=2, freq="15min"))


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
