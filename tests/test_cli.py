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
    pytest.param(["--dataset", "ETTh1", "--lookback", "0"], ["'lookback'", "must be"], id="lookback-0"),
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


# ---------------------------------------------------------------------- real users' CSVs (issue 11)
def _forecast(csv, out, *extra):
    return main(["forecast", "--csv", str(csv), "--model", "ar", "--device", "cpu", "--out", str(out), *extra])


def _monthly_csv(path, n=60, date_format="%Y-%m"):
    rng = np.random.default_rng(0)
    index = pd.date_range("2015-01-01", periods=n, freq="MS")
    pd.DataFrame({"Month": index.strftime(date_format), "sales": 100 + rng.normal(size=n).cumsum()}).to_csv(
        path, index=False)
    return index


def test_forecast_monthly_csv_continues_month_starts(tmp_path, capsys):
    index = _monthly_csv(tmp_path / "sales.csv")  # a 'Month' column, found without --date-column
    out = tmp_path / "f.csv"
    assert _forecast(tmp_path / "sales.csv", out, "--lookback", "12", "--horizon", "6") == 0, capsys.readouterr().err
    forecast = pd.read_csv(out, index_col="Month", parse_dates=["Month"])
    assert list(forecast.columns) == ["sales"]
    expected = pd.date_range(index[-1] + pd.offsets.MonthBegin(), periods=6, freq="MS")
    assert list(forecast.index) == list(expected)
    assert forecast.index[0] == pd.Timestamp("2020-01-01")


def test_forecast_csv_writes_the_index_predict_returns(tmp_path):
    """Local time across a DST change (offsets +01:00 then +02:00): the file holds predict()'s index as is."""
    from tsforecast import Forecaster
    from tsforecast.data.datasets import read_csv_series

    index = pd.date_range("2021-03-27", periods=72, freq="h", tz="Europe/Berlin")
    pd.DataFrame({"timestamp": index.astype(str), "load": np.sin(np.arange(72) / 4)}).to_csv(
        tmp_path / "tz.csv", index=False)
    frame = read_csv_series(tmp_path / "tz.csv")
    assert frame.index[0] == index[0] and frame.index[-1] == index[-1]  # the same instants
    assert _forecast(tmp_path / "tz.csv", tmp_path / "f.csv", "--lookback", "24", "--horizon", "4") == 0
    direct = Forecaster(model="ar", lookback=24, horizon=4, random_state=0, device="cpu").fit(frame).predict()
    assert (tmp_path / "f.csv").read_text() == direct.to_csv(index_label="timestamp")
    assert pd.Timestamp((tmp_path / "f.csv").read_text().splitlines()[1].split(",")[0]) == index[-1] + pd.Timedelta("1h")


def test_forecast_dayfirst(tmp_path, capsys):
    index = pd.date_range("2020-01-01", periods=40, freq="D")
    values = np.random.default_rng(1).normal(size=40).cumsum()
    pd.DataFrame({"date": index.strftime("%d/%m/%Y"), "y": values}).to_csv(tmp_path / "eu.csv", index=False)
    out = tmp_path / "f.csv"
    # without --dayfirst, 13/01/2020 cannot be month 13: a one-line error pointing at the fix
    assert _forecast(tmp_path / "eu.csv", out, "--lookback", "7", "--horizon", "3") == 2
    _assert_one_line_error(capsys.readouterr().err, "'date'", "'13/01/2020'", "--dayfirst", "--date-column")
    assert not out.exists()
    assert _forecast(tmp_path / "eu.csv", out, "--lookback", "7", "--horizon", "3", "--dayfirst") == 0
    forecast = pd.read_csv(out, index_col=0, parse_dates=True)
    assert list(forecast.index) == list(pd.date_range("2020-02-10", periods=3, freq="D"))


