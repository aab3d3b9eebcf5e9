"""Choose the shipped adapter's zero-shot context length on validation data only (issue 14 item 4).

The shipped ``tsforecast.pretrained("autotimes-smollm2")`` forecasts each series from its last
``min(rows, context)`` rows floored to whole tokens of 8 steps (``context`` = the look-back, 192, before
this study). This script scores the adapter zero-shot (no fit) with each candidate context of 16, 24,
32, 48, 64, 96, 128 and 192 rows (whole tokens: 2 .. 24) on data that is in no benchmark's test split:

- ``ETTh``, ``ETTm``, ``Weather``: the protocol VAL splits of the pretraining's datasets (ETTh1+ETTh2,
  ETTm1+ETTm2, Weather; every channel), as ``pretrain_autotimes.build_panels`` builds them (imported, with
  the whole VAL split kept instead of the first rows used for early stopping); origins evenly spaced from
  the first VAL row to the last that leaves the horizon (24 steps) inside VAL; MASE seasons 24 / 96 / 144
  (a day);
- ``synth-monthly``, ``synth-quarterly``, ``synth-yearly``: held-out KernelSynth series
  (``tsforecast.data.synthetic.kernel_synth``, seeds from 1,000,000 up: pretraining drew seed 0) of
  everyday low-frequency lengths (60-300, 40-200 and 30-120 rows, drawn uniformly), whose periodic kernels
  are restricted to period 12 / period 4 / none (``synthetic.PERIODS`` set for the draw; yearly: no
  periodic kernel); the last 2 origins spaced by the horizon (12 / 8 / 6), MASE seasons 12 / 4 / 1.
  (The pretraining's own validation has no synthetic part: its early stopping read only the VAL splits
  above; these held-out draws stand in for it.)

Scoring a context of N rows: ``predict`` is given only the last N rows before the origin, with the
forecaster's context at its longest (it reads ``min(rows, context)`` floored to whole tokens, so this is
exactly what a default context of N does: ``tests/test_pretrained.py`` checks the equality, and
``--check`` re-checks it here on a few windows). Every candidate scores the same windows. Per window: MASE
(MAE / the in-sample seasonal-naive MAE of every row before the origin) and scaled MSE (MSE / the variance
of those rows). Per series the mean over its windows; per group the geometric mean of the series' MASE
and the mean of their scaled MSE; **overall: the geometric mean of the six group geometric means** (each
group weighs the same: half high-frequency real data, half low-frequency synthetic data).

Rule, fixed before the first run: let ``best`` be the lowest overall MASE; the pick is the **longest**
candidate whose overall MASE is within 1% of ``best`` (a longer context is the safer default for series
with long seasons); it ships as the default context if its overall MASE is at least 3% below that of the
current default (192 rows), else the default stays 192.

Budget: at most about 10 minutes of one core: 49 VAL channels x 24 origins and 3 x 200 synthetic series x 2
origins (2,363 windows once constant histories are left out), 8 candidates each; the committed run spent about
3 minutes forecasting (batched ``predict``; seconds per window below).

Results: ``context.csv`` (one row per window x candidate; rewritten atomically after each group x candidate,
and a rerun skips the group x candidate pairs already there with the same ``config``: the adapter's hash
and this protocol's version) and ``context.md`` (command, machine, tables, rule and pick).

    nice -n 5 env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/scripts/pretrained_context.py
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # shared 2-core machine: one core unless told otherwise

import argparse
import contextlib
import hashlib
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pretrain_autotimes import TOKEN_LEN, build_panels  # noqa: E402  (the pretraining's own validation panels)
from zero_shot_bench import gmean  # noqa: E402

import tsforecast  # noqa: E402
from tsforecast.data import synthetic  # noqa: E402
from tsforecast.io import write_atomic  # noqa: E402
from tsforecast.metrics import seasonal_naive_scale  # noqa: E402

CANDIDATES = (16, 24, 32, 48, 64, 96, 128, 192)
CURRENT = 192  # the default before this study: the look-back
PROTOCOL = "ctx-v1"  # bump when the windows or the scores change, so a rerun recomputes
NAME = "autotimes-smollm2"
# group -> (datasets or synthetic kind, MASE season, horizon)
REAL = {"ETTh": (("ETTh1", "ETTh2"), 24, 24), "ETTm": (("ETTm1", "ETTm2"), 96, 24), "Weather": (("Weather",), 144, 24)}
# group -> (periods of the periodic kernel or None for no periodic kernel, length range, season, horizon, seed base)
SYNTH = {"synth-monthly": ((12,), (60, 300), 12, 12, 1_000_000),
         "synth-quarterly": ((4,), (40, 200), 4, 8, 2_000_000),
         "synth-yearly": (None, (30, 120), 1, 6, 3_000_000)}
GROUPS = tuple(REAL) + tuple(SYNTH)
COLUMNS = ["group", "series", "season", "horizon", "origin", "context", "rows_read", "mase", "smse", "config",
           "seconds"]
MIN_WITHIN, MIN_GAIN = 0.01, 0.03  # the rule: within 1% of the best; ship at >= 3% below CURRENT


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/pretrained")
    p.add_argument("--origins", type=int, default=24, help="origins per VAL channel")
    p.add_argument("--n-synthetic", type=int, default=200, help="held-out synthetic series per group")
    p.add_argument("--synthetic-origins", type=int, default=2)
    p.add_argument("--groups", default=",".join(GROUPS), help="comma-separated subset of " + ",".join(GROUPS))
    p.add_argument("--check", type=int, default=3,
                   help="windows per group x candidate on which the context setting is compared with the last-N-rows "
                        "forecast (0: none; skipped when the forecaster has no context setting)")
    p.add_argument("--report-only", action="store_true", help="rewrite context.md from context.csv")
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------------ the windows
@contextlib.contextmanager
def periods(values):
    """KernelSynth's periodic kernel restricted to ``values`` for the draws inside (its module constant)."""
    saved = synthetic.PERIODS
    synthetic.PERIODS = tuple(values)
    try:
        yield
    finally:
        synthetic.PERIODS = saved


