"""Benchmark sweeps on the LTSF protocol: models x datasets x horizons x seeds, resumable, with a report.

Every run uses the identical protocol: the dataset's standard split (lookback-aware; a CSV of the
user's own is split chronologically 70/10/20, see :func:`resolve_dataset`), the scaler fitted on the
training split, the same training loop, and MSE/MAE over *all* test windows on the
scaled data. Results go to ``<out>/results.csv`` (one row per run, rewritten atomically after each
run, so a killed sweep loses at most the run in progress and resumes by skipping finished runs) and
``<out>/report.md`` (each figure next to the published one).
"""
from __future__ import annotations

import functools
import json
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from .data.datasets import DATASETS, dataset_info, published_results, read_csv_series
from .data.splits import Split, protocol_split
from .forecaster import Forecaster
from .models.registry import build_spec, get_model_class
from .io import write_atomic
from .validation import check_positive_int

RESULTS_FILE = "results.csv"
REPORT_FILE = "report.md"
COMMANDS_FILE = "commands.txt"
KEY = ["model", "dataset", "horizon", "lookback", "seed", "params"]
COLUMNS = KEY + [
    "mse", "mae", "n_test_windows", "val_mse", "train_seconds", "epoch_seconds", "epoch_val_seconds",
    "predict_seconds", "epochs",
    "best_epoch", "device", "time_features", "settings", "machine", "torch_version", "tsforecast_version", "git_commit",
    "finished_at",
]
#: published baselines shown beside every row, for context (same protocol, lookback 96)
REFERENCE_BASELINES = [("DLinear", "96"), ("Repeat", "1")]
#: calendar features as the reference scripts compute them: hourly set for every dataset (protocol.md §5)
PROTOCOL_TIME_FEATURES = "h"


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    desc = f"{cpu}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"
    if torch.cuda.is_available():
        desc += f", {torch.cuda.get_device_name(0)}"
    return desc


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def read_results(out: Path) -> pd.DataFrame:
    path = Path(out) / RESULTS_FILE
    if not path.is_file():
        return pd.DataFrame(columns=COLUMNS)
    return pd.read_csv(path, dtype={"params": str}, keep_default_na=False, na_values=[""])


def _run_key(model: str, dataset: str, horizon: int, lookback: int, seed: int, params: str) -> tuple:
    return (model, dataset, int(horizon), int(lookback), int(seed), params)


@functools.lru_cache(maxsize=4)
def _protocol_split(dataset: str, lookback: int):
    """Parsed once per sweep, not once per run (fitting never modifies its input)."""
    return protocol_split(dataset, lookback)


# ---------------------------------------------------------------------- a user's CSV as a dataset
#: the split of a user's CSV: the protocol's rule for every dataset but ETT (70% / 10% / 20%, in time order)
USER_SPLIT_SCHEME = "ratio"


@dataclass(frozen=True)
class BenchData:
    """What a run needs to know about its dataset: the name its rows record, the split and how to fit it."""
    name: str
    split: Split
    freq: str | None  # None: inferred from the timestamps
    time_features: str


def is_user_csv(dataset: str) -> bool:
    """True for a CSV file of the user's own (a name ending in .csv / .csv.gz, or an existing file); a
    bundled dataset's name always means the bundled dataset."""
    text = str(dataset)
    if text.lower() in {name.lower() for name in DATASETS}:
        return False
    return text.lower().endswith((".csv", ".csv.gz")) or Path(text).is_file()


