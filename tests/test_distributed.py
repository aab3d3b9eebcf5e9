"""The Ray back-end: a sweep on local Ray gives the sequential sweep's rows, failed runs are recorded and
retried, a killed driver resumes with nothing lost, a 4-trial search, and the error without ray."""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import write_plant_csv
from tsforecast import distributed
from tsforecast.bench import read_results, run_sweep
from tsforecast.cli import main

FAST = {"max_epochs": 1}
SWEEP = dict(models=["naive", "snaive", "ar", "arnet"], horizons=[6, 12], lookback=24, seeds=[0])


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance with 2 workers for the whole module (starting Ray takes seconds); the
    back-end uses a running session and leaves it running."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def series_csv(tmp_path_factory) -> Path:
    return write_plant_csv(tmp_path_factory.mktemp("data") / "plant.csv")


@pytest.fixture(scope="module")
def sequential(series_csv, tmp_path_factory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("sequential")
    results = run_sweep(datasets=[str(series_csv)], out=out, training=FAST, device="cpu", log=lambda m: None,
                        figures=False, **SWEEP)
    results.attrs["out"] = out
    return results


def _same_rows(ours: pd.DataFrame, theirs: pd.DataFrame, resumed: bool = False) -> None:
    """Same runs (resume key), figures and fits. ``resumed``: a sweep stopped between the horizons of a shared
    fit refits for the rest when resumed (as the sequential back-end does), so which row holds the fit may differ."""
    assert list(ours["run_id"]) == list(theirs["run_id"])  # same runs, same resume key, same order
    for column in ("mse", "mae", "val_mse"):
        np.testing.assert_allclose(ours[column], theirs[column], rtol=1e-5)
    for column in ("n_test_windows", "epochs", "settings", "code_version") + (() if resumed else ("shared_fit_with",)):
        pd.testing.assert_series_equal(ours[column], theirs[column])


def test_ray_sweep_gives_the_sequential_rows_and_figures(local_ray, series_csv, sequential, tmp_path, capsys):
    out = tmp_path / "ray"
    code = main(["bench", "--models", ",".join(SWEEP["models"]), "--datasets", str(series_csv), "--horizons", "6,12",
                 "--lookback", "24", "--max-epochs", "1", "--device", "cpu", "--backend", "ray", "--out", str(out)])
    assert code == 0
    ours = read_results(out)
    _same_rows(ours, sequential)
    # snaive is fitted once for both horizons: one task fitted it, and recorded it as the sequential run does
    snaive = ours[ours["model"] == "snaive"]
    assert snaive["shared_fit_with"].tolist()[1] == 6 and snaive["train_seconds"].iloc[1] == 0
    for run in ours["run_id"]:  # what the forecast figures draw
        theirs = pd.read_csv(sequential.attrs["out"] / "forecasts" / f"{run}.csv")
        pd.testing.assert_frame_equal(pd.read_csv(out / "forecasts" / f"{run}.csv"), theirs, rtol=1e-4)
    assert (out / "fig_forecasts_plant.png").is_file() and "fig_forecasts_plant.png" in (out / "report.md").read_text()
    assert not (out / distributed.FAILURES_FILE).exists()


def test_a_failed_run_is_recorded_with_its_error_and_retried_next_time(local_ray, series_csv, sequential, tmp_path):
    out = tmp_path / "b"

    def ar_worker_dies(runs, *args):
        if runs[0]["model"] == "ar":
            raise RuntimeError("worker lost")
        return distributed.run_group(runs, *args)

    messages = []
    distributed.run_sweep(datasets=[str(series_csv)], out=out, training=FAST, device="cpu", log=messages.append,
                          figures=False, progress=False, task=ar_worker_dies, **SWEEP)
    recorded, failures = read_results(out), distributed.read_failures(out)
    assert "ar" not in set(recorded["model"]) and len(recorded) == 6  # never a half row
    assert sorted(failures["horizon"]) == [6, 12] and set(failures["model"]) == {"ar"}
    assert failures["error"].str.contains("RuntimeError: worker lost").all()
    assert any("2 run(s) failed" in m for m in messages)
    messages.clear()
    results = distributed.run_sweep(datasets=[str(series_csv)], out=out, training=FAST, device="cpu",
                                    log=messages.append, figures=False, progress=False, **SWEEP)
    assert messages[0].startswith("2 runs to do (6 already")  # only the failed runs
    assert not (out / distributed.FAILURES_FILE).exists()
    key = ["model", "horizon"]
    _same_rows(results.sort_values(key, kind="stable").reset_index(drop=True),
               sequential.sort_values(key, kind="stable").reset_index(drop=True))


def test_a_killed_driver_resumes_with_nothing_lost(local_ray, series_csv, sequential, tmp_path):
    out = tmp_path / "b"
    finished = []

    def killed_after_three(message):
        if message.startswith("["):
            finished.append(message)
            if len(finished) == 3:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        distributed.run_sweep(datasets=[str(series_csv)], out=out, training=FAST, device="cpu", log=killed_after_three,
                              figures=False, progress=False, **SWEEP)
    before = read_results(out)
    assert len(before) == 3 and before["mse"].notna().all()
    assert all((out / "forecasts" / f"{run}.csv").is_file() for run in before["run_id"])
    messages = []
    results = distributed.run_sweep(datasets=[str(series_csv)], out=out, training=FAST, device="cpu",
                                    log=messages.append, figures=False, progress=False, **SWEEP)
    assert messages[0].startswith(f"{len(sequential) - 3} runs to do (3 already")
    pd.testing.assert_frame_equal(read_results(out).iloc[:3], before)  # the finished rows are untouched
    key = ["model", "horizon"]
    _same_rows(results.sort_values(key, kind="stable").reset_index(drop=True),
               sequential.sort_values(key, kind="stable").reset_index(drop=True), resumed=True)


def test_a_four_trial_search_scores_on_validation_and_tests_the_refitted_best(local_ray, series_csv, tmp_path, capsys):
    out = tmp_path / "search"
    space = {"model__d_model": {"choice": [8, 16]}, "learning_rate": {"loguniform": [1e-3, 1e-2]}}
    code = main(["tune", "--model", "itransformer", "--dataset", str(series_csv), "--horizon", "6", "--lookback", "24",
                 "--space", json.dumps(space), "--trials", "4", "--max-epochs", "2", "--device", "cpu",
                 "--params", '{"e_layers": 1, "d_ff": 16, "n_heads": 2}', "--out", str(out)])
    assert code == 0
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 4 and trials["error"].isna().all() and np.isfinite(trials["val_mse"]).all()
    assert set(trials["model__d_model"]) <= {8, 16} and trials["learning_rate"].between(1e-3, 1e-2).all()
    assert set(trials["status"]) <= {"finished", "stopped by ASHA", "early stopping"}
    best = json.loads((out / "best.json").read_text())
    winner = trials.loc[trials["val_mse"].idxmin()]
    assert best["best_val_mse"] == pytest.approx(winner["val_mse"], rel=1e-5)  # trials.csv keeps 6 digits
    assert best["best_config"]["model__d_model"] == winner["model__d_model"]
    # the refit is the winning trial again (same seed and settings), then scored once on the test split
    assert best["refit"]["val_mse"] == pytest.approx(winner["val_mse"], rel=1e-5)
    assert best["refit"]["settings"]["model"]["d_model"] == winner["model__d_model"]
    assert np.isfinite(best["refit"]["test_mse"]) and best["refit"]["n_test_windows"] > 0


def test_a_bad_search_space_names_the_valid_keys_and_forms(local_ray):
    with pytest.raises(ValueError, match=r"model__d_model"):
        distributed.parse_space({"model__width": {"choice": [1, 2]}}, "itransformer")
    with pytest.raises(ValueError, match=r"neither a model parameter .* nor a training setting .*learning_rate"):
        distributed.parse_space({"lr": 0.1}, "itransformer")
    with pytest.raises(ValueError, match=r"use one of choice, uniform, loguniform"):
        distributed.parse_space({"learning_rate": {"log": [1e-4, 1e-2]}}, "itransformer")
    with pytest.raises(ValueError, match=r"loguniform takes a list of 2 numbers"):
        distributed.parse_space({"learning_rate": {"loguniform": [1e-4]}}, "itransformer")
    space = distributed.parse_space('{"batch_size": 16, "model__d_model": {"choice": [8]}}', "itransformer")
    assert space["batch_size"] == 16 and list(space["model__d_model"].categories) == [8]


def test_without_ray_the_error_names_the_extra(monkeypatch, series_csv, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(ImportError, match=r'pip install "tsforecast\[distributed\]"'):
        distributed.run_sweep(["naive"], [str(series_csv)], [6], 24, [0], tmp_path / "b")
    assert main(["bench", "--models", "naive", "--datasets", str(series_csv), "--horizons", "6", "--lookback", "24",
                 "--backend", "ray", "--out", str(tmp_path / "b")]) == 2
    assert 'pip install "tsforecast[distributed]"' in capsys.readouterr().err
    assert main(["tune", "--model", "ar", "--dataset", "ETTh1", "--horizon", "6", "--space", "{}"]) == 2
    assert 'pip install "tsforecast[distributed]"' in capsys.readouterr().err
    assert not (tmp_path / "b").exists()  # nothing planned or written


def test_tune_and_ray_options_state_their_defaults_and_an_example():
    import argparse

    from tsforecast.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name in ("tune", "bench"):
        formatter = commands[name]._get_formatter()
        for action in commands[name]._actions:
            if action.option_strings and action.dest != "help" and not action.required:
                assert "default" in formatter._expand_help(action).lower(), (name, action.option_strings)
    text = commands["tune"].format_help()
    assert "example:\n  tsforecast tune" in text and '{"model__d_model": {"choice": [64, 128, 256]}' in text