def test_forecast_date_column_found_or_named(tmp_path, capsys):
    index = pd.date_range("2021-01-01", periods=50, freq="D")
    y = np.random.default_rng(2).normal(size=50).cumsum()
    # the first column holds dates under an uncommon name: used as the dates
    pd.DataFrame({"when": index.strftime("%Y-%m-%d"), "y": y}).to_csv(tmp_path / "first.csv", index=False)
    assert _forecast(tmp_path / "first.csv", tmp_path / "a.csv", "--lookback", "7", "--horizon", "2") == 0
    assert pd.read_csv(tmp_path / "a.csv").columns.tolist() == ["when", "y"]
    # dates elsewhere under an uncommon name: an error naming --date-column, which then works
    pd.DataFrame({"y": y, "stamp": index.strftime("%Y-%m-%d")}).to_csv(tmp_path / "other.csv", index=False)
    assert _forecast(tmp_path / "other.csv", tmp_path / "b.csv", "--lookback", "7", "--horizon", "2") == 2
    _assert_one_line_error(capsys.readouterr().err, "no date column", "['y', 'stamp']", "--date-column")
    assert _forecast(tmp_path / "other.csv", tmp_path / "b.csv", "--lookback", "7", "--horizon", "2",
                     "--date-column", "stamp") == 0
    assert pd.Timestamp(pd.read_csv(tmp_path / "b.csv")["stamp"][0]) == index[-1] + pd.Timedelta("1D")


def test_forecast_gzipped_csv(tmp_path):
    source = write_csv(tmp_path / "in.csv.gz")
    assert _forecast(tmp_path / "in.csv.gz", tmp_path / "f.csv", "--lookback", "8", "--horizon", "3") == 0
    assert read_forecast(tmp_path / "f.csv").index[0] == source.index[-1] + pd.Timedelta("15min")


def test_read_csv_series_years_and_quarters(tmp_path):
    from tsforecast.data.datasets import read_csv_series

    pd.DataFrame({"year": range(1990, 2000), "gdp": np.arange(10.0)}).to_csv(tmp_path / "y.csv", index=False)
    years = read_csv_series(tmp_path / "y.csv").index
    assert years[0] == pd.Timestamp("1990-01-01") and years[-1] == pd.Timestamp("1999-01-01")  # not nanoseconds
    quarters = [f"{y}Q{q}" for y in (2000, 2001) for q in (1, 2, 3, 4)]
    pd.DataFrame({"quarter": quarters, "gdp": np.arange(8.0)}).to_csv(tmp_path / "q.csv", index=False)
    index = read_csv_series(tmp_path / "q.csv").index
    assert list(index) == list(pd.date_range("2000-01-01", periods=8, freq="QS"))
    # a ';'-separated export reads like a comma-separated one
    (tmp_path / "semi.csv").write_text("date;y\n2020-01-01;1.5\n2020-01-02;2.5\n")
    assert read_csv_series(tmp_path / "semi.csv")["y"].tolist() == [1.5, 2.5]


def test_forecast_non_numeric_columns_named(tmp_path, capsys):
    index = pd.date_range("2021-01-01", periods=40, freq="D")
    frame = pd.DataFrame({"date": index, "y": np.arange(40.0), "city": "Paris", "note": "ok"})
    frame.to_csv(tmp_path / "mixed.csv", index=False)
    assert _forecast(tmp_path / "mixed.csv", tmp_path / "f.csv", "--lookback", "7", "--horizon", "2") == 2
    _assert_one_line_error(capsys.readouterr().err, "'city', 'note'", "not numeric", "'Paris'", "drop them")
    frame.drop(columns=["city", "note"]).to_csv(tmp_path / "mixed.csv", index=False)  # the advice, followed
    assert _forecast(tmp_path / "mixed.csv", tmp_path / "f.csv", "--lookback", "7", "--horizon", "2") == 0


