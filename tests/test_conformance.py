"""Every registered model passes the shared contract (tsforecast.testing.check_forecaster)."""
import pytest

from tsforecast import list_models
from tsforecast.testing import check_forecaster, synthetic_frame


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
