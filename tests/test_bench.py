"""The benchmark wiring: run_one, shared fits, the resume key, resuming after a kill, the report and its figures."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import write_plant_csv
from tsforecast import bench
from tsforecast.bench import code_version, plan_sweep, read_results, render_report, run_one, run_sweep
from tsforecast.cli import main
from tsforecast.forecaster import Forecaster
from tsforecast.models.arnet import ARNet

REPO = Path(__file__).resolve().parents[1]
QUIET = dict(device="cpu", log=lambda message: None)
FAST = {"max_epochs": 1}


@pytest.fixture
def series_csv(tmp_path) -> Path:
    return write_plant_csv(tmp_path / "plant.csv")


@pytest.fixture
def count_fits(monkeypatch):
    calls = []
    original = Forecaster.fit

    def fit(self, *args, **kwargs):
        calls.append((self.horizon, self.random_state))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Forecaster, "fit", fit)
    return calls


def test_run_one_scores_every_test_window_and_records_what_it_used(series_csv):
    row = run_one("arnet", str(series_csv), 12, 24, 0, {"ar_reg": 0.5}, FAST, device="cpu", forecast_windows=2)
    assert row["n_test_windows"] == int(0.2 * 300) - 12 + 1  # every window of the last 20%
    assert row["mse"] > 0 and row["epochs"] == 1 and row["train_seconds"] > 0
    settings = json.loads(row["settings"])
    assert settings["model"]["ar_reg"] == 0.5 and settings["model"]["reg_warmup"] == 0.5  # given and defaulted
    assert settings["training"]["max_epochs"] == 1 and "verbose" not in settings["training"]
    assert settings["data"]["split"] == "ratio" and len(settings["data"]["sha256"]) == 64
    assert row["code_version"] == code_version("arnet") and np.isnan(row["shared_fit_with"])
    curve = json.loads(row["loss_curve"])
    assert len(curve["train"]) == len(curve["val"]) == 1
    windows = row["forecasts"]
    assert sorted(windows["window"].unique()) == [0, 1]
    future = windows[windows["step"] > 0]
    assert len(future) == 2 * 12 and future["forecast"].notna().all() and future["truth"].notna().all()
    assert windows[windows["step"] <= 0]["forecast"].isna().all() and set(windows["channel"]) == {"temp"}


def test_shared_fit_is_fitted_once_per_seed_timed_once_and_scores_like_its_own_fit(series_csv, tmp_path, monkeypatch,
                                                                                     count_fits):
    # AR-Net predicts one step and rolls out: its training does not depend on the horizon
    monkeypatch.setattr(ARNet, "one_model_for_all_horizons", True)
    results = run_sweep(["arnet"], [str(series_csv)], [6, 12], 24, [0, 1], tmp_path / "b", training=FAST, **QUIET)
    assert len(count_fits) == 2  # one fit per seed: the plan keeps each fit's horizons together
    assert [(r.seed, r.horizon) for r in results.itertuples()] == [(0, 6), (0, 12), (1, 6), (1, 12)]
    first, reused = results[results["horizon"] == 6], results[results["horizon"] == 12]
    assert (first["train_seconds"] > 0).all() and first["shared_fit_with"].isna().all()
    assert (reused["train_seconds"] == 0).all() and (reused["shared_fit_with"] == 6).all()
    assert list(reused["loss_curve"]) == list(first["loss_curve"])  # the fit's curve, not a new one
    # the same figures as fitting each horizon on its own
    for r in reused.itertuples():
        alone = run_one("arnet", str(series_csv), 12, 24, r.seed, {}, FAST, device="cpu")
        assert (r.mse, r.mae) == (alone["mse"], alone["mae"])
    report = (tmp_path / "b" / "report.md").read_text()
    assert "| 12 | 24 |" in report and "| shared |" in report
    assert "counted once" in report


def test_resume_after_a_kill_loses_nothing_and_reruns_nothing(series_csv, tmp_path, monkeypatch, count_fits):
    out = tmp_path / "b"
    original = bench.run_one

    def killed_on_the_third_run(*args, **kwargs):
        if len(count_fits) == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(bench, "run_one", killed_on_the_third_run)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(["naive", "ar"], [str(series_csv)], [6, 12], 24, [0], out, **QUIET)
    before = read_results(out)
    assert len(before) == 2 and sorted(before["model"]) == ["naive", "naive"]
    assert all((out / "forecasts" / f"{run}.csv").is_file() for run in before["run_id"])
    monkeypatch.setattr(bench, "run_one", original)
    count_fits.clear()
    after = run_sweep(["naive", "ar"], [str(series_csv)], [6, 12], 24, [0], out, **QUIET)
    assert [(h, s) for h, s in count_fits] == [(6, 0), (12, 0)]  # only AR's two runs
    assert len(after) == 4
    pd.testing.assert_frame_equal(read_results(out).iloc[:2], before)  # the finished rows are untouched
    count_fits.clear()
    run_sweep(["naive", "ar"], [str(series_csv)], [6, 12], 24, [0], out, **QUIET)
    assert count_fits == []


def test_a_changed_default_reruns_its_rows_and_nothing_else(series_csv, tmp_path, monkeypatch, capsys):
    out = tmp_path / "b"
    args = (["arnet", "ar"], [str(series_csv)], [6], 24, [0], out)
    run_sweep(*args, training=FAST, **QUIET)
    # AR-Net's default ar_reg changes (order, ar_reg, hidden_layers, reg_warmup)
    monkeypatch.setattr(ARNet.__init__, "__defaults__", (None, 0.25, (), 0.5))
    messages = []
    results = run_sweep(*args, training=FAST, device="cpu", log=messages.append)
    assert messages[0].startswith("1 runs to do (1 already in") and "1 recorded with other settings or code" in messages[0]
    assert list(results["model"]) == ["arnet", "ar", "arnet"]
    assert json.loads(results["settings"].iloc[-1])["model"]["ar_reg"] == 0.25
    report = (out / "report.md").read_text()
    assert "1 older row(s) of runs re-run" in report
    assert report.count("| arnet {\"train.max_epochs\": 1} | 6 |") == 1  # the newest row only
    # a family's training default counts too
    monkeypatch.setattr(ARNet, "training_defaults", {**ARNet.training_defaults, "learning_rate": 0.5})
    plan, done, stale = plan_sweep(["arnet", "ar"], {"plant": str(series_csv)}, [6], 24, [0], read_results(out), {},
                                   FAST, json.dumps({"train.max_epochs": 1}))
    assert [run["model"] for run in plan] == ["arnet"] and (done, stale) == (1, 1)


def test_the_committed_lora_row_ran_with_old_defaults_and_is_rerun():
    """The AutoTimes lora_r=8 row was recorded before the default head (2 x 512) and batch (292) were set:
    its params match the planned run, its resolved settings do not."""
    folder = REPO / "benchmarks/results/llm/autotimes_etth1_l672_variants"
    results = read_results(folder)
    params = json.dumps({"lora_r": 8})
    plan, done, stale = plan_sweep(["autotimes"], {"ETTh1": "ETTh1"}, [96], 672, [0], results, {"lora_r": 8}, {}, params)
    assert len(plan) == 1 and stale == 1 and done == 0
    recorded = json.loads(results[(results["params"] == params) & (results["horizon"] == 96)]["settings"].iloc[0])
    planned = json.loads(plan[0]["settings"])
    assert recorded["model"]["mlp_hidden_dim"] != planned["model"]["mlp_hidden_dim"]
    # even with the code version it lacks, the recorded settings alone would not match
    assert {k: recorded[k] for k in ("model", "training")} != {k: planned[k] for k in ("model", "training")}


def test_code_version_ignores_prose_and_other_models(tmp_path):
    code = "def f(x):\n    return x + 1\n"
    prose = '"""Module doc."""\n# a comment\ndef f(x):  # why\n    """Doc."""\n\n    return x  +  1\n'
    changed = "def f(x):\n    return x + 2\n"
    texts = {}
    for name, text in (("code", code), ("prose", prose), ("changed", changed)):
        (tmp_path / f"{name}.py").write_text(text)
        texts[name] = bench._code_text(tmp_path / f"{name}.py")
    assert texts["code"] == texts["prose"] != texts["changed"]
    files = {path.relative_to(bench._PACKAGE_DIR).as_posix() for path in bench.model_code_files("arnet")}
    assert {"models/arnet.py", "models/ar.py", "models/base.py", "layers/autoregressive.py"} <= files
    assert not any("informer" in name or "attention" in name for name in files)
    assert code_version("arnet") != code_version("ar") and code_version("arnet").startswith("0.")


def test_old_rows_without_the_key_columns_are_reported_and_rerun():
    results = read_results(REPO / "benchmarks/results/linear_l96")
    assert "code_version" not in results.columns
    report = render_report(results, None)
    assert "## Weather" in report and "| arnet | 720 | 96 |" in report
    plan, done, stale = plan_sweep(["naive"], {"ETTh1": "ETTh1"}, [96], 96, [0], results, {}, {}, "{}")
    assert (len(plan), done, stale) == (1, 0, 1)


def _row(model, dataset="ETTh1", horizon=96, lookback=96, mse=0.5):
    return {"model": model, "dataset": dataset, "horizon": horizon, "lookback": lookback, "seed": 0, "params": "{}",
            "mse": mse, "mae": 0.5, "n_test_windows": 100, "train_seconds": 1.0, "epoch_seconds": np.nan,
            "predict_seconds": 0.1, "epochs": 0, "device": "cpu"}


def test_report_marks_averages_that_mix_lookbacks():
    rows = [_row("itransformer", horizon=h) for h in (96, 192)] + [_row("naive", horizon=h) for h in (96, 192)]
    report = render_report(pd.DataFrame(rows), None)
    lines = report.splitlines()
    itr = [line for line in lines if line.startswith("| itransformer |")]
    naive = [line for line in lines if line.startswith("| naive |")]
    assert len(itr) == len(naive) == 3  # two horizons and their average
    assert not any(bench.OTHER_LOOKBACK in line for line in itr)  # published at L=96 like ours
    assert all(bench.OTHER_LOOKBACK in line for line in naive)  # "Repeat" is published at L=1
    assert report.count("another look-back than ours") == 2  # under the table and under the averages
    mixed = render_report(pd.DataFrame([_row("itransformer"), _row("itransformer", horizon=192, lookback=336)]), None)
    average = next(line for line in mixed.splitlines() if line.startswith("| itransformer | ETTh1 |"))
    assert bench.OTHER_LOOKBACK in average  # one of the two published figures is at L=96, ours at 336


def test_bench_writes_figures_and_report_redraws_them(series_csv, tmp_path, capsys):
    out = tmp_path / "b"
    assert main(["bench", "--models", "naive,arnet", "--datasets", str(series_csv), "--horizons", "6,12",
                 "--lookback", "24", "--max-epochs", "1", "--device", "cpu", "--out", str(out)]) == 0
    figures = sorted(path.name for path in out.glob("fig_*.png"))
    assert figures == ["fig_forecasts_plant.png", "fig_training.png"]  # no published figures for one's own data
    report = (out / "report.md").read_text()
    assert all(f"]({name})" in report for name in figures)
    assert "no run has a published figure" in report
    drawn = {name: (out / name).read_bytes() for name in figures}
    assert all(len(data) < 150_000 for data in drawn.values())
    for name in figures:
        (out / name).unlink()
    capsys.readouterr()
    assert main(["report", "--out", str(out)]) == 0, capsys.readouterr().err
    assert {name: (out / name).read_bytes() for name in figures} == drawn
    assert (out / "report.md").read_text() == report


def test_report_on_a_folder_without_side_files_draws_the_comparison_only(tmp_path):
    out = tmp_path / "old"
    out.mkdir()
    shutil.copy(REPO / "benchmarks/results/transformers_l96/results.csv", out)
    (out / "fig_forecasts_gone.png").write_bytes(b"stale")  # a figure an earlier drawing made
    assert main(["report", "--out", str(out)]) == 0
    assert sorted(path.name for path in out.glob("fig_*.png")) == ["fig_ratio.png"]
    report = (out / "report.md").read_text()
    assert "](fig_ratio.png)" in report and "no saved forecasts" in report and "no recorded loss curve" in report


def test_report_compares_with_a_published_average_over_the_four_horizons():
    """AutoTimes publishes only its average over 96-720 (at L=672): the average row is compared with it."""
    rows = [_row("autotimes", horizon=h, lookback=672, mse=0.389 * 1.1) for h in (96, 192, 336, 720)]
    report = render_report(pd.DataFrame(rows), None)
    average = next(line for line in report.splitlines() if line.startswith("| autotimes | ETTh1 | 4 |"))
    assert "| 0.389 | 1.100 |" in average and bench.OTHER_LOOKBACK not in average
    three = render_report(pd.DataFrame(rows[:3]), None)  # not the published average's horizons
    average = next(line for line in three.splitlines() if line.startswith("| autotimes | ETTh1 | 3 |"))
    assert "0.389" not in average


def test_levels_record_interval_scores_and_are_part_of_the_key(series_csv, tmp_path):
    out = tmp_path / "levels"
    code = main(["bench", "--models", "ar,snaive", "--datasets", str(series_csv), "--horizons", "12",
                 "--lookback", "24", "--levels", "80,95", "--interval-method", "adaptive", "--out", str(out)])
    assert code == 0
    rows = read_results(out)
    assert {"coverage_80", "width_80", "winkler_80", "coverage_95", "width_95", "winkler_95"} <= set(rows.columns)
    ar = rows[rows["model"] == "ar"].iloc[0]
    # the same figures as Forecaster.evaluate on the same split
    split = bench.resolve_dataset(str(series_csv), 24, 12).split
    fitted = Forecaster(model="ar", lookback=24, horizon=12, interval_method="adaptive", device="cpu",
                        random_state=0).fit(split.train, val_df=split.val)
    expected = fitted.evaluate(split.test, level=[80, 95])
    assert ar["coverage_80"] == pytest.approx(expected["coverage_80"], rel=1e-5)
    assert ar["winkler_95"] == pytest.approx(expected["winkler_95"], rel=1e-5)
    assert json.loads(ar["settings"])["scoring"] == {"levels": [80.0, 95.0], "interval_method": "adaptive"}
    assert "## Prediction intervals" in (out / "report.md").read_text()
    # the same sweep without levels is another run (re-run); with the same levels, nothing to do
    plan = plan_sweep(["ar"], {"plant": str(series_csv)}, [12], 24, [0], rows, {}, {}, "{}")[0]
    assert len(plan) == 1
    plan = plan_sweep(["ar"], {"plant": str(series_csv)}, [12], 24, [0], rows, {}, {}, "{}",
                      scoring={"levels": [80.0, 95.0], "interval_method": "adaptive"})[0]
    assert plan == []


def test_bad_levels_fail_before_anything_is_written(series_csv, tmp_path, capsys):
    out = tmp_path / "bad"
    assert main(["bench", "--models", "ar", "--datasets", str(series_csv), "--horizons", "12", "--lookback", "24",
                 "--levels", "80,100", "--out", str(out)]) == 2
    assert "level" in capsys.readouterr().err and not (out / "results.csv").exists()


# ---------------------------------------------------------------------- panels: channels as series, long CSVs
def long_plant_csv(wide_csv: Path, path: Path, drop_head: dict | None = None) -> Path:
    """The plant CSV in long format (unique_id = channel, ds, y); ``drop_head``: rows cut from a series' start."""
    wide = pd.read_csv(wide_csv, parse_dates=["date"])
    parts = []
    for channel in ("load", "temp"):
        part = pd.DataFrame({"unique_id": channel, "ds": wide["date"], "y": wide[channel]})
        parts.append(part.iloc[(drop_head or {}).get(channel, 0):])
    pd.concat(parts).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("model", ["naive", "snaive"])