@pytest.mark.parametrize("content, words", [
    pytest.param(b"", ["empty.csv is empty"], id="empty-file"),
    pytest.param(b"date,load\n", ["has a header", "no data rows"], id="header-only"),
    pytest.param(bytes(range(256)) * 4, ["not a text CSV", "binary"], id="binary"),
    pytest.param("date,caf\xe9\n2020-01-01,1\n".encode("latin-1"), ["not UTF-8", "save it as a UTF-8 CSV"],
                 id="latin-1"),
    pytest.param(b"date,x\n2020-01-01,1\n2020-01-02,2,3,4\n", ["not a well-formed CSV", "Expected 2 fields"],
                 id="ragged"),
    pytest.param(b"date,x\n2020-01-01,1\nnot a date,2\n", ["'date'", "'not a date' on line 3", "--date-column"],
                 id="unparsed-date"),
    pytest.param(b"date,x\n2020-01-01,1\n,2\n", ["'date'", "empty value on line 3"], id="empty-date"),
    pytest.param(b"date\n2020-01-01\n2020-01-02\n", ["only the date column"], id="no-values"),
])
def test_forecast_bad_csv_is_a_one_line_error(content, words, tmp_path, capsys):
    csv = tmp_path / "empty.csv"
    csv.write_bytes(content)
    out = tmp_path / "f.csv"
    assert _forecast(csv, out, "--horizon", "2", "--lookback", "2") == 2
    _assert_one_line_error(capsys.readouterr().err, *words)
    assert not out.exists()


def test_forecast_unreadable_csv(tmp_path, capsys, monkeypatch):
    csv = tmp_path / "in.csv"
    write_csv(csv)
    if os.geteuid() == 0:  # root reads any file: make opening it fail as it does for other users
        import builtins

        real_open = builtins.open

        def deny(file, *args, **kwargs):
            if str(file) == str(csv):
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)
        monkeypatch.setattr(builtins, "open", deny)
    else:
        csv.chmod(0)
    assert _forecast(csv, tmp_path / "f.csv", "--horizon", "2") == 2
    _assert_one_line_error(capsys.readouterr().err, "cannot read", "in.csv", "permission denied")
    # a folder given as the CSV
    assert _forecast(tmp_path, tmp_path / "f.csv", "--horizon", "2") == 2
    _assert_one_line_error(capsys.readouterr().err, "is a folder")


def test_forecast_out_checked_before_fitting(tmp_path, capsys, monkeypatch):
    from tsforecast.forecaster import Forecaster

    write_csv(tmp_path / "in.csv")

    def no_fit(*args, **kwargs):
        raise AssertionError("fit ran although --out cannot be written")
    monkeypatch.setattr(Forecaster, "fit", no_fit)
    (tmp_path / "folder").mkdir()
    assert _forecast(tmp_path / "in.csv", tmp_path / "folder", "--horizon", "2") == 2
    _assert_one_line_error(capsys.readouterr().err, "--out", "is a folder", "forecast.csv")
    assert _forecast(tmp_path / "in.csv", tmp_path / "in.csv", "--horizon", "2") == 2
    _assert_one_line_error(capsys.readouterr().err, "is the input CSV")
    (tmp_path / "file").write_text("x")
    assert _forecast(tmp_path / "in.csv", tmp_path / "file" / "f.csv", "--horizon", "2") == 2
    _assert_one_line_error(capsys.readouterr().err, "is a file, not a folder")
    monkeypatch.setattr("tsforecast.cli.os.access", lambda path, mode: False)  # as a read-only folder reads
    assert _forecast(tmp_path / "in.csv", tmp_path / "new" / "f.csv", "--horizon", "2") == 2
    _assert_one_line_error(capsys.readouterr().err, "cannot write to the folder", str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder", "in.csv"]


def test_forecast_never_leaves_a_half_written_file(tmp_path, monkeypatch):
    import tsforecast.io

    write_csv(tmp_path / "in.csv")
    out = tmp_path / "f.csv"
    out.write_text("previous forecast\n")

    def disk_full(fd):  # the forecast is written out, then the disk fills up before it is on disk
        raise OSError(28, "No space left on device")
    with monkeypatch.context() as patch:
        patch.setattr(tsforecast.io.os, "fsync", disk_full)
        with pytest.raises(OSError, match="No space left"):
            _forecast(tmp_path / "in.csv", out, "--lookback", "8", "--horizon", "2")
    assert out.read_text() == "previous forecast\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.csv", "in.csv"]  # no temporary file left