def user_dataset_name(path: str | Path) -> str:
    """The name a user's CSV is recorded under: its file name without .csv / .csv.gz."""
    name = Path(path).name
    for suffix in (".gz", ".csv"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


def user_rows_needed(lookback: int, horizon: int) -> int:
    """The fewest rows whose 70/10/20 split leaves lookback + horizon training rows and at least one full
    horizon of validation and of test targets."""
    n = lookback + horizon
    while not (int(0.7 * n) >= lookback + horizon and int(0.2 * n) >= horizon
               and n - int(0.2 * n) - int(0.7 * n) >= horizon):
        n += 1
    return n


def _check_user_rows(name: str, n_rows: int, lookback: int, horizon: int) -> None:
    needed = user_rows_needed(lookback, horizon)
    if n_rows < needed:
        raise ValueError(
            f"dataset {name!r} has {n_rows} rows; its 70/10/20 split with lookback {lookback} and horizon {horizon} "
            f"needs at least {needed} rows (training >= lookback + horizon, validation and test >= horizon each); "
            "lower --lookback or --horizons, or give a longer series")


@functools.lru_cache(maxsize=4)
def _read_user_csv(path: str, stamp: tuple, date_column: str | None, dayfirst: bool) -> pd.DataFrame:
    """Read once per sweep (``stamp``: the file's full path, mtime and size, so an edited file is read again)."""
    return read_csv_series(path, date_column=date_column, dayfirst=dayfirst)


def resolve_dataset(dataset: str, lookback: int, horizon: int = 1, date_column: str | None = None,
                    dayfirst: bool = False) -> BenchData:
    """A bundled dataset: the protocol's split, step and hourly calendar features (as the reference scripts).
    A user's CSV (read as ``tsforecast forecast --csv`` reads it): the chronological 70/10/20 split, the
    step inferred from the timestamps, calendar features from that step; too few rows for ``lookback``
    and ``horizon`` is a ValueError naming the rows needed."""
    if not is_user_csv(dataset):
        info = dataset_info(dataset)
        return BenchData(info.name, _protocol_split(info.name, lookback), info.freq, PROTOCOL_TIME_FEATURES)
    path = Path(dataset)
    if not path.is_file():
        read_csv_series(path)  # raises the reader's own message: no such file, a folder
    stat = path.stat()
    frame = _read_user_csv(str(path), (str(path.resolve()), stat.st_mtime_ns, stat.st_size), date_column, dayfirst)
    name = user_dataset_name(path)
    _check_user_rows(name, len(frame), lookback, horizon)
    return BenchData(name, protocol_split(frame, lookback, scheme=USER_SPLIT_SCHEME), None, "auto")


def run_one(model: str, dataset: str, horizon: int, lookback: int, seed: int, model_params: dict,
            training: dict, device: str = "auto", verbose: int = 0, fitted: dict | None = None,
            date_column: str | None = None, dayfirst: bool = False) -> dict:
    """Fit on the protocol's train split (early stopping on val), score every test window.

    ``dataset``: a bundled name or a CSV file of the user's own (``date_column``, ``dayfirst``: how
    to read it), see :func:`resolve_dataset`.
    ``fitted``: a dict kept across the runs of a sweep; models whose spec says
    ``one_model_for_all_horizons`` (their training does not depend on the horizon) are fitted once
    per dataset/seed/settings and scored at every horizon by rollout, as their papers do.
    """
    data = resolve_dataset(dataset, lookback, horizon, date_column, dayfirst)
    split = data.split
    # The family's reference settings for this dataset/horizon, under what the user set explicitly.
    reference = get_model_class(model).reference_config(data.name, horizon)
    spec = build_spec(model, {**reference.get("params", {}), **model_params})
    training = {**reference.get("training", {}), **training}
    shared_fit = fitted is not None and spec.one_model_for_all_horizons
    key = (model, data.name, lookback, seed, repr(spec.get_params()), repr(sorted(training.items())))
    if shared_fit and key in fitted:
        forecaster = fitted[key]
    else:
        forecaster = Forecaster(model=spec, lookback=lookback, horizon=horizon, random_state=seed, freq=data.freq,
                                time_features=data.time_features, device=device, verbose=verbose, **training)
        forecaster.fit(split.train, val_df=split.val)
        if shared_fit:
            fitted.clear()  # keep one fitted model alive at a time
            fitted[key] = forecaster
    started = time.perf_counter()
    scores = forecaster.evaluate(split.test, horizon=horizon)
    predict_seconds = time.perf_counter() - started
    result = forecaster.training_
    return {
        "mse": scores["mse"],
        "mae": scores["mae"],
        "n_test_windows": scores["n_windows"],
        "val_mse": min(result.val_loss) if result.val_loss else np.nan,
        "train_seconds": forecaster.fit_seconds_,
        "epoch_seconds": float(np.mean(result.epoch_seconds)) if result.epoch_seconds else np.nan,
        "epoch_val_seconds": float(np.mean(result.val_seconds)) if result.val_seconds else np.nan,
        "predict_seconds": predict_seconds,
        "epochs": result.epochs,
        "best_epoch": result.best_epoch,
        "device": str(forecaster.device_),
        "time_features": forecaster.time_feature_freq_ or "",
        # every setting the run actually used, so a row can be reproduced without the code's defaults
        "settings": json.dumps({"model": _jsonable(spec.get_params()),
                                "training": _jsonable(vars(forecaster._training_config(spec)))}, sort_keys=True),
    }


def _jsonable(params: dict) -> dict:
    return {k: v if isinstance(v, (int, float, str, bool, type(None), list)) else repr(v) for k, v in params.items()}


def run_sweep(models: list[str], datasets: list[str], horizons: list[int], lookback: int, seeds: list[int],
              out: str | Path, model_params: dict | None = None, training: dict | None = None,
              device: str = "auto", verbose: int = 0, command: str | None = None,
              log: Callable[[str], None] = print, date_column: str | None = None,
              dayfirst: bool = False) -> pd.DataFrame:
    """Run every missing combination; returns all results in ``out`` (old and new).

    ``datasets``: bundled names and/or CSV files of the user's own (read with ``date_column`` and
    ``dayfirst``, split 70/10/20, recorded under the file's name; see :func:`resolve_dataset`).
    """
    from . import __version__

    out = Path(out)
    model_params, training = dict(model_params or {}), dict(training or {})
    # Fail fast, before anything is written: names, sizes and hyperparameters.
    models = [build_spec(m, model_params).name for m in models]
    for name, values in (("horizon", horizons), ("lookback", [lookback]), ("seed", seeds)):
        if not values:
            raise ValueError(f"no {name} given")
        for value in values:
            if name == "seed":
                if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                    raise ValueError(f"seeds must be non-negative integers, got {value!r}")
            else:
                check_positive_int(name, value)
    sources = _dataset_sources(datasets, lookback, max(horizons), date_column, dayfirst)
    datasets = [name for name, _ in sources]
    sources = dict(sources)
    params_json = json.dumps({**model_params, **{f"train.{k}": v for k, v in training.items()}}, sort_keys=True)
    if command:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        with open(_ensure_dir(out) / COMMANDS_FILE, "a") as handle:
            handle.write(f"# {stamp} on {machine_description()}\n{command}\n")
    results = read_results(out)
    done = {_run_key(*(r[k] for k in KEY)) for r in results.to_dict("records")}
    plan = [(m, d, h, s) for d in datasets for m in models for h in horizons for s in seeds
            if _run_key(m, d, h, lookback, s, params_json) not in done]
    log(f"{len(plan)} runs to do ({len(done)} already in {out / RESULTS_FILE})")
    fitted: dict = {}
    for i, (model, dataset, horizon, seed) in enumerate(plan, 1):
        row = {"model": model, "dataset": dataset, "horizon": horizon, "lookback": lookback, "seed": seed,
               "params": params_json}
        row.update(run_one(model, sources[dataset], horizon, lookback, seed, model_params, training, device, verbose,
                           fitted, date_column=date_column, dayfirst=dayfirst))
        row.update({"machine": machine_description(), "torch_version": torch.__version__,
                    "tsforecast_version": __version__, "git_commit": git_commit(),
                    "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        results = pd.concat([results, pd.DataFrame([row])], ignore_index=True)[COLUMNS] if len(results) else \
            pd.DataFrame([row])[COLUMNS]
        write_atomic(out / RESULTS_FILE, results.to_csv(index=False, float_format="%.6g"))
        write_atomic(out / REPORT_FILE, render_report(results, out))
        log(f"[{i}/{len(plan)}] {model} {dataset} H={horizon} seed={seed}: mse={row['mse']:.4f} mae={row['mae']:.4f} "
            f"({row['epochs']} epochs, fit {row['train_seconds']:.1f}s, test {row['predict_seconds']:.1f}s)")
    if not plan and len(results):
        write_atomic(out / REPORT_FILE, render_report(results, out))
    return results


def _dataset_sources(datasets: list[str], lookback: int, horizon: int, date_column, dayfirst) -> list[tuple]:
    """(recorded name, what to read) per dataset; a user's CSV is read and size-checked here, before any run."""
    sources, seen = [], {}
    bundled = {name.lower() for name in DATASETS}
    for dataset in datasets:
        if is_user_csv(dataset):
            name = resolve_dataset(dataset, lookback, horizon, date_column, dayfirst).name
            if name.lower() in bundled:
                raise ValueError(f"{dataset}: results would be recorded under the bundled dataset's name {name!r} "
                                 "and compared with its published figures; rename the file")
        else:
            name = dataset = dataset_info(dataset).name
        if seen.setdefault(name, dataset) != dataset:
            raise ValueError(f"{seen[name]} and {dataset} would both be recorded as dataset {name!r}; rename one")
        sources.append((name, dataset))
    return sources


def merge_results(sources: list[str | Path], out: str | Path) -> pd.DataFrame:
    """Merge results folders (parallel parts of one sweep) into ``out``: rows of runs already in ``out``
    or in an earlier source are kept once (the first seen wins), commands are appended."""
    out = Path(out)
    frames, commands = [read_results(out)], []
    for source in sources:
        source = Path(source)
        if not (source / RESULTS_FILE).is_file():
            raise FileNotFoundError(f"no {RESULTS_FILE} in {source}")
        if source.resolve() == out.resolve():
            continue
        frames.append(read_results(source))
        if (source / COMMANDS_FILE).is_file():
            commands.append((source / COMMANDS_FILE).read_text())
    merged = pd.concat([f for f in frames if len(f)], ignore_index=True)
    merged = merged.drop_duplicates(subset=KEY, keep="first").reindex(columns=COLUMNS)
    _ensure_dir(out)
    # A source merged again (a resumed part) adds only the commands not recorded yet.
    recorded = (out / COMMANDS_FILE).read_text() if (out / COMMANDS_FILE).is_file() else ""
    new_commands = [text for text in dict.fromkeys(commands) if text not in recorded]
    if new_commands:
        with open(out / COMMANDS_FILE, "a") as handle:
            handle.write("".join(new_commands))
    write_atomic(out / RESULTS_FILE, merged.to_csv(index=False, float_format="%.6g"))
    write_atomic(out / REPORT_FILE, render_report(merged, out))
    return merged


def _ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---------------------------------------------------------------------- report
def _published_lookup() -> dict:
    table = published_results()
    return {(r.model, r.dataset, str(r.horizon), str(r.lookback)): (float(r.mse), float(r.mae))
            for r in table.itertuples()}


def _published_for(lookup: dict, name: str | None, dataset: str, horizon: int, lookback: int):
    """The published (mse, mae, lookback) of ``name``: same lookback if published, else any."""
    if name is None:
        return None
    exact = lookup.get((name, dataset, str(horizon), str(lookback)))
    if exact:
        return (*exact, lookback)
    for (model, ds, h, lb), value in lookup.items():
        if model == name and ds == dataset and h == str(horizon):
            return (*value, int(lb))
    return None


def _fmt(x, digits=3):
    return "" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}f}"


def render_report(results: pd.DataFrame, out: Path | None = None) -> str:
    lookup = _published_lookup()
    lines = ["# Benchmark report", ""]
    lines += [
        "Protocol: Time-Series-Library LTSF splits (ETT 12/4/4 months, Weather 70/10/20), StandardScaler fitted on",
        "the train split, MSE/MAE on the scaled data over **every** test window (no `drop_last`), early stopping on",
        "the validation split, hourly calendar features as in the reference scripts. Figures are means over seeds.",
        "`ratio` = ours / published (below 1 is better). Published figures and sources: `datasets/published_results.csv`.",
        "",
    ]
    own = sorted(set(results["dataset"]) - set(DATASETS)) if not results.empty else []
    if own:
        lines += [f"Your own data ({', '.join(own)}): chronological 70/10/20 split, calendar features from the data's "
                  "own step, no published figures.", ""]
    if out is not None and (Path(out) / COMMANDS_FILE).is_file():
        lines += ["Commands that produced these results (with the machine they ran on):", "", "```"]
        lines += (Path(out) / COMMANDS_FILE).read_text().strip().splitlines()
        lines += ["```", ""]
    if results.empty:
        return "\n".join(lines + ["No results yet."]) + "\n"
    grouped = (results.groupby(["dataset", "model", "params", "horizon", "lookback"], sort=False)
               .agg(mse=("mse", "mean"), mae=("mae", "mean"), mse_std=("mse", "std"), seeds=("seed", "nunique"),
                    windows=("n_test_windows", "first"), epochs=("epochs", "mean"),
                    train_s=("train_seconds", "mean"), epoch_s=("epoch_seconds", "mean"),
                    predict_s=("predict_seconds", "mean"), device=("device", "first"))
               .reset_index()
               .sort_values("dataset", kind="stable"))  # merged sweeps list datasets in any order
    ref_names = " | ".join(f"{name} (L={lb}) MSE | ratio" for name, lb in REFERENCE_BASELINES)
    for dataset, table in grouped.groupby("dataset", sort=False):
        table = table.sort_values(["model", "params", "horizon", "lookback"], kind="stable")
        lines += [f"## {dataset}", ""]
        lines += [f"| model | H | L | MSE | MAE | seeds | published MSE / MAE (L) | ratio MSE | ratio MAE | {ref_names} "
                  "| test windows | epochs | fit s | s/epoch | test s | device |"]
        lines += ["|" + "---|" * (15 + 2 * len(REFERENCE_BASELINES))]
        for r in table.itertuples():
            spec = get_model_class(r.model)
            label = r.model if r.params in ("{}", "") else f"{r.model} {r.params}"
            pub = _published_for(lookup, spec.published_name, dataset, r.horizon, r.lookback)
            pub_cells = (f"{pub[0]:.3f} / {pub[1]:.3f} ({pub[2]})", _fmt(r.mse / pub[0]), _fmt(r.mae / pub[1])) \
                if pub else ("—", "", "")
            ref_cells = []
            for name, lb in REFERENCE_BASELINES:
                ref = lookup.get((name, dataset, str(r.horizon), lb))
                ref_cells += [_fmt(ref[0]), _fmt(r.mse / ref[0])] if ref else ["—", ""]
            mse = _fmt(r.mse, 4) + (f" ± {r.mse_std:.4f}" if r.seeds > 1 else "")
            lines.append(
                f"| {label} | {r.horizon} | {r.lookback} | {mse} | {_fmt(r.mae, 4)} | {r.seeds} | {' | '.join(pub_cells)} | "
                f"{' | '.join(ref_cells)} | {r.windows} | {_fmt(r.epochs, 1)} | {_fmt(r.train_s, 1)} | "
                f"{_fmt(r.epoch_s, 2)} | {_fmt(r.predict_s, 2)} | {r.device} |"
            )
        lines.append("")
    averages = grouped.groupby(["model", "params", "dataset"], sort=False).agg(
        mse=("mse", "mean"), mae=("mae", "mean"), horizons=("horizon", "nunique")).reset_index()
    ref_head = " | ".join(f"{name} (L={lb}) avg | ratio" for name, lb in REFERENCE_BASELINES)
    lines += ["## Averages over horizons", "",
              f"| model | dataset | horizons | MSE | MAE | published MSE avg | ratio | {ref_head} |",
              "|" + "---|" * (7 + 2 * len(REFERENCE_BASELINES))]
    for r in averages.itertuples():
        spec = get_model_class(r.model)
        rows = grouped[(grouped.model == r.model) & (grouped.params == r.params) & (grouped.dataset == r.dataset)]
        pubs = [_published_for(lookup, spec.published_name, r.dataset, h, lb) for h, lb in zip(rows.horizon, rows.lookback)]
        pub_avg = float(np.mean([p[0] for p in pubs])) if pubs and all(pubs) else None
        ref_cells = []
        for name, lb in REFERENCE_BASELINES:
            refs = [lookup.get((name, r.dataset, str(h), lb)) for h in rows.horizon]
            ref_avg = float(np.mean([ref[0] for ref in refs])) if refs and all(refs) else None
            ref_cells += [_fmt(ref_avg), _fmt(r.mse / ref_avg) if ref_avg else ""]
        label = r.model if r.params in ("{}", "") else f"{r.model} {r.params}"
        lines.append(f"| {label} | {r.dataset} | {r.horizons} | {_fmt(r.mse, 4)} | {_fmt(r.mae, 4)} | "
                     f"{_fmt(pub_avg)} | {_fmt(r.mse / pub_avg) if pub_avg else ''} | {' | '.join(ref_cells)} |")
    lines += _overall_averages(grouped, lookup)
    return "\n".join(lines) + "\n"


def _overall_averages(grouped: pd.DataFrame, lookup: dict) -> list[str]:
    """Per model, the mean over every dataset x horizon it ran next to the published mean over the same
    runs (the papers' "average over datasets"), for models run on more than one dataset."""
    lines = []
    for (model, params), rows in grouped.groupby(["model", "params"], sort=False):
        if rows.dataset.nunique() < 2:
            continue
        spec = get_model_class(model)
        pubs = [_published_for(lookup, spec.published_name, d, h, lb) for d, h, lb in zip(rows.dataset, rows.horizon, rows.lookback)]
        pub_avg = float(np.mean([p[0] for p in pubs])) if all(pubs) else None
        label = model if params in ("{}", "") else f"{model} {params}"
        lines.append(f"| {label} | {', '.join(rows.dataset.unique())} | {len(rows)} runs | {_fmt(rows.mse.mean(), 4)} | "
                     f"{_fmt(rows.mae.mean(), 4)} | {_fmt(pub_avg)} | {_fmt(rows.mse.mean() / pub_avg) if pub_avg else ''} |")
    if not lines:
        return []
    return ["", "## Averages over datasets and horizons", "",
            "| model | datasets | runs | MSE | MAE | published MSE avg (same runs) | ratio |", "|---|---|---|---|---|---|---|",
            *lines]