def test_channels_as_series_scores_a_channel_independent_model_exactly_like_the_wide_protocol(series_csv, model):
    # naive/snaive forecast each channel from itself alone, so the same splits, the per-series scaler (= the
    # protocol's per-column scaler) and pooling the test windows over series must give the wide figures exactly
    wide = run_one(model, str(series_csv), 12, 24, 0, {}, {}, device="cpu")
    panel = run_one(model, str(series_csv), 12, 24, 0, {}, {}, device="cpu", channels_as_series=True,
                    forecast_windows=2)
    assert panel["n_test_windows"] == 2 * wide["n_test_windows"]
    assert panel["mse"] == pytest.approx(wide["mse"], rel=1e-9) and panel["mae"] == pytest.approx(wide["mae"], rel=1e-9)
    assert json.loads(panel["settings"])["data"]["layout"] == "channels_as_series"
    assert "layout" not in json.loads(wide["settings"])["data"]  # wide settings, hence wide resume keys, unchanged
    assert set(panel["forecasts"]["channel"]) == {"temp"} and panel["forecasts"]["forecast"].notna().any()


def test_a_global_model_on_channels_as_series_differs_from_its_per_channel_fit(series_csv):
    wide = run_one("ar", str(series_csv), 12, 24, 0, {}, {}, device="cpu")
    panel = run_one("ar", str(series_csv), 12, 24, 0, {}, {}, device="cpu", channels_as_series=True)
    assert np.isfinite(panel["mse"]) and panel["mse"] != pytest.approx(wide["mse"], rel=1e-6)