@pytest.mark.parametrize("error", [
    pd.errors.EmptyDataError("No columns to parse from file"),
    pd.errors.ParserError("Error tokenizing data.\nC error: Expected 2 fields in line 3, saw 4\n"),
    UnicodeDecodeError("utf-8", b"\xe9", 0, 1, "invalid continuation byte"),
    PermissionError(13, "Permission denied", "x.csv"),
    IsADirectoryError(21, "Is a directory", "x.csv"),
    FileExistsError("x exists"),
    TypeError("bad type"),
], ids=lambda e: type(e).__name__)
def test_main_turns_our_errors_into_one_line(error, capsys, monkeypatch):
    import tsforecast.cli as cli

    def fail(args):
        raise error
    monkeypatch.setitem(cli.COMMANDS, "models", fail)
    assert main(["models"]) == 2
    _assert_one_line_error(capsys.readouterr().err, "tsforecast models: error:")


def test_version(capsys):
    from tsforecast import __version__

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"tsforecast {__version__}"


def _subparsers():
    import argparse

    from tsforecast.cli import build_parser

    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


@pytest.mark.parametrize("command", ["bench", "report", "forecast", "datasets", "models"])
def test_help_states_defaults_and_an_example(command):
    parser = _subparsers()[command]
    formatter = parser._get_formatter()
    in_required_group = {a for g in parser._mutually_exclusive_groups if g.required for a in g._group_actions}
    for action in parser._actions:
        if not action.option_strings or action.dest == "help" or action.required:
            continue
        text = formatter._expand_help(action)
        assert "default" in text.lower() or action in in_required_group, (action.option_strings, text)
        if action in in_required_group:
            assert "required unless" in text, text
    help_text = parser.format_help()
    assert f"example:\n  tsforecast {command}" in help_text  # kept as written, not re-wrapped
    if command == "bench":
        assert "70/10/20" in help_text and "(default: ETTh1,ETTh2,ETTm1,ETTm2,Weather)" in help_text


# ---------------------------------------------------------------------- bench on a user's CSV
def _hourly_csv(path, n=300):
    rng = np.random.default_rng(3)
    index = pd.date_range("2022-01-01", periods=n, freq="h")
    daily = np.sin(2 * np.pi * np.arange(n) / 24)
    frame = pd.DataFrame({"timestamp": index, "load": daily + 0.1 * rng.normal(size=n).cumsum(),
                          "temp": rng.normal(size=n).cumsum()})
    frame.to_csv(path, index=False)
    return frame.set_index("timestamp")


def test_bench_on_a_user_csv(tmp_path, capsys):
    import time

    from tsforecast import Forecaster, protocol_split

    frame = _hourly_csv(tmp_path / "my_load.csv")
    out = tmp_path / "bench"
    started = time.perf_counter()
    assert main(["bench", "--models", "naive,ar", "--datasets", str(tmp_path / "my_load.csv"), "--horizons", "12",
                 "--lookback", "24", "--device", "cpu", "--out", str(out)]) == 0, capsys.readouterr().err
    assert time.perf_counter() - started < 20
    results = _results(out).set_index("model")
    assert set(results["dataset"]) == {"my_load"}
    assert sorted(results.index) == ["ar", "naive"]
    assert set(results["n_test_windows"]) == {int(0.2 * 300) - 12 + 1}  # the last 20% of the rows, every window
    # the same figure as the documented split done by hand: 70/10/20, scaler on train, step inferred
    split = protocol_split(frame, 24, scheme="ratio")
    by_hand = Forecaster(model="ar", lookback=24, horizon=12, random_state=0, device="cpu").fit(
        split.train, val_df=split.val).evaluate(split.test)
    assert results.loc["ar", "mse"] == pytest.approx(by_hand["mse"], rel=1e-5)
    assert results.loc["ar", "mse"] < results.loc["naive", "mse"]
    report = (out / "report.md").read_text()
    assert "## my_load" in report and "70/10/20" in report
    row = next(line for line in report.splitlines() if line.startswith("| ar | 12 |"))
    assert "| — |" in row  # no published figure for the user's data
    capsys.readouterr()
    assert main(["bench", "--models", "naive,ar", "--datasets", str(tmp_path / "my_load.csv"), "--horizons", "12",
                 "--lookback", "24", "--device", "cpu", "--out", str(out)]) == 0
    assert "0 runs to do (2 already in" in capsys.readouterr().out


