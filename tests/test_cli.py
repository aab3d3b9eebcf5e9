"""Smoke tests of the ``tsforecast`` command line (in process via ``cli.main``, plus one real subprocess)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tsforecast import load_dataset
from tsforecast.cli import main
from tsforecast.models.registry import MODELS

MODEL_NAMES = sorted(MODELS)
DATASET_NAMES = ["ETTh1", "ETTh2", "ETTm1", "ETTm2", "Weather"]
REQUIRED_RESULT_COLUMNS = ["model", "dataset", "horizon", "lookback", "seed", "mse", "mae", "train_seconds",
                           "predict_seconds", "epochs", "device"]
BENCH_ARGS = ["bench", "--models", "naive,ar", "--datasets", "ETTh1", "--horizons", "24", "--lookback", "24",
              "--device", "cpu"]


def write_csv(path, n=200, freq="15min", nan_at=None):
    rng = np.random.default_rng(0)
    index = pd.date_range("2021-03-01", periods=n, freq=freq, name="date")
    frame = pd.DataFrame(rng.normal(size=(n, 2)).cumsum(axis=0), index=index, columns=["load", "temp"])
    if nan_at is not None:
        frame.iloc[nan_at, 1] = np.nan
    frame.to_csv(path)
    return frame


def read_forecast(path) -> pd.DataFrame:
    return pd.read_csv(path, index_col=0, parse_dates=True)


# ---------------------------------------------------------------------- listings
def test_models_lists_names(capsys):
    assert main(["models"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert names == MODEL_NAMES


def test_datasets_lists_names(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    names = [line.split()[0] for line in out.splitlines() if line and not line[0].isspace()]
    assert names == DATASET_NAMES
    assert "step h" in out and "step 10min" in out


def test_python_m_tsforecast_models_subprocess(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "tsforecast", "models"], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    names = {line.split()[0] for line in proc.stdout.splitlines() if line.strip()}
    assert set(MODEL_NAMES) <= names
    assert "Traceback" not in proc.stderr


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "usage: tsforecast" in capsys.readouterr().err


# ---------------------------------------------------------------------- forecast
def test_forecast_csv(tmp_path, capsys):
    source = write_csv(tmp_path / "in.csv")
    out = tmp_path / "f.csv"
    code = main(["forecast", "--model", "ar", "--csv", str(tmp_path / "in.csv"), "--horizon", "12",
                 "--lookback", "24", "--device", "cpu", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    forecast = read_forecast(out)
    assert len(forecast) == 12
    assert list(forecast.columns) == list(source.columns)
    assert forecast.index.name == "date"
    step = pd.Timedelta("15min")
    assert forecast.index[0] == source.index[-1] + step
    assert (np.diff(forecast.index.to_numpy()) == step.to_timedelta64()).all()
    assert np.isfinite(forecast.to_numpy()).all()
    assert "12 steps x 2 channels" in capsys.readouterr().out


def test_forecast_bundled_dataset(tmp_path, capsys):
    out = tmp_path / "f.csv"
    code = main(["forecast", "--model", "ar", "--dataset", "ETTh1", "--horizon", "12", "--lookback", "24",
                 "--device", "cpu", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    data = load_dataset("ETTh1")
    forecast = read_forecast(out)
    assert len(forecast) == 12
    assert list(forecast.columns) == list(data.columns)
    step = pd.Timedelta("1h")
    assert forecast.index[0] == data.index[-1] + step
    assert (np.diff(forecast.index.to_numpy()) == step.to_timedelta64()).all()


def test_forecast_output_has_ordinary_permissions(tmp_path):
    # an output file should get the user's umask like any file a CLI writes (not mkstemp's private 0600)
    write_csv(tmp_path / "in.csv")
    out = tmp_path / "f.csv"
    assert main(["forecast", "--csv", str(tmp_path / "in.csv"), "--horizon", "4", "--lookback", "8",
                 "--device", "cpu", "--out", str(out)]) == 0
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask, oct(out.stat().st_mode & 0o777)


def _assert_one_line_error(err: str, *words: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("tsforecast ") and ": error: " in lines[0]
    for word in words:
        assert word in lines[0], lines[0]


def test_forecast_csv_with_nan_is_a_one_line_error(tmp_path, capsys):
    write_csv(tmp_path / "nan.csv", nan_at=10)
    out = tmp_path / "f.csv"
    code = main(["forecast", "--model", "ar", "--csv", str(tmp_path / "nan.csv"), "--horizon", "12",
                 "--lookback", "24", "--device", "cpu", "--out", str(out)])
    assert code == 2
    _assert_one_line_error(capsys.readouterr().err, "NaN", "'temp'")
    assert not out.exists()


@pytest.mark.parametrize("args, words", [
    pytest.param(["--csv", "does-not-exist.csv"], ["no such CSV file"], id="missing-csv"),
    pytest.param(["--dataset", "nope"], ["unknown dataset 'nope'", "ETTh1"], id="unknown-dataset"),
    pytest.param(["--dataset", "ETTh1", "--model", "nope"], ["unknown model 'nope'", "arnet"], id="unknown-model"),
    pytest.param(["--dataset", "ETTh1", "--lookback", "0"], ["lookback must be a positive integer"], id="lookback-0"),
    pytest.param(["--csv", "in.csv", "--date-column", "when"], ["'when'", "not a column"], id="bad-date-column"),
])
def test_forecast_errors_exit_2(args, words, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "in.csv")
    code = main(["forecast", *args, "--horizon", "12", "--device", "cpu", "--out", str(tmp_path / "f.csv")])
    assert code == 2
    _assert_one_line_error(capsys.readouterr().err, *words)
    assert not (tmp_path / "f.csv").exists()


def test_forecast_bad_params_json_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["forecast", "--dataset", "ETTh1", "--params", "{oops", "--horizon", "4", "--out", str(tmp_path / "f.csv")])
    assert info.value.code == 2
    assert "expected a JSON object" in capsys.readouterr().err


# ---------------------------------------------------------------------- bench and report
@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    assert main([*BENCH_ARGS, "--out", str(out)]) == 0
    return out


def _results(out) -> pd.DataFrame:
    return pd.read_csv(out / "results.csv", dtype={"params": str}, keep_default_na=False, na_values=[""])


def test_bench_writes_results_and_report(bench_dir):
    results = _results(bench_dir)
    assert set(REQUIRED_RESULT_COLUMNS) <= set(results.columns)
    assert len(results) == 2
    assert sorted(results["model"]) == ["ar", "naive"]
    assert set(results["dataset"]) == {"ETTh1"}
    assert set(results["horizon"]) == {24} and set(results["lookback"]) == {24} and set(results["seed"]) == {0}
    assert set(results["device"]) == {"cpu"}
    assert (results["mse"] > 0).all() and (results["mae"] > 0).all()
    assert (results["train_seconds"] >= 0).all() and (results["predict_seconds"] >= 0).all()
    assert set(results["epochs"]) == {0}  # neither naive nor AR trains by gradient
    # the AR fit clearly beats repeating the last value
    mse = results.set_index("model")["mse"]
    assert mse["ar"] < mse["naive"]
    report = (bench_dir / "report.md").read_text()
    assert report.startswith("# Benchmark report")
    assert "## ETTh1" in report and "| naive |" in report and "| ar |" in report


def test_bench_rerun_skips_finished_runs(bench_dir, capsys):
    before = _results(bench_dir)
    capsys.readouterr()
    assert main([*BENCH_ARGS, "--out", str(bench_dir)]) == 0
    assert "0 runs to do (2 already in" in capsys.readouterr().out
    after = _results(bench_dir)
    assert len(after) == 2
    pd.testing.assert_frame_equal(after, before)  # finished_at (and everything else) unchanged
    assert not [p.name for p in bench_dir.iterdir() if p.name.startswith(".")]  # no temp files left


def test_bench_unknown_model_exits_2(tmp_path, capsys):
    out = tmp_path / "bench"
    code = main(["bench", "--models", "naive,nope", "--datasets", "ETTh1", "--horizons", "24", "--lookback", "24",
                 "--device", "cpu", "--out", str(out)])
    assert code == 2
    _assert_one_line_error(capsys.readouterr().err, "unknown model 'nope'", "arnet")
    assert not (out / "results.csv").exists()


def test_report_rewrites_report_md(bench_dir, capsys):
    report = bench_dir / "report.md"
    expected = report.read_text()
    report.write_text("stale\n")
    assert main(["report", "--out", str(bench_dir)]) == 0
    assert str(report) in capsys.readouterr().out
    assert report.read_text() == expected


def test_report_merge_combines_parallel_parts(tmp_path, capsys):
    parts = [tmp_path / "part_naive", tmp_path / "part_ar"]
    for model, part in zip(["naive", "ar"], parts):
        assert main(["bench", "--models", model, "--datasets", "ETTh1", "--horizons", "24", "--lookback", "24",
                     "--device", "cpu", "--out", str(part)]) == 0
    merged = tmp_path / "all"
    assert main(["report", "--out", str(merged), "--merge", *map(str, parts), str(parts[0])]) == 0
    results = _results(merged)
    assert sorted(results["model"]) == ["ar", "naive"]  # a part given twice is merged once
    assert "| naive |" in (merged / "report.md").read_text()
    assert (merged / "commands.txt").read_text().count("tsforecast bench") == 2  # each part's command once
    assert main(["report", "--out", str(merged), "--merge", *map(str, parts)]) == 0  # merging again adds nothing
    assert (merged / "commands.txt").read_text().count("tsforecast bench") == 2
    assert main(["report", "--out", str(merged), "--merge", str(tmp_path / "missing")]) == 2


def test_bench_applies_reference_settings_under_explicit_ones(tmp_path, monkeypatch):
    """A family's per-dataset reference settings reach the run, explicit params win, both are recorded."""
    from tsforecast.bench import run_sweep
    from tsforecast.models.ar import AR

    monkeypatch.setattr(AR, "reference_config", classmethod(
        lambda cls, dataset, horizon: {"params": {"order": 3 if dataset == "ETTh1" else 9}, "training": {}}))
    quiet = dict(device="cpu", log=lambda message: None)
    by_reference = run_sweep(["ar"], ["ETTh1"], [24], 24, [0], tmp_path / "a", **quiet)
    explicit = run_sweep(["ar"], ["ETTh1"], [24], 24, [0], tmp_path / "b", model_params={"order": 5}, **quiet)
    assert json.loads(by_reference["settings"][0])["model"]["order"] == 3
    assert json.loads(explicit["settings"][0])["model"]["order"] == 5
    assert by_reference["mse"][0] != explicit["mse"][0]


def test_report_lists_datasets_in_a_fixed_order(bench_dir):
    """Merged parallel parts arrive in any order; the report's sections must not depend on it."""
    from tsforecast.bench import render_report

    results = _results(bench_dir)
    report = render_report(pd.concat([results.assign(dataset="ETTh2"), results], ignore_index=True), None)
    assert report.index("## ETTh1") < report.index("## ETTh2")
    averages = report[report.index("## Averages over horizons"):]
    assert averages.index("| ETTh1 |") < averages.index("| ETTh2 |")