def real_series(group: str) -> list[tuple[str, np.ndarray]]:
    """(id, values) of every channel of the group's protocol VAL splits (whole split, as build_panels builds it)."""
    import pretrain_autotimes

    names, _, _ = REAL[group]
    saved = pretrain_autotimes.DATASETS
    pretrain_autotimes.DATASETS = names  # only this group's datasets
    try:
        # n_synthetic=0: the training panel's synthetic draw is not needed; val_windows: the whole VAL split
        _, val, _ = build_panels(SimpleNamespace(val_windows=10 ** 9, n_synthetic=0, synthetic_length=512,
                                                 synthetic_seed=0))
    finally:
        pretrain_autotimes.DATASETS = saved
    return [(uid, part["y"].to_numpy(np.float64)) for uid, part in val.groupby("unique_id", sort=True)]


def synthetic_series(group: str, n: int) -> list[tuple[str, np.ndarray]]:
    kinds, (low, high), _, _, base = SYNTH[group]
    lengths = np.random.default_rng(base).integers(low, high + 1, size=n)
    out = []
    for i, length in enumerate(lengths):
        if kinds is None:
            values = synthetic.kernel_synth(1, int(length), seed=base + i,
                                            kernels=tuple(k for k in synthetic.KERNELS if k != "periodic"))[0]
        else:
            with periods(kinds):
                values = synthetic.kernel_synth(1, int(length), seed=base + i)[0]
        out.append((f"{group}/{i}", values.astype(np.float64)))
    return out


def windows(group: str, args) -> list[dict]:
    """Every scored window of the group: series, origin, the history before it, the truth after it."""
    out = []
    if group in REAL:
        _, season, horizon = REAL[group]
        for uid, values in real_series(group):
            # the first VAL row (after build_panels' look-back of training rows) .. the last leaving the horizon
            for origin in np.linspace(192, len(values) - horizon, args.origins).astype(int):
                out.append({"series": uid, "season": season, "horizon": horizon, "origin": int(origin),
                            "history": values[:origin], "truth": values[origin:origin + horizon]})
    else:
        _, _, season, horizon, _ = SYNTH[group]
        for uid, values in synthetic_series(group, args.n_synthetic):
            for k in range(args.synthetic_origins, 0, -1):
                origin = len(values) - k * horizon
                out.append({"series": uid, "season": season, "horizon": horizon, "origin": origin,
                            "history": values[:origin], "truth": values[origin:origin + horizon]})
    for w in out:
        w["scale"] = float(seasonal_naive_scale(w["history"], w["season"])[0][0])
        w["var"] = float(np.var(w["history"]))
    return [w for w in out if w["scale"] > 0 and w["var"] > 0]  # a constant history has no scale


