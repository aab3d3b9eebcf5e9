"""Coverage, width and Winkler score of split vs adaptive conformal intervals on the protocol's test split.

Each run: fit on the protocol's train split with val_df = the validation split (the family's reference
settings for the dataset/horizon, under --max-epochs for the neural models), calibrate on the
validation windows (what fit does), score every test window with ``evaluate(test, level=[80, 95])``
for interval_method="split" and "adaptive" (one fit serves both: the calibration does not depend on
the method). Width and Winkler score are in the data's units (mean over channels). Rows are written
to OUT/coverage.csv (rewritten atomically after each run; a rerun skips finished runs).

``--tune``: how ``tsforecast.intervals.ADAPTIVE_STEPS`` (and ``ADAPTIVE_RATE``, ``ADAPTIVE_FEEDBACK``) were
chosen, on VALIDATION data only: AR is fitted on the training split minus its last VAL rows (VAL = the
validation split's length), calibrated on those last rows, and the adaptive intervals are scored on the
validation split for each candidate: one tracker at each step size of STEPS (both feedback rules), and
the trackers at all of EXPERT_STEPS combined by exponential weights at each rate of RATES; written to
OUT/tuning.csv. The test split is never read.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/scripts/interval_coverage.py --tune --models ar
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/scripts/interval_coverage.py --models ar \\
        --datasets ETTh1,ETTh2,ETTm1,ETTm2,Weather
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/scripts/interval_coverage.py --models itransformer,smamba \\
        --datasets ETTh1,ETTh2,ETTm2 --max-epochs 2
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from tsforecast import Forecaster, intervals, protocol_split
from tsforecast.bench import machine_description
from tsforecast.io import write_atomic
from tsforecast.models.registry import build_spec, get_model_class

LEVELS = [80, 95]
STEPS = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2]
FEEDBACKS = ["step", "window"]
EXPERT_STEPS = (0.0025, 0.005, 0.01, 0.02, 0.04, 0.08)
RATES = [0.3, 1.0, 3.0]
FREQ = {"Weather": "10min"}  # the Weather file has a few duplicate/missing timestamps


def forecaster_for(model: str, dataset: str, horizon: int, lookback: int, max_epochs: int | None, seed: int):
    reference = get_model_class(model).reference_config(dataset, horizon)
    spec = build_spec(model, reference.get("params", {}))
    training = dict(reference.get("training", {}))
    if max_epochs is not None and spec.fit_mode == "gradient":
        training["max_epochs"] = max_epochs
    return Forecaster(model=spec, lookback=lookback, horizon=horizon, random_state=seed, freq=FREQ.get(dataset),
                      time_features="h", **training), training


def append(path: Path, row: dict) -> None:
    rows = pd.read_csv(path) if path.exists() else pd.DataFrame()
    rows = pd.concat([rows, pd.DataFrame([row])], ignore_index=True)
    write_atomic(path, rows.to_csv(index=False, float_format="%.6g"))


def done(path: Path, keys: dict) -> bool:
    if not path.exists():
        return False
    rows = pd.read_csv(path)
    mask = pd.Series(True, index=rows.index)
    for key, value in keys.items():
        mask &= rows[key].astype(str) == str(value)
    return bool(mask.any())


def scores_row(scores: dict) -> dict:
    return {f"{m}_{lv}": scores[f"{m}_{lv}"] for lv in LEVELS for m in ("coverage", "width", "winkler")}


def run(model, dataset, args, out: Path) -> None:
    keys = {"model": model, "dataset": dataset, "horizon": args.horizon, "max_epochs": args.max_epochs or ""}
    if done(out, keys):
        return
    split = protocol_split(dataset, lookback=args.lookback)
    forecaster, training = forecaster_for(model, dataset, args.horizon, args.lookback, args.max_epochs, args.seed)
    # A fitted model is kept (--model-cache), so rescoring with other interval settings does not refit.
    cached = None if args.model_cache is None else \
        Path(args.model_cache) / f"{model}_{dataset}_H{args.horizon}_L{args.lookback}_e{args.max_epochs}_s{args.seed}"
    started = time.perf_counter()
    if cached is not None and cached.exists():
        forecaster = Forecaster.load(cached)
    else:
        forecaster.fit(split.train, val_df=split.val)
        if cached is not None:
            forecaster.save(cached)
    fit_seconds = forecaster.fit_seconds_
    for method in ("split", "adaptive"):
        forecaster.set_params(interval_method=method)
        started = time.perf_counter()
        scores = forecaster.evaluate(split.test, level=LEVELS)
        row = {**keys, "method": method, "mse": scores["mse"], "mae": scores["mae"],
               "n_test_windows": scores["n_windows"],
               "n_calibration_windows": len(forecaster.intervals_.scores[args.horizon]), **scores_row(scores),
               **(adaptive_settings() if method == "adaptive" else {}),
               "epochs": forecaster.n_epochs_, "fit_seconds": round(fit_seconds, 1),
               "evaluate_seconds": round(time.perf_counter() - started, 1), "training": json.dumps(training),
               "machine": machine_description()}
        append(out, row)
        print(model, dataset, method, {k: round(v, 2) for k, v in scores_row(scores).items()}, flush=True)


def adaptive_settings() -> dict:
    """The adaptive settings in force (tsforecast.intervals), as result columns."""
    steps = intervals.ADAPTIVE_STEPS
    return {"adaptive_feedback": intervals.ADAPTIVE_FEEDBACK,
            "adaptive_step": " ".join(f"{k:g}" for k in steps),
            "adaptive_rate": intervals.ADAPTIVE_RATE if len(steps) > 1 else ""}


def tune(dataset, args, out: Path) -> None:
    """Fit on train minus its tail, calibrate on the tail, score adaptive intervals on validation."""
    if done(out, {"dataset": dataset}):
        return
    split = protocol_split(dataset, lookback=args.lookback)
    n_val = len(split.val) - args.lookback
    head, tail = split.train.iloc[:-n_val], split.train.iloc[-n_val - args.lookback:]
    forecaster, _ = forecaster_for("ar", dataset, args.horizon, args.lookback, None, args.seed)
    forecaster.fit(head, val_df=tail)
    candidates = [("split", "", (), "")] + \
        [("adaptive", feedback, (step,), "") for feedback in FEEDBACKS for step in STEPS] + \
        [("adaptive", "step", EXPERT_STEPS, rate) for rate in RATES]
    for method, feedback, steps, rate in candidates:
        forecaster.set_params(interval_method=method)
        if method == "adaptive":
            intervals.ADAPTIVE_FEEDBACK, intervals.ADAPTIVE_STEPS = feedback, steps
            intervals.ADAPTIVE_RATE = rate or intervals.ADAPTIVE_RATE
        scores = forecaster.evaluate(split.val, level=LEVELS)
        settings = adaptive_settings() if method == "adaptive" else \
            {"adaptive_feedback": "", "adaptive_step": "", "adaptive_rate": ""}
        append(out, {"dataset": dataset, "model": "ar", "method": method, **settings, **scores_row(scores)})
        print(dataset, method, settings, {k: round(v, 2) for k, v in scores_row(scores).items()}, flush=True)


def choose(path: Path, tolerance: float = 3.0) -> pd.Series:
    """The rule that picked ADAPTIVE_FEEDBACK, ADAPTIVE_STEPS and ADAPTIVE_RATE from the validation figures: among the
    settings whose coverage is within +-tolerance points of nominal on every dataset and level, the one
    with the lowest mean Winkler score relative to split conformal's (a ratio, so no dataset's units
    dominate)."""
    rows = pd.read_csv(path, keep_default_na=False)
    split = rows[rows.method == "split"].set_index("dataset")
    adaptive = rows[rows.method == "adaptive"].copy()
    off = pd.concat([(adaptive[f"coverage_{lv}"] - lv).abs() for lv in LEVELS], axis=1).max(axis=1)
    ratio = sum(adaptive[f"winkler_{lv}"].to_numpy() / split.loc[adaptive.dataset, f"winkler_{lv}"].to_numpy()
                for lv in LEVELS) / len(LEVELS)
    adaptive = adaptive.assign(max_off=off, winkler_ratio=ratio)
    width = sum(adaptive[f"width_{lv}"].to_numpy() / split.loc[adaptive.dataset, f"width_{lv}"].to_numpy()
                for lv in LEVELS) / len(LEVELS)
    adaptive = adaptive.assign(width_ratio=width)
    table = adaptive.groupby(["adaptive_feedback", "adaptive_step", "adaptive_rate"])[
        ["max_off", "winkler_ratio", "width_ratio"]].agg({"max_off": "max", "winkler_ratio": "mean", "width_ratio": "mean"})
    print(table.round(3).to_string())
    ok = table[table.max_off <= tolerance]
    best = ok.winkler_ratio.idxmin()
    print("chosen (feedback, steps, rate):", best)
    return table


def table(path: Path) -> str:
    """The markdown table of benchmarks/README.md: per model and dataset, split vs adaptive; with an
    ``oracle.csv`` beside ``path`` (interval_oracle.py) the oracle static width too."""
    rows = pd.read_csv(path, keep_default_na=False)
    oracle_path = Path(path).parent / "oracle.csv"
    oracle = pd.read_csv(oracle_path).set_index(["model", "dataset"]) if oracle_path.exists() else None
    datasets = ["ETTh1", "ETTh2", "ETTm1", "ETTm2", "Weather"]
    rows = rows.assign(_d=rows.dataset.map({d: i for i, d in enumerate(datasets)})).sort_values(
        ["model", "_d"], key=lambda c: c.map({"ar": 0, "itransformer": 1, "smamba": 2}) if c.name == "model" else c,
        kind="stable")
    width_head = "width {lv} split / adaptive" + (" (oracle)" if oracle is not None else "")
    lines = ["| model | dataset | epochs | cov 80 split / adaptive | " + width_head.format(lv=80) + " | Winkler 80 | "
             "cov 95 split / adaptive | " + width_head.format(lv=95) + " | Winkler 95 |", "|---|---|---|---|---|---|---|---|---|"]
    for (model, dataset), group in rows.groupby(["model", "dataset"], sort=False):
        by = group.set_index("method")
        cells = [model, dataset, str(by.loc["split", "epochs"])]
        for lv in LEVELS:
            for metric, digits in (("coverage", 1), ("width", 2), ("winkler", 2)):
                a, b = by.loc["split", f"{metric}_{lv}"], by.loc["adaptive", f"{metric}_{lv}"]
                cell = f"{a:.{digits}f} / **{b:.{digits}f}**" if metric == "coverage" else f"{a:.{digits}f} / {b:.{digits}f}"
                if metric == "width" and oracle is not None and (model, dataset) in oracle.index:
                    cell += f" ({oracle.loc[(model, dataset), f'oracle_width_{lv}']:.{digits}f})"
                cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="ar")
    parser.add_argument("--datasets", default="ETTh1,ETTh2,ETTm1,ETTm2,Weather")
    parser.add_argument("--horizon", type=int, default=96)
    parser.add_argument("--lookback", type=int, default=96)
    parser.add_argument("--max-epochs", type=int, default=None, help="CPU budget for the neural models")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tune", action="store_true", help="choose the adaptive step on validation data")
    parser.add_argument("--table", nargs="*", help="print the markdown table of these coverage.csv files and exit")
    parser.add_argument("--out", default="benchmarks/results/intervals")
    parser.add_argument("--model-cache", default=None, help="folder to keep fitted models in (reused by reruns)")
    args = parser.parse_args()
    if args.table is not None:
        parts = [pd.read_csv(p, keep_default_na=False) for p in args.table or [Path(args.out) / "coverage.csv"]]
        merged = Path(args.out) / "coverage.csv"
        if args.table:  # parts run side by side: merged into OUT/coverage.csv
            write_atomic(merged, pd.concat(parts, ignore_index=True).to_csv(index=False, float_format="%.6g"))
        print(table(merged))
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for dataset in args.datasets.split(","):
        if args.tune:
            tune(dataset, args, out / "tuning.csv")
            continue
        for model in args.models.split(","):
            run(model, dataset, args, out / "coverage.csv")
    if args.tune:
        choose(out / "tuning.csv")


if __name__ == "__main__":
    main()