def test_layout_is_recorded_reported_apart_and_part_of_the_resume_key(series_csv, tmp_path):
    out = tmp_path / "out"
    args = (["naive"], [str(series_csv)], [12], 24, [0], out)
    run_sweep(*args, **QUIET, figures=False)
    run_sweep(*args, **QUIET, figures=False, channels_as_series=True)  # the wide row does not count as done
    results = read_results(out)
    assert results["layout"].tolist() == ["wide", "channels_as_series"]
    assert results["run_id"].nunique() == 2 and "channels_as_series" in results["run_id"].iloc[1]
    plan, done, stale = plan_sweep(["naive"], {"plant": str(series_csv)}, [12], 24, [0], results, {}, {}, "{}",
                                   channels_as_series=True)
    assert (plan, done, stale) == ([], 1, 0)
    report = render_report(results)
    assert "| naive | 12 |" in report and "| naive [channels as series] | 12 |" in report
    # rows recorded before the column existed read back as wide and keep their key
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    results.iloc[:1].drop(columns="layout").to_csv(legacy / "results.csv", index=False)
    old = read_results(legacy)
    assert old["layout"].tolist() == ["wide"]
    assert plan_sweep(["naive"], {"plant": str(series_csv)}, [12], 24, [0], old, {}, {}, "{}")[:2] == ([], 1)