def long_frame(items: list[dict], rows: int) -> pd.DataFrame:
    """One long frame, one series per window: its last ``rows`` rows (timestamps are unused by the model)."""
    parts = []
    for i, w in enumerate(items):
        values = w["history"][-rows:]
        parts.append(pd.DataFrame({"unique_id": f"w{i:06d}", "ds": pd.date_range("2000-01-01", periods=len(values),
                                                                               freq="h"), "y": values}))
    return pd.concat(parts, ignore_index=True)


def forecast(model, items: list[dict], rows: int) -> np.ndarray:
    """(windows, horizon) forecasts from each window's last ``rows`` rows."""
    horizon = items[0]["horizon"]
    out = model.predict(long_frame(items, rows), horizon=horizon)
    out = out.sort_values(["unique_id", "ds"], kind="stable")  # window by window, step by step
    if len(out) != len(items) * horizon or out["unique_id"].nunique() != len(items):
        raise RuntimeError(f"{len(out)} forecast rows for {len(items)} windows of {horizon} steps")
    return out["y"].to_numpy(np.float64).reshape(len(items), horizon)


# ------------------------------------------------------------------------------------------ the run
def load_model():
    """The shipped forecaster with its context at the longest (so the rows given are the rows read), its tag."""
    from tsforecast.pretrained import SHIPPED_ROOT

    folder = SHIPPED_ROOT / NAME
    digest = hashlib.sha256((folder / "adapter.safetensors").read_bytes()).hexdigest()[:12]
    model = tsforecast.pretrained(NAME, device="cpu")
    if "context" in model.get_params():
        model.set_params(context=model.lookback)
    if model.lookback < max(CANDIDATES):
        raise RuntimeError(f"the shipped look-back is {model.lookback} rows; the candidates go up to {max(CANDIDATES)}")
    return model, f"{NAME}@{digest}|{PROTOCOL}"


def check_context_setting(model, items: list[dict], rows: int) -> float:
    """The largest difference between ``context=rows`` on the whole history and the last ``rows`` rows."""
    model.set_params(context=rows)
    try:
        setting = model.predict(long_frame(items, 10 ** 9), horizon=items[0]["horizon"])
    finally:
        model.set_params(context=model.lookback)
    given = model.predict(long_frame(items, rows), horizon=items[0]["horizon"])
    assert setting.shape == given.shape
    return float(np.max(np.abs(setting["y"].to_numpy() - given["y"].to_numpy())))


def run(args) -> pd.DataFrame:
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "context.csv"
    rows = pd.read_csv(path).to_dict("records") if path.exists() else []
    model, config = load_model()
    done = {(r["group"], int(r["context"]), r["config"]) for r in rows}
    checks = []
    for group in [g for g in args.groups.split(",") if g]:
        if group not in GROUPS:
            raise SystemExit(f"unknown group {group!r}; choose from {','.join(GROUPS)}")
        checking = args.check > 0 and "context" in model.get_params()
        if all((group, n, config) in done for n in CANDIDATES) and not checking:
            continue
        t0 = time.perf_counter()
        items = windows(group, args)
        print(f"{group}: {len(items)} windows of {len({w['series'] for w in items})} series "
              f"({time.perf_counter() - t0:.1f} s to build)", flush=True)
        for n in CANDIDATES:
            if checking:
                checks.append((group, n, check_context_setting(model, items[:args.check], n)))
            if (group, n, config) in done:
                continue
            t0 = time.perf_counter()
            pred = forecast(model, items, n)
            seconds = (time.perf_counter() - t0) / len(items)
            for w, p in zip(items, pred):
                err = w["truth"] - p
                rows.append({"group": group, "series": w["series"], "season": w["season"], "horizon": w["horizon"],
                             "origin": w["origin"], "context": n,
                             "rows_read": min(len(w["history"]), n) // TOKEN_LEN * TOKEN_LEN,
                             "mase": float(np.mean(np.abs(err)) / w["scale"]),
                             "smse": float(np.mean(err ** 2) / w["var"]), "config": config,
                             "seconds": round(seconds, 5)})
            write_atomic(path, pd.DataFrame(rows, columns=COLUMNS).to_csv(index=False))
            part = pd.DataFrame(rows[-len(items):])
            print(f"  context {n:3d}: gmean MASE {gmean(part.groupby('series')['mase'].mean()):.3f}, "
                  f"{seconds * 1e3:.1f} ms per window", flush=True)
    if checks:
        worst = max(c[2] for c in checks)
        print(f"context setting vs last-N rows: largest difference {worst:.3g} over {len(checks)} checks", flush=True)
        (args.out / "context.check.txt").write_text(
            "context=N on the whole history vs predict on the last N rows (largest absolute difference):\n"
            + "\n".join(f"{g} {n}: {d:.3g}" for g, n, d in checks) + "\n")
    return pd.DataFrame(rows, columns=COLUMNS)


