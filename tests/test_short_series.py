"""Short series (100-300 rows): gradient-trained models reach a sensible optimum with their defaults,
and a hold-out that does not fit gets an error whose every suggested fix works when followed."""
import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest

from tsforecast import Forecaster
from tsforecast.data.splits import holdout_split
from tsforecast.training import MIN_STEPS_PER_EPOCH, effective_batch_size


def ar2_series(n: int = 200, seed: int = 0) -> pd.DataFrame:
    """A quarterly AR(2) series around a level of 100 (coefficients sum to 0.9)."""
    rng = np.random.default_rng(seed)
    y = np.zeros(n)
    for t in range(2, n):
        y[t] = 0.6 * y[t - 1] + 0.3 * y[t - 2] + rng.normal()
    return pd.DataFrame({"y": 100 + y}, index=pd.date_range("1970-01-01", periods=n, freq="QS-JAN"))


def test_arnet_defaults_reach_the_least_squares_fit_on_200_rows():
    data = ar2_series()
    ols = Forecaster(model="ar", lookback=8, horizon=4).fit(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the defaults must not warn about their own batch size
        arnet = Forecaster(model="arnet", lookback=8, horizon=4, random_state=0).fit(data)
    # 172 training windows: the default batch 512 is capped to 172 // 16 = 10, 18 steps per epoch
    assert arnet.training_.n_windows == 172
    assert arnet.training_.batch_size == 10 and arnet.training_.steps_per_epoch == 18
    assert arnet.training_.steps == 18 * arnet.training_.epochs
    # one step per epoch (the old behaviour) left the sum at about half of the OLS sum
    assert abs(arnet.coef_.sum() - ols.coef_.sum()) < 0.1
    assert arnet.coef_[0].argmax() == 0  # lag 1 carries the most weight, as in the AR(2) that made the data


@pytest.mark.parametrize("n_windows, batch, expected", [(172, 512, 10), (95, 32, 5), (10, 32, 1),
                                                         (8544, 512, 512), (511, 32, 31), (512, 32, 32)])
def test_default_batch_is_capped_to_16_steps_per_epoch(n_windows, batch, expected):
    assert MIN_STEPS_PER_EPOCH == 16
    assert effective_batch_size(batch, n_windows, cap=True) == expected
    # at least 16 steps per epoch (every window its own step below 16), unless the batch already gives them
    assert math.ceil(n_windows / expected) >= min(16, n_windows) or expected == batch


def test_explicit_batch_size_is_kept_with_a_warning():
    data = ar2_series()
    with pytest.warns(UserWarning, match=r"batch_size=512 gives 1 optimizer step\(s\) per epoch on 172 training "
                                         r"windows.*batch_size=10 gives 18"):
        f = Forecaster(model="arnet", lookback=8, horizon=4, batch_size=512, max_epochs=2, random_state=0).fit(data)
    assert f.training_.batch_size == 512 and f.training_.steps_per_epoch == 1 and f.training_.steps == 2
    assert f.get_params()["batch_size"] == 512
    # following the warning's suggestion silences it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = Forecaster(model="arnet", lookback=8, horizon=4, batch_size=10, max_epochs=2, random_state=0).fit(data)
    assert f.training_.steps_per_epoch == 18


def test_benchmark_sized_data_is_not_capped():
    # ETTh1's training split at lookback 96 has 8,544 one-step windows: 17 batches of 512
    assert effective_batch_size(512, 8544, cap=True) == 512
    assert effective_batch_size(32, 8640 - 96 - 720 + 1, cap=True) == 32


def fixes(message: str) -> list[str]:
    return message.split("Fix: ", 1)[1].split("; or ")


def test_holdout_error_names_settings_and_rows_and_each_fix_works():
    # monthly, 60 rows, lookback 24, iTransformer's output length = horizon 12: the default 10% hold-out
    # (6 rows) cannot hold one 12-step validation target
    data = ar2_series(60)
    data.index = pd.date_range("2000-01-01", periods=60, freq="MS")
    kwargs = dict(model="itransformer", lookback=24, horizon=12, max_epochs=1, random_state=0)
    with pytest.raises(ValueError) as err:
        Forecaster(**kwargs).fit(data)
    message = str(err.value)
    assert "validation_fraction=0.1 of 60 rows leaves no room" in message
    suggestions = fixes(message)
    assert suggestions[0] == f"give at least {holdout_split_rows(0.1, 24, 12)} rows"
    assert any(s.startswith("validation_fraction=0.2 ") for s in suggestions)
    assert any(s.startswith("val_df=") for s in suggestions)
    assert "validation_fraction=0 (no early stopping" in suggestions[-1]
    assert not any(s.startswith("lookback=") for s in suggestions)  # a shorter lookback cannot help here

    needed = int(re.search(r"give at least (\d+) rows", message).group(1))
    longer = ar2_series(needed)
    longer.index = pd.date_range("2000-01-01", periods=needed, freq="MS")
    Forecaster(**kwargs).fit(longer)
    with pytest.raises(ValueError, match="leaves no room"):
        Forecaster(**kwargs).fit(longer.iloc[1:])  # and it is the fewest
    Forecaster(**kwargs, validation_fraction=0.2).fit(data)
    Forecaster(**kwargs, validation_fraction=0).fit(data)
    Forecaster(**kwargs).fit(data, val_df=data.iloc[-36:])


def test_holdout_error_suggests_a_lookback_that_fits():
    # AR-Net (one-step output), 30 rows, lookback 28: the 3 held-out rows are fine, training is too short
    data = ar2_series(30)
    kwargs = dict(model="arnet", horizon=1, max_epochs=1, random_state=0)
    with pytest.raises(ValueError) as err:
        Forecaster(lookback=28, **kwargs).fit(data)
    suggestions = fixes(str(err.value))
    lookback = [s for s in suggestions if s.startswith("lookback=")]
    assert lookback == ["lookback=26 (or less)"]
    Forecaster(lookback=26, **kwargs).fit(data)
    fraction = next(s for s in suggestions if s.startswith("validation_fraction=") and "=0 " not in s)
    Forecaster(lookback=28, validation_fraction=float(fraction.split()[0].split("=")[1]), **kwargs).fit(data)


def test_too_short_val_df_names_the_rows():
    data = ar2_series(100)
    data.index = pd.date_range("2000-01-01", periods=100, freq="MS")
    f = Forecaster(model="itransformer", lookback=24, horizon=12, max_epochs=1, random_state=0)
    with pytest.raises(ValueError, match=r"val_df has 30 rows: too few for one window of lookback 24 \+ output "
                                         r"length 12 = 36 rows; give at least 36 rows"):
        f.fit(data.iloc[:70], val_df=data.iloc[70:])
    f.fit(data.iloc[:64], val_df=data.iloc[64 - 24:])


def holdout_split_rows(fraction, lookback, output_len):
    """The fewest rows holdout_split accepts, by brute force (checks the closed form in the message)."""
    n = 1
    while True:
        try:
            holdout_split(n, fraction, lookback, output_len)
            return n
        except ValueError:
            n += 1


@pytest.mark.parametrize("n_rows, fraction, lookback, output_len", [(200, 0.1, 8, 1), (144, 0.1, 24, 12),
                                                                     (1000, 0.2, 96, 96)])
def test_holdout_split_leaves_one_window_each(n_rows, fraction, lookback, output_len):
    cut = holdout_split(n_rows, fraction, lookback, output_len)
    assert cut == n_rows - round(n_rows * fraction)
    assert cut - lookback - output_len + 1 >= 1 and n_rows - cut - output_len + 1 >= 1