def test_bench_user_csv_reads_like_forecast(tmp_path, capsys):
    index = pd.date_range("2020-01-01", periods=200, freq="D")
    y = np.random.default_rng(4).normal(size=200).cumsum()
    pd.DataFrame({"y": y, "day_of_record": index.strftime("%d/%m/%Y")}).to_csv(tmp_path / "eu.csv.gz", index=False)
    args = ["bench", "--models", "naive", "--datasets", f"ETTh1,{tmp_path / 'eu.csv.gz'}", "--horizons", "6",
            "--lookback", "12", "--device", "cpu", "--out", str(tmp_path / "b")]
    assert main(args) == 2
    _assert_one_line_error(capsys.readouterr().err, "no date column", "--date-column")
    assert not (tmp_path / "b").exists()  # failed before anything was written, bundled runs included
    assert main([*args, "--date-column", "day_of_record", "--dayfirst"]) == 0, capsys.readouterr().err
    assert sorted(set(_results(tmp_path / "b")["dataset"])) == ["ETTh1", "eu"]


def test_bench_user_csv_too_short_names_the_rows_needed(tmp_path, capsys):
    from tsforecast.bench import user_rows_needed
    from tsforecast.data.splits import split_borders

    _hourly_csv(tmp_path / "short.csv", n=100)
    out = tmp_path / "b"
    assert main(["bench", "--models", "naive", "--datasets", str(tmp_path / "short.csv"), "--horizons", "12,48",
                 "--lookback", "24", "--device", "cpu", "--out", str(out)]) == 2
    needed = user_rows_needed(24, 48)
    _assert_one_line_error(capsys.readouterr().err, "'short' has 100 rows", f"needs at least {needed} rows",
                           "--lookback", "--horizons")
    assert not out.exists()
    # exactly that many rows is enough: every split holds what the runs need, one row fewer is not
    borders = split_borders("ratio", needed, 24)
    assert borders["train"][1] >= 24 + 48
    assert borders["val"][1] - borders["train"][1] >= 48 and borders["test"][1] - borders["val"][1] >= 48
    short = split_borders("ratio", needed - 1, 24)
    assert (short["train"][1] < 72 or short["val"][1] - short["train"][1] < 48
            or short["test"][1] - short["val"][1] < 48)
    _hourly_csv(tmp_path / "short.csv", n=needed)
    assert main(["bench", "--models", "naive", "--datasets", str(tmp_path / "short.csv"), "--horizons", "48",
                 "--lookback", "24", "--device", "cpu", "--out", str(out)]) == 0


def test_bench_user_csv_named_like_a_bundled_dataset_is_refused(tmp_path, capsys):
    _hourly_csv(tmp_path / "etth1.csv")
    assert main(["bench", "--models", "naive", "--datasets", str(tmp_path / "etth1.csv"), "--horizons", "12",
                 "--lookback", "24", "--device", "cpu", "--out", str(tmp_path / "b")]) == 2
    _assert_one_line_error(capsys.readouterr().err, "'etth1'", "rename the file")


def test_bench_bundled_datasets_keep_the_protocol():
    """A user's CSV takes its own path; the bundled datasets keep their split, step and hourly features."""
    from tsforecast.bench import PROTOCOL_TIME_FEATURES, resolve_dataset
    from tsforecast.data.splits import protocol_split

    data = resolve_dataset("ETTh1", 24)
    assert (data.name, data.freq, data.time_features) == ("ETTh1", "h", PROTOCOL_TIME_FEATURES)
    expected = protocol_split("ETTh1", 24)
    for part in ("train", "val", "test"):
        pd.testing.assert_frame_equal(getattr(data.split, part), getattr(expected, part))