# ------------------------------------------------------------------------------------------ the report
def summarize(results: pd.DataFrame, config: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(geometric-mean MASE, mean scaled MSE): rows the candidates, columns the groups and ``overall``."""
    keep = results[results["config"] == config]
    per = keep.groupby(["group", "context", "series"])[["mase", "smse"]].mean().reset_index()
    groups = [g for g in GROUPS if g in set(per["group"])]
    mase = per.pivot_table(index="context", columns="group", values="mase", aggfunc=gmean)[groups]
    smse = per.pivot_table(index="context", columns="group", values="smse", aggfunc="mean")[groups]
    mase["overall"] = np.exp(np.log(mase[groups]).mean(axis=1))
    smse["overall"] = smse[groups].mean(axis=1)
    return mase, smse


def pick(mase: pd.DataFrame) -> tuple[int, bool, float]:
    """(the pick, whether it ships, its overall MASE / the current default's) by the stated rule."""
    overall = mase["overall"]
    best = overall.min()
    chosen = int(max(n for n, v in overall.items() if v <= best * (1 + MIN_WITHIN)))
    ratio = float(overall[chosen] / overall[CURRENT])
    return chosen, ratio <= 1 - MIN_GAIN, ratio


def bootstrap_ratio(results: pd.DataFrame, config: str, chosen: int, n_boot: int = 1000) -> tuple[float, float]:
    """5% and 95% quantiles of overall MASE(chosen) / overall MASE(CURRENT) over series resampled within each
    group (paired: the same series for both), for how clear the margin is; not part of the rule."""
    keep = results[(results["config"] == config) & results["context"].isin([chosen, CURRENT])]
    per = keep.groupby(["group", "series", "context"])["mase"].mean().unstack("context")
    logs = {g: np.log(part[[chosen, CURRENT]].to_numpy()) for g, part in per.groupby(level="group")}
    rng = np.random.default_rng(0)
    ratios = []
    for _ in range(n_boot):
        diffs = []
        for values in logs.values():
            sample = values[rng.integers(0, len(values), len(values))]
            diffs.append(sample[:, 0].mean() - sample[:, 1].mean())
        ratios.append(np.exp(np.mean(diffs)))
    return float(np.quantile(ratios, 0.05)), float(np.quantile(ratios, 0.95))


def table(frame: pd.DataFrame, digits: int, bold: int | None = None) -> str:
    cols = list(frame.columns)
    lines = ["| context (rows) | " + " | ".join(cols) + " |", "|---:|" + "---:|" * len(cols)]
    for n, row in frame.iterrows():
        cells = [f"{row[c]:.{digits}f}" for c in cols]
        label = f"**{n}**" if n == bold else str(n)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(args, results: pd.DataFrame) -> str:
    from tsforecast.bench import machine_description

    _, config = load_model()
    mase, smse = summarize(results, config)
    chosen, ships, ratio = pick(mase)
    keep = results[results["config"] == config]
    counts = keep[keep["context"] == CURRENT].groupby("group").agg(series=("series", "nunique"),
                                                                    windows=("series", "size"))
    seconds = keep.groupby("context")["seconds"].mean()
    relative = mase.div(mase.loc[CURRENT], axis=1)
    check = (args.out / "context.check.txt")
    doc = __doc__.split("\n\n    nice")[0].split("\n", 2)[2].strip()
    verdict = (f"**Picked: {chosen} rows** ({chosen // 8} tokens): overall geometric-mean MASE "
               f"{mase.loc[chosen, 'overall']:.3f} vs {mase.loc[CURRENT, 'overall']:.3f} at {CURRENT} rows "
               f"({(1 - ratio) * 100:.1f}% lower), so it "
               + ("ships as the default context (`context` in config.json)." if ships else
                  f"does not clear the {MIN_GAIN:.0%} margin: the default stays {CURRENT}."))
    parts = [
        "# Zero-shot context length of the shipped adapter, chosen on validation data",
        doc,
        "Command (resumable):\n\n```bash\nnice -n 5 env OMP_NUM_THREADS=1 .venv/bin/python "
        "benchmarks/scripts/pretrained_context.py\n```",
        f"Machine: {machine_description()} (shared with another job); OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS')}; pandas {pd.__version__}, numpy {np.__version__}. Adapter and "
        f"protocol: `{config}`. Mean seconds per window and candidate (batched predict): "
        + ", ".join(f"{n}: {s * 1e3:.1f} ms" for n, s in seconds.items()) + ".",
        "Windows: " + ", ".join(f"{g} {int(r['series'])} series / {int(r['windows'])} windows"
                                for g, r in counts.reindex([g for g in GROUPS if g in counts.index]).iterrows())
        + ".",
        "## MASE, geometric mean over series (overall: geometric mean of the group figures)",
        table(mase, 3, bold=chosen),
        f"## The same, relative to the current default ({CURRENT} rows)",
        table(relative, 3, bold=chosen),
        "## Scaled MSE (MSE / variance of the history), mean over series (overall: mean of the groups)",
        table(smse, 3, bold=chosen),
        "## Rule and pick",
        f"Rule (fixed before the run): the longest candidate whose overall MASE is within {MIN_WITHIN:.0%} of the "
        f"lowest; it ships if its overall MASE is at least {MIN_GAIN:.0%} below the {CURRENT}-row default's.",
        verdict,
    ]
    if chosen != CURRENT:
        groups = [g for g in relative.columns if g != "overall"]
        worse = [f"{g} ({(relative.loc[chosen, g] - 1) * 100:+.1f}%)" for g in groups if relative.loc[chosen, g] > 1]
        better = [f"{g} ({(relative.loc[chosen, g] - 1) * 100:+.1f}%)" for g in groups if relative.loc[chosen, g] <= 1]
        lowest = smse["overall"].idxmin()
        parts.append(f"Per group, MASE at {chosen} rows vs {CURRENT}: lower on {', '.join(better) or 'none'}; "
                     f"higher on {', '.join(worse) or 'none'}. Scaled MSE overall: {smse.loc[chosen, 'overall']:.3f} vs "
                     f"{smse.loc[CURRENT, 'overall']:.3f} (lowest: {lowest} rows, {smse.loc[lowest, 'overall']:.3f}).")
        low, high = bootstrap_ratio(results, config, chosen)
        parts.append(f"How clear the margin is (not part of the rule): overall MASE {chosen} / {CURRENT} rows = "
                     f"{ratio:.3f}, 90% bootstrap interval {low:.3f}-{high:.3f} (series resampled within each group, "
                     "paired, 1000 draws).")
    if check.exists():
        parts.append("Check that a `context` setting is the same as giving only the last N rows (`--check`, a few "
                     "windows per group and candidate): largest absolute difference "
                     f"{max(float(line.split(': ')[1]) for line in check.read_text().splitlines()[1:]):.3g}.")
    text = "\n\n".join(parts) + "\n"
    write_atomic(args.out / "context.md", text)
    return text


def main(argv=None) -> None:
    args = parse_args(argv)
    results = pd.read_csv(args.out / "context.csv") if args.report_only else run(args)
    print(report(args, results))


if __name__ == "__main__":
    main()
