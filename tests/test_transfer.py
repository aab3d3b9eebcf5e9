"""Zero-shot transfer in the bench (``train_on`` / ``--train-on``): the source is recorded, one fit serves every
target, the target's own test split and training scaler are used, channel counts must match, resume keys differ."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tsforecast.bench import current_rows, plan_sweep, read_results, render_report, run_one, run_sweep
from tsforecast.cli import main
from tsforecast.forecaster import Forecaster

QUIET = dict(device="cpu", log=lambda message: None, figures=False)


def _write(path, n=300, channels=("load", "temp"), scale=1.0, shift=0.0, seed=7):
    rng = np.random.default_rng(seed)
    index = pd.date_range("2023-01-01", periods=n, freq="h")
    daily = np.sin(2 * np.pi * np.arange(n) / 24)
    values = {name: daily * (k + 1) + 0.1 * rng.normal(size=n).cumsum() for k, name in enumerate(channels)}
    frame = pd.DataFrame(values) * scale + shift
    frame.insert(0, "date", index)
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def source(tmp_path):
    return _write(tmp_path / "source.csv")


@pytest.fixture
def fits(monkeypatch):
    calls = []
    original = Forecaster.fit

    def fit(self, X, *args, **kwargs):
        calls.append((self.horizon, len(X)))
        return original(self, X, *args, **kwargs)

    monkeypatch.setattr(Forecaster, "fit", fit)
    return calls


def test_transfer_scores_the_targets_test_split_with_its_own_scaler(source, tmp_path):
    # The target is the source in other units (x 40 + 300, other column names): standardized by its own
    # training split it is the source again, so the zero-shot score equals the source's own test score.
    # Scaled by the source's scaler instead, the target would sit hundreds of standard deviations away.
    target = _write(tmp_path / "target.csv", channels=("a", "b"), scale=40.0, shift=300.0)
    own = run_one("ar", str(source), 6, 24, 0, {}, {}, device="cpu")
    moved = run_one("ar", str(target), 6, 24, 0, {}, {}, device="cpu", train_on=str(source))
    assert moved["mse"] == pytest.approx(own["mse"], rel=1e-4) and moved["mae"] == pytest.approx(own["mae"], rel=1e-4)
    # a target of another length: every window of its own last 20%
    longer = _write(tmp_path / "longer.csv", n=400, seed=3)
    row = run_one("naive", str(longer), 6, 24, 0, {}, {}, device="cpu", train_on=str(source))
    assert row["n_test_windows"] == int(0.2 * 400) - 6 + 1
    # seasonal-free naive forecasts do not depend on the fit: zero-shot equals in-domain on the target
    assert row["mse"] == pytest.approx(run_one("naive", str(longer), 6, 24, 0, {}, {}, device="cpu")["mse"], rel=1e-6)


def test_transfer_rows_record_the_source_and_share_one_fit_across_targets(source, tmp_path, fits):
    targets = [str(_write(tmp_path / "t1.csv", seed=1)), str(_write(tmp_path / "t2.csv", n=360, seed=2))]
    out = tmp_path / "out"
    results = run_sweep(["ar"], targets, [6, 12], 24, [0], out, train_on=str(source), **QUIET)
    assert len(results) == 4 and set(results["train_dataset"]) == {"source"}
    assert sorted(results["dataset"]) == ["t1", "t1", "t2", "t2"]
    # ar fits one model per horizon: two fits (on the source's 210 training rows), each serving both targets
    assert fits == [(6, 210), (12, 210)]
    second = results[results["dataset"] == "t2"]
    assert (second["train_seconds"] == 0).all() and second["shared_fit_with"].tolist() == [6, 12]
    report = render_report(read_results(out), out)
    assert "## source->t1" in report and "## source->t2" in report and "Zero-shot: fitted on source" in report


def test_a_channel_count_mismatch_is_a_clear_error_before_any_run(source, tmp_path):
    wide = _write(tmp_path / "wide.csv", channels=("a", "b", "c"))
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"--train-on source has 2 channels but dataset wide has 3"):
        run_sweep(["naive"], [str(wide)], [6], 24, [0], out, train_on=str(source), **QUIET)
    assert not (out / "results.csv").exists()


def test_the_resume_key_distinguishes_train_on(source, tmp_path):
    target = str(_write(tmp_path / "target.csv", seed=4))
    out = tmp_path / "out"
    run_sweep(["naive"], [target], [6], 24, [0], out, train_on=str(source), **QUIET)
    results = read_results(out)
    sources = {"target": target}
    plan = lambda train_on: plan_sweep(["naive"], sources, [6], 24, [0], results, {}, {}, "{}", train_on=train_on)[:2]
    todo, done = plan(("source", str(source)))
    assert todo == [] and done == 1
    in_domain, done = plan(None)
    assert len(in_domain) == 1 and done == 0 and in_domain[0]["train_dataset"] == ""
    other = _write(tmp_path / "other.csv", seed=5)
    assert len(plan(("other", str(other)))[0]) == 1
    # both kinds in one folder: each is its own run in the report
    run_sweep(["naive"], [target], [6], 24, [0], out, **QUIET)
    both = current_rows(read_results(out))
    assert len(both) == 2 and both["train_dataset"].isna().sum() == 1


def test_cli_train_on(source, tmp_path, capsys):
    target = _write(tmp_path / "target.csv", seed=6)
    out = tmp_path / "out"
    args = ["bench", "--models", "naive", "--train-on", str(source), "--datasets", str(target), "--horizons", "6",
            "--lookback", "24", "--out", str(out), "--device", "cpu"]
    assert main(args) == 0
    assert read_results(out)["train_dataset"].tolist() == ["source"]
    assert main(args + ["--backend", "ray"]) == 2
    assert "--train-on runs on the sequential back-end only" in capsys.readouterr().err