def test_bench_user_csv_calendar_features_follow_its_step(tmp_path, capsys):
    """Bundled data gets the reference scripts' hourly features; a user's daily CSV gets daily ones."""
    from tsforecast.models.itransformer import ITransformer

    index = pd.date_range("2020-01-01", periods=150, freq="D")
    y = np.random.default_rng(5).normal(size=150).cumsum()
    pd.DataFrame({"date": index, "y": y}).to_csv(tmp_path / "daily.csv", index=False)
    assert main(["bench", "--models", "itransformer", "--datasets", str(tmp_path / "daily.csv"), "--horizons", "4",
                 "--lookback", "8", "--params", json.dumps(ITransformer.test_params()), "--max-epochs", "1",
                 "--device", "cpu", "--out", str(tmp_path / "b")]) == 0, capsys.readouterr().err
    assert _results(tmp_path / "b")["time_features"].tolist() == ["D"]


# ---------------------------------------------------------------------- long CSVs: panels and covariates
def write_long_csv(folder, horizon=4, nan_at=None):
    """Two daily series of different lengths and starts, y = 2 * price + noise (price known in advance),
    a past-only covariate ``visits``, and the future prices of each series' next ``horizon`` days."""
    rng = np.random.default_rng(0)
    rows, future = [], []
    for sid, n, start in (("a", 80, "2024-01-01"), ("b", 70, "2024-01-05")):
        ds = pd.date_range(start, periods=n + horizon, freq="D")
        price = rng.normal(size=n + horizon)
        y = 2 * price + 0.05 * rng.normal(size=n + horizon)
        rows.append(pd.DataFrame({"store": sid, "day": ds[:n], "y": y[:n], "price": price[:n],
                                  "visits": rng.normal(size=n)}))
        future.append(pd.DataFrame({"store": sid, "day": ds[n:], "price": price[n:]}))
    frame, future = pd.concat(rows, ignore_index=True), pd.concat(future, ignore_index=True)
    if nan_at is not None:
        frame.loc[nan_at, "y"] = np.nan
    frame.to_csv(folder / "long.csv", index=False)
    future.to_csv(folder / "future.csv", index=False)
    return frame, future


LONG_ARGS = ["forecast", "--id-column", "store", "--horizon", "4", "--lookback", "8", "--device", "cpu"]


