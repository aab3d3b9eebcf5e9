import numpy as np
import pandas as pd
import pytest
import torch

from tsforecast import load_dataset, protocol_split, published_results
from tsforecast.data import Windows, split_borders, time_features


@pytest.mark.parametrize(
    "name, rows, channels, first, last",
    [
        ("ETTh1", 17420, 7, "2016-07-01 00:00", "2018-06-26 19:00"),
        ("ETTm2", 69680, 7, "2016-07-01 00:00", "2018-06-26 19:45"),
        ("Weather", 52696, 21, "2020-01-01 00:10", "2021-01-01 00:00"),
    ],
)
def test_bundled_datasets(name, rows, channels, first, last):
    df = load_dataset(name)
    assert df.shape == (rows, channels)
    assert isinstance(df.index, pd.DatetimeIndex)
    assert df.index[0] == pd.Timestamp(first) and df.index[-1] == pd.Timestamp(last)
    assert df.columns[-1] == "OT"
    assert all(dtype == np.float64 for dtype in df.dtypes)


def test_etth1_index_is_hourly(etth1):
    assert etth1.index.freqstr == "h"
    assert list(etth1.columns) == ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]


@pytest.mark.parametrize(
    "scheme, n_rows, borders",
    [
        ("ETTh", 17420, {"train": (0, 8640), "val": (8640 - 96, 11520), "test": (11520 - 96, 14400)}),
        ("ETTm", 69680, {"train": (0, 34560), "val": (34560 - 96, 46080), "test": (46080 - 96, 57600)}),
        ("ratio", 52696, {"train": (0, 36887), "val": (36887 - 96, 42157), "test": (42157 - 96, 52696)}),
    ],
)
def test_split_borders_match_protocol(scheme, n_rows, borders):
    assert split_borders(scheme, n_rows, 96) == borders


# Window counts of protocol.md section 4 (test and train, lookback 96).
@pytest.mark.parametrize(
    "name, test_counts, train_counts",
    [
        ("ETTh1", [2785, 2689, 2545, 2161], [8449, 8353, 8209, 7825]),
        ("ETTm1", [11425, 11329, 11185, 10801], [34369, 34273, 34129, 33745]),
        ("Weather", [10444, 10348, 10204, 9820], [36696, 36600, 36456, 36072]),
    ],
)
def test_window_counts_per_horizon(name, test_counts, train_counts):
    split = protocol_split(name, 96)
    for horizon, n_test, n_train in zip([96, 192, 336, 720], test_counts, train_counts):
        assert len(Windows(torch.zeros(len(split.test), 1), None, 96, horizon)) == n_test
        assert len(Windows(torch.zeros(len(split.train), 1), None, 96, horizon)) == n_train


def test_protocol_split_is_lookback_aware(etth1):
    split = protocol_split(etth1, 336, scheme="ETTh")
    assert split.val.index[0] == etth1.index[8640 - 336]
    assert split.test.index[-1] == etth1.index[14399]
    default = protocol_split(etth1.iloc[:1000], 24)  # ratio scheme for any DataFrame
    assert len(default.train) == 700 and default.test.index[-1] == etth1.index[999]


def test_windows_gather_by_index():
    values = torch.arange(20.0).reshape(10, 2)
    marks = torch.arange(12.0).reshape(12, 1)  # two extra future rows for a rollout
    windows = Windows(values, marks, lookback=3, horizon=2, mark_horizon=4)
    assert len(windows) == 10 - 3 - 2 + 1
    batch = windows.gather(torch.tensor([0, 5]))
    assert torch.equal(batch.x[1], values[5:8])
    assert torch.equal(batch.y[1], values[8:10])
    assert torch.equal(batch.y_mark[1, :, 0], torch.tensor([8.0, 9.0, 10.0, 11.0]))
    seen = torch.cat([b.x[:, 0, 0] for b in windows.batches(4, shuffle=True, generator=torch.Generator().manual_seed(0))])
    assert sorted(seen.tolist()) == sorted(values[:6, 0].tolist())  # every window once, none dropped


def test_hourly_time_features_match_protocol():
    index = pd.DatetimeIndex(["2016-07-01 00:00", "2016-07-04 23:15"])
    feats = time_features(index, "h")
    assert feats.shape == (2, 4)
    # hour/23 - 0.5, dayofweek/6 - 0.5 (Monday 0), (day-1)/30 - 0.5, (dayofyear-1)/365 - 0.5
    expected = [[-0.5, 4 / 6 - 0.5, -0.5, 182 / 365 - 0.5], [0.5, -0.5, 3 / 30 - 0.5, 185 / 365 - 0.5]]
    np.testing.assert_allclose(feats, expected, atol=1e-6)
    assert time_features(index, "15min").shape == (2, 5)  # minute of hour first
    np.testing.assert_allclose(time_features(index, "15min")[1, 0], 15 / 59 - 0.5, atol=1e-6)


def test_published_results_table():
    table = published_results()
    repeat = table[(table.model == "Repeat") & (table.dataset == "ETTh1") & (table.horizon == "96")]
    assert float(repeat.mse.iloc[0]) == pytest.approx(1.295)
    assert {"model", "dataset", "horizon", "lookback", "mse", "mae", "source"} <= set(table.columns)
