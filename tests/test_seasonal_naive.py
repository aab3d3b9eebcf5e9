"""snaive: y[t+h] = y[t+h - m*ceil(h/m)] per channel, m from the data's step or set explicitly."""
import numpy as np
import pandas as pd
import pytest

from tsforecast import Forecaster, SeasonalNaive


def quarterly(n=40, seed=0):
    rng = np.random.default_rng(seed)
    index = pd.date_range("2000-01-01", periods=n, freq="QS")
    return pd.DataFrame({"a": rng.normal(size=n).cumsum() + 50, "b": rng.normal(size=n) * 3}, index=index)


def expected_snaive(values, season, horizon):
    n = len(values)
    return np.stack([values[n + h - season * -(-h // season) - 1] for h in range(1, horizon + 1)])


def test_forecast_repeats_the_last_season_at_any_horizon():
    df = quarterly()
    f = Forecaster(model="snaive", lookback=8, horizon=6).fit(df)
    assert f.network_.output_len == 4  # quarterly data: the season comes from the step
    forecast = f.predict(horizon=11)
    np.testing.assert_allclose(forecast.to_numpy(), expected_snaive(df.to_numpy(), 4, 11), rtol=1e-6)
    assert forecast.index[0] == pd.Timestamp("2010-01-01")


@pytest.mark.parametrize("how", ["spec", "forecaster"])
def test_explicit_season_overrides_the_step(how):
    df = quarterly()
    model, extra = (SeasonalNaive(season_length=3), {}) if how == "spec" else ("snaive", {"season_length": 3})
    forecast = Forecaster(model=model, lookback=5, horizon=7, **extra).fit(df).predict()
    np.testing.assert_allclose(forecast.to_numpy(), expected_snaive(df.to_numpy(), 3, 7), rtol=1e-6)


def test_lookback_shorter_than_the_season_is_a_clear_error():
    df = pd.DataFrame({"y": np.arange(60.0)}, index=pd.date_range("2000-01-31", periods=60, freq="ME"))
    with pytest.raises(ValueError, match=r"lookback=6 is shorter than the season \(12 steps\).*lookback >= 12"):
        Forecaster(model="snaive", lookback=6, horizon=3).fit(df)
    # the fix it names works
    Forecaster(model="snaive", lookback=12, horizon=3).fit(df)
    with pytest.raises(ValueError, match="season_length must be a positive integer"):
        Forecaster(model=SeasonalNaive(season_length=0), lookback=12, horizon=3).fit(df)


def test_save_load_keeps_the_season_from_the_step(tmp_path):
    df = quarterly()
    f = Forecaster(model="snaive", lookback=8, horizon=4).fit(df)
    f.save(tmp_path / "m")
    loaded = Forecaster.load(tmp_path / "m")
    assert loaded.network_.output_len == 4
    pd.testing.assert_frame_equal(loaded.predict(horizon=9), f.predict(horizon=9))
