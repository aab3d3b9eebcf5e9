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


@pytest.fixture
def ar_frame():
    return make_ar_frame()


@pytest.fixture(scope="session")
def etth1():
    from tsforecast import load_dataset

    return load_dataset("ETTh1")