def test_a_long_user_csv_is_a_panel_split_70_10_20_per_series(series_csv, tmp_path, capsys):
    long_csv = long_plant_csv(series_csv, tmp_path / "stores.csv", drop_head={"temp": 50})  # series of two lengths
    row = run_one("naive", str(long_csv), 12, 24, 0, {}, {}, device="cpu", id_column="unique_id")
    assert row["n_test_windows"] == (int(0.2 * 300) - 12 + 1) + (int(0.2 * 250) - 12 + 1)
    assert json.loads(row["settings"])["data"]["layout"] == "long"
    # one series of a long file scores as that column of a wide file does
    one = tmp_path / "one.csv"
    pd.read_csv(long_csv).query("unique_id == 'load'").to_csv(one, index=False)
    wide_one = tmp_path / "wide_one.csv"
    pd.read_csv(series_csv)[["date", "load"]].to_csv(wide_one, index=False)
    long_row = run_one("naive", str(one), 12, 24, 0, {}, {}, device="cpu", id_column="unique_id")
    wide_row = run_one("naive", str(wide_one), 12, 24, 0, {}, {}, device="cpu")
    assert (long_row["mse"], long_row["n_test_windows"]) == (pytest.approx(wide_row["mse"], rel=1e-9),
                                                             wide_row["n_test_windows"])
    code = main(["bench", "--models", "naive", "--datasets", str(long_csv), "--id-column", "unique_id",
                 "--horizons", "12", "--lookback", "24", "--device", "cpu", "--out", str(tmp_path / "cli")])
    assert code == 0 and read_results(tmp_path / "cli")["layout"].tolist() == ["long"]


def test_a_long_csv_series_too_short_for_its_split_is_named(series_csv, tmp_path, capsys):
    long_csv = long_plant_csv(series_csv, tmp_path / "stores.csv", drop_head={"temp": 290})
    code = main(["bench", "--models", "naive", "--datasets", str(long_csv), "--id-column", "unique_id",
                 "--horizons", "12", "--lookback", "24", "--device", "cpu", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "'temp' (10 rows)" in err and "lower --lookback" in err
    assert not (tmp_path / "out" / "results.csv").exists()


def test_panel_options_that_cannot_work_fail_before_any_run(series_csv, tmp_path, capsys):
    common = ["bench", "--models", "naive", "--horizons", "12", "--lookback", "24", "--out", str(tmp_path / "out")]
    assert main(common + ["--datasets", "ETTh2", "--train-on", "ETTh1", "--channels-as-series"]) == 2
    assert "drop --channels-as-series or --train-on" in capsys.readouterr().err
    long_csv = long_plant_csv(series_csv, tmp_path / "stores.csv")
    assert main(common + ["--datasets", str(long_csv), "--id-column", "unique_id", "--channels-as-series"]) == 2
    assert "drop --channels-as-series" in capsys.readouterr().err
