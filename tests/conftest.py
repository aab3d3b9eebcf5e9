import numpy as np
import pandas as pd
import pytest


def make_ar_frame(n=600, coefs=(0.6, -0.3, 0.2), channels=2, freq="h", seed=0, intercept=1.0):
    """A stationary AR(p) series per channel with known coefficients (and a non-zero mean)."""
    rng = np.random.default_rng(seed)
    p = len(coefs)
    data = np.zeros((n + 100, channels))
    for t in range(p, n + 100):
        data[t] = intercept + sum(c * data[t - k - 1] for k, c in enumerate(coefs)) + rng.normal(size=channels)
    index = pd.date_range("2021-01-01", periods=n, freq=freq)
    return pd.DataFrame(data[100:], index=index, columns=[f"c{i}" for i in range(channels)])


def write_plant_csv(path):
    """A user's CSV for the bench tests: 300 hourly rows (a `date` column, two channels), a 70/10/20 split
    with room for look-back 24 and horizons up to 12."""
    rng = np.random.default_rng(7)
    index = pd.date_range("2023-01-01", periods=300, freq="h")
    daily = np.sin(2 * np.pi * np.arange(300) / 24)
    frame = pd.DataFrame({"date": index, "load": daily + 0.1 * rng.normal(size=300).cumsum(),
                          "temp": rng.normal(size=300).cumsum()})
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def ar_frame():
    return make_ar_frame()


@pytest.fixture(scope="session")
def etth1():
    from tsforecast import load_dataset

    return load_dataset("ETTh1")


@pytest.fixture(scope="session", autouse=True)
def _private_timestamp_cache(tmp_path_factory):
    """Timestamp embeddings of the tests' random LLMs go to a temporary folder, not the user cache
    (converted LLMs stay in the user cache: converting SmolLM2 once per test run would be slow)."""
    import os

    old = os.environ.get("TSFORECAST_TIMESTAMP_CACHE_DIR")
    os.environ["TSFORECAST_TIMESTAMP_CACHE_DIR"] = str(tmp_path_factory.mktemp("timestamp-cache"))
    yield
    if old is None:
        os.environ.pop("TSFORECAST_TIMESTAMP_CACHE_DIR", None)
    else:
        os.environ["TSFORECAST_TIMESTAMP_CACHE_DIR"] = old