def test_forecast_long_csv_with_future_covariates_writes_a_long_forecast(tmp_path, capsys):
    frame, future = write_long_csv(tmp_path)
    out = tmp_path / "f.csv"
    code = main(LONG_ARGS + ["--csv", str(tmp_path / "long.csv"), "--time-column", "day", "--target-columns", "y",
                             "--future-covariates", "price", "--future-csv", str(tmp_path / "future.csv"),
                             "--model", "ar", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    forecast = pd.read_csv(out, parse_dates=["day"])
    assert list(forecast.columns) == ["store", "day", "y"]
    # each series continues from its own last date, for exactly the dates whose prices were given
    pd.testing.assert_frame_equal(forecast[["store", "day"]], future[["store", "day"]], check_dtype=False)
    # ARX reads the known future price: the forecast follows y = 2 * price (without it, noise)
    assert np.abs(forecast["y"] - 2 * future["price"]).max() < 0.3
    assert "4 steps x 2 series x 1 targets" in capsys.readouterr().out


def test_forecast_long_csv_with_past_covariates_and_gaps(tmp_path, capsys):
    frame, future = write_long_csv(tmp_path, nan_at=[10, 11])
    out = tmp_path / "f.csv"
    tiny = json.dumps({"d_model": 8, "n_heads": 2, "e_layers": 1, "d_ff": 8})
    args = LONG_ARGS + ["--csv", str(tmp_path / "long.csv"), "--future-covariates", "price", "--future-csv",
                        str(tmp_path / "future.csv"), "--past-covariates", "visits", "--model", "itransformer",
                        "--params", tiny, "--max-epochs", "1", "--out", str(out)]
    assert main(args) == 2  # a missing target is an error unless masked
    assert "NaN" in capsys.readouterr().err
    code = main(args + ["--missing", "mask"])
    assert code == 0, capsys.readouterr().err
    forecast = pd.read_csv(out, parse_dates=["day"])
    assert list(forecast.columns) == ["store", "day", "y"]  # covariates are inputs, never forecast
    assert len(forecast) == 8 and np.isfinite(forecast["y"]).all()


@pytest.mark.parametrize("extra, words", [
    pytest.param(["--future-covariates", "price"], ["--future-covariates price", "--future-csv"], id="no-future-csv"),
    pytest.param(["--future-csv", "future.csv"], ["--future-csv", "no --future-covariates"], id="no-future-names"),
    pytest.param(["--future-covariates", "price", "--future-csv", "short.csv"], ["price"], id="future-too-short"),
    pytest.param(["--id-column", "shop"], ["--id-column 'shop'", "not a column", "store"], id="unknown-id-column"),
    pytest.param(["--future-covariates", "promo", "--future-csv", "future.csv"], ["promo"], id="unknown-covariate"),
])
def test_forecast_long_csv_errors_exit_2(extra, words, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    frame, future = write_long_csv(tmp_path)
    future.groupby("store").head(2).to_csv(tmp_path / "short.csv", index=False)  # 2 of the 4 steps
    args = ["forecast", "--csv", "long.csv", "--horizon", "4", "--lookback", "8", "--model", "ar",
            "--device", "cpu", "--out", "f.csv"]
    if "--id-column" not in extra:
        args += ["--id-column", "store"]
    code = main(args + extra)
    assert code == 2
    _assert_one_line_error(capsys.readouterr().err, *words)
    assert not (tmp_path / "f.csv").exists()


def test_forecast_id_column_needs_a_csv(tmp_path, capsys):
    code = main(["forecast", "--dataset", "ETTh1", "--id-column", "unique_id", "--horizon", "4",
                 "--out", str(tmp_path / "f.csv")])
    assert code == 2
    _assert_one_line_error(capsys.readouterr().err, "--id-column reads a long --csv")


def test_bench_channels_as_series_on_a_bundled_dataset(tmp_path, capsys):
    out = tmp_path / "out"
    for extra in ([], ["--channels-as-series"]):
        assert main(BENCH_ARGS[:2] + ["naive"] + BENCH_ARGS[3:] + extra + ["--out", str(out)]) == 0
    results = pd.read_csv(out / "results.csv")
    wide, panel = results.iloc[0], results.iloc[1]
    assert (wide["layout"], panel["layout"]) == ("wide", "channels_as_series")
    assert panel["n_test_windows"] == 7 * wide["n_test_windows"]  # ETTh1's 7 channels, the same windows each
    assert panel["mse"] == pytest.approx(wide["mse"], rel=1e-6)  # naive: channel-independent, same scaler
    assert "naive [channels as series]" in (out / "report.md").read_text()


def test_weather_as_series_keeps_the_protocol_rows():
    # the protocol takes Weather's rows as consecutive 10-minute steps (one duplicate timestamp, one gap):
    # the panel keeps every row and border, on the regular grid from the first timestamp
    from tsforecast.bench import resolve_dataset
    from tsforecast.data.splits import split_borders

    data = load_dataset("Weather")
    borders = split_borders("ratio", len(data), 96)
    wide = resolve_dataset("Weather", 96).split
    panel = resolve_dataset("Weather", 96, channels_as_series=True).split
    for part in ("train", "val", "test"):
        w, p = getattr(wide, part), getattr(panel, part)
        series = p[p["unique_id"] == w.columns[-1]]
        np.testing.assert_array_equal(series["y"].to_numpy(), w.iloc[:, -1].to_numpy())
        assert len(p) == w.size and series["ds"].is_unique
        assert series["ds"].iloc[0] == data.index[0] + pd.Timedelta("10min") * borders[part][0]
