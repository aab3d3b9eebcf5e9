"""The zero-shot benchmark harness (benchmarks/scripts/zero_shot_bench.py) on one short real series:
its seasonal naive, its resumable results and its table, with the baselines only (fast)."""
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "scripts" / "zero_shot_bench.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("zero_shot_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_seasonal_naive_repeats_the_last_season(bench):
    train = np.arange(10.0)
    np.testing.assert_array_equal(bench.snaive_forecast(train, 4, 6), [6, 7, 8, 9, 6, 7])
    np.testing.assert_array_equal(bench.snaive_forecast(train, 1, 3), [9, 9, 9])


def test_run_scores_three_origins_and_resumes(bench, tmp_path):
    models = ["snaive", "ets", "ar"]
    results = bench.run(tmp_path, models, ["nile"])
    assert len(results) == 3 * len(models)
    assert sorted(results["origin"].unique()) == [82, 88, 94]  # 100 yearly rows, H=6, 3 origins
    assert results["mase"].between(0.01, 20).all()
    # the seasonal naive of yearly data is the last value: its MASE by hand at the last origin
    nile = next(s for s in bench.load_series() if s["name"] == "nile")["df"].iloc[:, 0].to_numpy()
    train, truth = nile[:94], nile[94:]
    expected = np.mean(np.abs(truth - train[-1])) / np.mean(np.abs(np.diff(train)))
    got = results.query("model == 'snaive' and origin == 94")["mase"].item()
    assert got == pytest.approx(expected, rel=1e-9)
    again = bench.run(tmp_path, models, ["nile"])  # everything done: nothing re-run, nothing lost
    pd.testing.assert_frame_equal(again, pd.read_csv(tmp_path / "results.csv"))
    assert len(again) == len(results)
    table, summary = bench.tables(again, bench.CONFIG)
    assert "| nile | yearly | 6 |" in table and set(summary) == set(models)
