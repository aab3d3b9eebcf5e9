"""Benchmark sweeps on the LTSF protocol: models x datasets x horizons x seeds, resumable, with a report.

Every run uses the identical protocol: the dataset's standard split (lookback-aware; a CSV of the
user's own is split chronologically 70/10/20, see :func:`resolve_dataset`), the scaler fitted on the
training split, the same training loop, and MSE/MAE over *all* test windows on the
scaled data. Results go to ``<out>/results.csv`` (one row per run, rewritten atomically after each
run, so a killed sweep loses at most the run in progress and resumes by skipping finished runs),
``<out>/report.md`` (each figure next to the published one) and, when a sweep finishes, its figures
(``fig_*.png``, see :mod:`tsforecast.figures`; the forecasts they draw are in ``<out>/forecasts/``).

**Resume key.** A recorded row counts as done only if all of these equal the planned run's:
model, dataset, horizon, lookback, seed, the parameters as given (``params``, the report's label),
the *resolved* settings (``settings``: every model hyperparameter after the family's reference
config and the user's params, the resolved training config, and how the data was split and read)
and the code version (``code_version``, see :func:`code_version`). So a changed default, a changed
reference config or changed model code re-runs the affected rows, and nothing else. Rows recorded
before these columns existed (no ``code_version``) never match: nothing records which code produced
them (their ``settings``, where present, cannot tell a fixed bug from an unchanged one), so they are
re-run. A re-run row is appended; the report shows the newest row of each run and counts the
superseded ones, which stay in ``results.csv``.

**Precision.** Each row's ``precision`` column is what the run computed in (``training_.precision``:
``fp32``, ``bf16``, or e.g. ``fp32+llm-bf16`` for fp32 adapters around a bf16-autocast LLM; rows recorded
before the column read back as ``fp32``, which they were). The Forecaster's ``precision`` setting is in
the resume key only when set to something other than the default ``"fp32"`` (so earlier rows still
match); what ``"auto"`` (and an LLM's ``llm_dtype="auto"``) resolves to on the machine is recorded in
the row, not keyed, as the device is: a sweep resumed on another machine keeps its rows.

**Zero-shot transfer** (``train_on``, ``tsforecast bench --train-on ETTh1 --datasets ETTh2,ETTm2``): the
model is fitted on the ``train_on`` dataset's training split (scaled by that split's own scaler, early
stopping on its validation split) and scored, unchanged, on each target dataset's test split (its own
protocol split at the same look-back). The target's test windows are standardized with the scaler of
the *target's* training split, fed to the network as such, and MSE/MAE are on that target-scaled data,
as the LTSF zero-shot papers do (Time-LLM's ``run_pretrain.py``: every dataset's loader fits its
StandardScaler on its own training split; the target's training rows serve for nothing else). Channel
i of the target feeds channel i of the source; the channel counts must match. One fit per source,
seed and settings serves every target (and every horizon where the model's spec allows). Rows record
the source in ``train_dataset`` (empty for an ordinary run; part of the resume key) and the report
labels them ``ETTh1->ETTh2``, the key of the published zero-shot figures in ``published_results.csv``.

**Panels** (``channels_as_series``, ``tsforecast bench --channels-as-series``): each channel of a dataset
becomes a univariate series of a long panel (``unique_id`` = channel, ``ds``, ``y``), split at the
protocol's borders, and ONE global channel-independent model is fitted on all of them. Each series is
scaled on its own training rows, which is the protocol's per-column scaler, so MSE/MAE over the test
windows pooled over series (every series has the same windows) are the wide figures' mean over channels:
comparable with the multivariate rows. A user's long CSV (``id_column``, ``--id-column``) is a panel of its
own series, each split 70/10/20. Rows record ``layout`` (``wide``, ``channels_as_series``, ``long``; part
of the resume key, and of the settings' data description) and the report shows a panel row as its own
variant (``ar [channels as series]``). Wide rows, their settings and keys are as before layouts existed.
"""
from __future__ import annotations

import ast
import copy
import csv
import functools
import hashlib
import io
import json
import os
import platform
import re
import subprocess
import sys
import time
import tokenize
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from .data.datasets import DATASETS, dataset_info, load_dataset, published_results, read_csv_panel, read_csv_series
from .data.splits import Split, protocol_split
from .forecaster import Forecaster
from .models.registry import build_spec, get_model_class
from .io import write_atomic
from .validation import check_positive_int

RESULTS_FILE = "results.csv"
REPORT_FILE = "report.md"
COMMANDS_FILE = "commands.txt"
FORECASTS_DIR = "forecasts"
#: a run as the user asked for it (the report groups and labels by these)
RUN = ["model", "dataset", "horizon", "lookback", "seed", "params", "train_dataset", "layout"]
#: what a recorded row must match to count as done (see the module docstring)
KEY = RUN + ["settings", "code_version"]
COLUMNS = RUN + [
    "mse", "mae", "n_test_windows", "val_mse", "train_seconds", "epoch_seconds", "epoch_val_seconds",
    "predict_seconds", "epochs",
    "best_epoch", "device", "precision", "time_features", "settings", "code_version", "run_id", "shared_fit_with", "loss_curve",
    "machine", "torch_version", "tsforecast_version", "git_commit", "finished_at",
]
#: prefixes of the interval scores a run records when ``--levels`` is given (``coverage_80``, ...)
INTERVAL_SCORES = ("coverage_", "width_", "winkler_")
#: published baselines shown beside every row, for context (same protocol, lookback 96)
REFERENCE_BASELINES = [("DLinear", "96"), ("Repeat", "1")]
#: calendar features as the reference scripts compute them: hourly set for every dataset (protocol.md §5)
PROTOCOL_TIME_FEATURES = "h"
#: test windows per run whose forecast and truth are saved for the report's figures (first, middle, last)
FORECAST_WINDOWS = 3
#: look-back steps saved before each of those windows (context in the figure)
FORECAST_HISTORY = 96


# ---------------------------------------------------------------------- code version
#: the numeric core every run goes through besides its model's own code: the training loop, the
#: rollout, the metrics and the data pipeline from split to windows. Left out on purpose: the
#: Forecaster's input checks and the API glue (``forecaster.py``, ``validation.py``, ``calendar.py``:
#: the settings they resolve are in the key already), the benchmark and report code, the CLI.
SHARED_CODE = ("training.py", "rollout.py", "metrics.py", "data/splits.py", "data/scaling.py", "data/windows.py",
               "data/timefeatures.py")
_PACKAGE_DIR = Path(__file__).resolve().parent


def _code_text(path: Path) -> str:
    """A module's code without comments, docstrings, blank lines and spacing inside lines (indentation is
    kept: it is structure), so editing prose does not change the code version."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines(keepends=True)
    offsets = np.cumsum([0] + [len(line) for line in lines]).tolist()
    drop, previous = [], tokenize.NEWLINE
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    for i, token in enumerate(tokens):
        if token.type == tokenize.COMMENT:
            drop.append((token.start, token.end))
        elif (token.type == tokenize.STRING and previous in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)
              and i + 1 < len(tokens) and tokens[i + 1].type in (tokenize.NEWLINE, tokenize.ENDMARKER)):
            drop.append((token.start, token.end))  # a statement that is only a string: a docstring
        if token.type not in (tokenize.NL, tokenize.COMMENT):
            previous = token.type
    chars = list(source)
    for (row0, col0), (row1, col1) in drop:
        for position in range(offsets[row0 - 1] + col0, offsets[row1 - 1] + col1):
            chars[position] = " "
    kept = []
    for line in "".join(chars).splitlines():
        if line.strip():
            indent = len(line) - len(line.lstrip())
            kept.append(" " * indent + " ".join(line.split()))
    return "\n".join(kept)


def _module_file(name: str) -> Path | None:
    """The source file of module ``tsforecast.x.y`` inside this package (None outside it)."""
    parts = name.split(".")
    if parts[0] != "tsforecast":
        return None
    base = _PACKAGE_DIR.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(path: Path, module: str) -> set[str]:
    """The tsforecast modules ``path`` (module ``module``) imports, relative imports resolved."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # `from . import module`
    return {name for name in found if _module_file(name) is not None}


#: where a model's own code lives; what it imports from elsewhere is the shared core or API glue
MODEL_CODE_PACKAGES = ("tsforecast.models.", "tsforecast.layers.", "tsforecast.llm.")


@functools.lru_cache(maxsize=None)
def model_code_files(model: str) -> tuple[Path, ...]:
    """The model's own code: its spec's module and every module of ``models/``, ``layers/`` and
    ``llm/`` it imports, transitively."""
    spec_class = get_model_class(model)
    start = spec_class.__module__
    first = _module_file(start) or Path(sys.modules[start].__file__)
    seen, todo, files = {start}, [(start, first)], []
    while todo:
        name, path = todo.pop()
        files.append(path)
        for other in sorted(_imported_modules(path, name) - seen):
            if not other.startswith(MODEL_CODE_PACKAGES):
                continue
            seen.add(other)
            todo.append((other, _module_file(other)))
    return tuple(sorted(set(files)))


def _digest(paths) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(_code_text(path).encode())
    return digest.hexdigest()[:8]


@functools.lru_cache(maxsize=None)
def code_version(model: str) -> str:
    """``<package version>+<model code hash>.<shared code hash>``: the package version, a hash of the
    model's own code (:func:`model_code_files`) and one of the shared numeric core (``SHARED_CODE``),
    each without comments, docstrings and layout. Editing one model re-runs that model's rows only;
    editing the training loop or the metrics re-runs every row; prose, other models and the API glue
    re-run nothing. Cached per process (a sweep runs one code)."""
    from . import __version__

    shared = [_PACKAGE_DIR / name for name in SHARED_CODE]
    return f"{__version__}+{_digest(model_code_files(model))}.{_digest(shared)}"


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


def append_row(path, row: dict, fields: list[str]) -> None:
    """Append one result row to a benchmark script's CSV as soon as it is measured (the header first when
    the file is new), so a rerun can skip what finished."""
    path = Path(path)
    new = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        if new:
            writer.writeheader()
        writer.writerow(row)


def read_rows(path) -> list[dict]:
    """The rows a benchmark script's CSV already holds (:func:`append_row`; none when it does not exist yet),
    as strings, for the script to skip what finished."""
    path = Path(path)
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def read_results(out: Path) -> pd.DataFrame:
    path = Path(out) / RESULTS_FILE
    if not path.is_file():
        return pd.DataFrame(columns=COLUMNS)
    text = {name: str for name in ("params", "settings", "code_version", "run_id", "loss_curve", "train_dataset",
                                   "layout", "precision")}
    results = pd.read_csv(path, dtype=text, keep_default_na=False, na_values=[""])
    if "train_dataset" not in results:  # recorded before zero-shot transfer existed: ordinary runs
        results.insert(results.columns.get_loc("params") + 1, "train_dataset", pd.Series(np.nan, dtype=object))
    if "layout" not in results:  # recorded before panel layouts existed: one wide frame
        results.insert(results.columns.get_loc("train_dataset") + 1, "layout", WIDE)
    if "precision" not in results:  # recorded before precision settings existed: every run was fp32
        results.insert(results.columns.get_loc("device") + 1 if "device" in results else len(results.columns),
                       "precision", "fp32")
    return results


@functools.lru_cache(maxsize=4)
def _protocol_split(dataset: str, lookback: int):
    """Parsed once per sweep, not once per run (fitting never modifies its input)."""
    return protocol_split(dataset, lookback)


# ---------------------------------------------------------------------- a user's CSV as a dataset
#: the split of a user's CSV: the protocol's rule for every dataset but ETT (70% / 10% / 20%, in time order)
USER_SPLIT_SCHEME = "ratio"

# ---------------------------------------------------------------------- layouts: one wide frame or a panel
#: the dataset as one multivariate frame (the protocol's layout)
WIDE = "wide"
#: each channel of a wide dataset as a univariate series of a long panel: one global channel-independent model
CHANNELS_AS_SERIES = "channels_as_series"
#: a user's long CSV (``--id-column``): a panel of its own series
LONG = "long"
#: the columns of a panel split as the bench hands it to the Forecaster (its defaults)
ID_COL, TIME_COL = "unique_id", "ds"
#: the target column of a channels-as-series panel
PANEL_TARGET = "y"


@dataclass(frozen=True)
class BenchData:
    """What a run needs to know about its dataset: the name its rows record, the split and how to fit it."""
    name: str
    split: Split
    freq: str | None  # None: inferred from the timestamps
    time_features: str
    #: a user's CSV: the sha256 of its bytes (an edited file is other data); "" for a bundled dataset
    fingerprint: str = ""
    #: WIDE (split parts are wide frames), CHANNELS_AS_SERIES or LONG (long frames: ID_COL, TIME_COL, values)
    layout: str = WIDE

    @property
    def description(self) -> dict:
        """How the data was split and read, for the resume key (a wide dataset's as before layouts existed)."""
        split = "protocol" if not self.fingerprint else USER_SPLIT_SCHEME
        return {"split": split, "freq": self.freq, "time_features": self.time_features,
                **({"sha256": self.fingerprint} if self.fingerprint else {}),
                **({"layout": self.layout} if self.layout != WIDE else {})}

    @property
    def is_panel(self) -> bool:
        return self.layout != WIDE


def channels_as_series(frame: pd.DataFrame) -> pd.DataFrame:
    """A wide frame as a long panel of univariate series: ``unique_id`` = channel name, ``ds``, ``y``
    (channel by channel, each in time order)."""
    return pd.concat([pd.DataFrame({ID_COL: str(column), TIME_COL: frame.index, PANEL_TARGET: frame[column].to_numpy()})
                      for column in frame.columns], ignore_index=True)


def panel_split(split: Split) -> Split:
    """Every part of a wide split as a channels-as-series panel: each series is split at the same borders,
    and the Forecaster scales each on its own training rows, which is the protocol's per-column scaler."""
    return Split(*(channels_as_series(part) for part in (split.train, split.val, split.test)))


@functools.lru_cache(maxsize=4)
def _panel_protocol_split(dataset: str, lookback: int) -> Split:
    """A bundled dataset's protocol split as a channels-as-series panel. The protocol takes the file's rows as
    consecutive steps of its ``freq`` (Weather's file has one duplicate timestamp and one 100-minute gap); a
    panel's series need unique timestamps, so the rows are put on the regular grid from the first timestamp:
    the same rows, borders and windows (ETT's timestamps are regular already: unchanged)."""
    info = dataset_info(dataset)
    frame = load_dataset(info.name)
    grid = pd.date_range(frame.index[0], periods=len(frame), freq=info.freq, name=frame.index.name)
    return panel_split(protocol_split(frame.set_axis(grid), lookback, scheme=info.split_scheme))


def long_split(frame: pd.DataFrame, id_column: str, time_column, lookback: int, horizon: int, name: str) -> Split:
    """A user's long frame split series by series, 70/10/20 each (as a wide CSV is), as long frames with the
    columns ID_COL, TIME_COL and the values. A series too short for its split is an error naming it."""
    needed = user_rows_needed(lookback, horizon)
    sizes = frame.groupby(id_column, sort=False).size()
    short = sizes[sizes < needed]
    if len(short):
        listed = ", ".join(f"{sid!r} ({n} rows)" for sid, n in short.head(5).items())
        raise ValueError(
            f"dataset {name!r}: {len(short)} series have fewer than the {needed} rows a 70/10/20 split with lookback "
            f"{lookback} and horizon {horizon} needs: {listed}{' ...' if len(short) > 5 else ''}; lower --lookback "
            "or --horizons, or drop those series from the file")
    parts = ([], [], [])
    for sid, rows in frame.groupby(id_column, sort=False):
        wide = rows.drop(columns=[id_column]).set_index(time_column).sort_index()
        split = protocol_split(wide, lookback, scheme=USER_SPLIT_SCHEME)
        for part, piece in zip(parts, (split.train, split.val, split.test)):
            part.append(piece.rename_axis(TIME_COL).reset_index().assign(**{ID_COL: sid}))
    columns = [ID_COL, TIME_COL] + [c for c in frame.columns if c not in (id_column, time_column)]
    return Split(*(pd.concat(part, ignore_index=True)[columns] for part in parts))


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
def _read_user_csv(path: str, stamp: tuple, date_column: str | None, dayfirst: bool,
                   id_column: str | None = None) -> pd.DataFrame:
    """Read once per sweep (``stamp``: the file's full path, mtime and size, so an edited file is read again)."""
    if id_column is not None:
        return read_csv_panel(path, id_column, date_column=date_column, dayfirst=dayfirst)
    return read_csv_series(path, date_column=date_column, dayfirst=dayfirst)


@functools.lru_cache(maxsize=4)
def _file_sha256(path: str, stamp: tuple) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def resolve_dataset(dataset: str, lookback: int, horizon: int = 1, date_column: str | None = None,
                    dayfirst: bool = False, id_column: str | None = None,
                    channels_as_series: bool = False) -> BenchData:
    """A bundled dataset: the protocol's split, step and hourly calendar features (as the reference scripts).
    A user's CSV (read as ``tsforecast forecast --csv`` reads it): the chronological 70/10/20 split, the
    step inferred from the timestamps, calendar features from that step; too few rows for ``lookback``
    and ``horizon`` is a ValueError naming the rows needed.

    ``channels_as_series``: each channel of a wide dataset becomes a univariate series of a long panel
    (:func:`panel_split`), split at the protocol's borders. ``id_column``: a user's CSV is long (one row
    per series and step, see :func:`read_csv_panel`), each series split 70/10/20; bundled datasets are wide
    and ignore it."""
    if not is_user_csv(dataset):
        info = dataset_info(dataset)
        if channels_as_series:
            return BenchData(info.name, _panel_protocol_split(info.name, lookback), info.freq, PROTOCOL_TIME_FEATURES,
                             layout=CHANNELS_AS_SERIES)
        return BenchData(info.name, _protocol_split(info.name, lookback), info.freq, PROTOCOL_TIME_FEATURES)
    path = Path(dataset)
    if not path.is_file():
        read_csv_series(path)  # raises the reader's own message: no such file, a folder
    stat = path.stat()
    stamp = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    frame = _read_user_csv(str(path), stamp, date_column, dayfirst, id_column)
    name, fingerprint = user_dataset_name(path), _file_sha256(str(path), stamp)
    if id_column is not None:
        if channels_as_series:
            raise ValueError(f"{dataset} is read as a long CSV (--id-column {id_column}): it is a panel of series "
                             "already; drop --channels-as-series (it turns a wide file's channels into series)")
        split = long_split(frame, id_column, frame.columns[1], lookback, horizon, name)  # id, dates, values
        return BenchData(name, split, None, "auto", fingerprint, layout=LONG)
    _check_user_rows(name, len(frame), lookback, horizon)
    split = protocol_split(frame, lookback, scheme=USER_SPLIT_SCHEME)
    if channels_as_series:
        return BenchData(name, panel_split(split), None, "auto", fingerprint, layout=CHANNELS_AS_SERIES)
    return BenchData(name, split, None, "auto", fingerprint)


def run_settings(model: str, data: BenchData, horizon: int, model_params: dict, training: dict,
                 lookback: int = 96, device: str = "auto", target: BenchData | None = None,
                 scoring: dict | None = None) -> tuple:
    """What a run will use, before it runs: ``(spec, training settings, settings JSON)``.

    The spec holds the family's reference settings for this dataset and horizon under the user's
    explicit params; the JSON (the row's ``settings``, part of the resume key) holds every model
    hyperparameter, the resolved training config (the family's defaults under the user's) and how the
    data was split and read (and ``scoring``: interval levels and method, when asked for). ``target``: a
    zero-shot run's scoring dataset (``data`` is the one fitted
    on; without ``target`` the JSON is the fit's settings, shared by every target)."""
    reference = get_model_class(model).reference_config(data.name, horizon)
    spec = build_spec(model, {**reference.get("params", {}), **model_params})
    training = {**reference.get("training", {}), **training}
    config = vars(Forecaster(model=spec, lookback=lookback, horizon=horizon, **training)._training_config(spec))
    config.pop("verbose", None)  # how chatty a fit is changes no result
    if config.get("precision") == "fp32":  # the default: absent, so rows recorded before the setting still match
        config.pop("precision")
    described = data.description if target is None else {"train": data.description, "target": target.description}
    resolved = {"model": _jsonable(spec.get_params()), "training": _jsonable(config), "data": described}
    if scoring:  # prediction intervals scored too (``--levels``); absent otherwise, so older rows still match
        resolved["scoring"] = scoring
    settings = json.dumps(resolved, sort_keys=True)
    return spec, training, settings


def run_id(model: str, dataset: str, horizon: int, lookback: int, seed: int, params: str, train_dataset: str,
           layout: str, settings: str, code: str) -> str:
    """A file-name-safe id of one run: readable parts plus a hash of everything in the resume key (a panel's
    layout is in its settings)."""
    digest = hashlib.sha256("\0".join(map(str, (params, settings, code))).encode()).hexdigest()[:8]
    source = f"{train_dataset}-to-" if isinstance(train_dataset, str) and train_dataset else ""
    panel = f"_{layout}" if isinstance(layout, str) and layout not in ("", WIDE) else ""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{model}_{source}{dataset}{panel}")
    return f"{name}_L{lookback}_H{horizon}_s{seed}_{digest}"


def run_one(model: str, dataset: str, horizon: int, lookback: int, seed: int, model_params: dict,
            training: dict, device: str = "auto", verbose: int = 0, fitted: dict | None = None,
            date_column: str | None = None, dayfirst: bool = False, forecast_windows: int = 0,
            train_on: str | None = None, scoring: dict | None = None, id_column: str | None = None,
            channels_as_series: bool = False) -> dict:
    """Fit on the protocol's train split (early stopping on val), score every test window.

    ``train_on``: zero-shot transfer (see the module docstring): fit on that dataset (a bundled name or
    a CSV file, read like ``dataset``) and score ``dataset``'s test split; ``fitted`` then also shares
    the fit across target datasets (and across horizons where the spec allows).

    ``dataset``: a bundled name or a CSV file of the user's own (``date_column``, ``dayfirst``: how
    to read it; ``id_column``: a long CSV), see :func:`resolve_dataset`. ``channels_as_series``: one global
    channel-independent model on the dataset's channels as a panel of univariate series (same splits,
    each series scaled on its own training rows), scored on the test windows pooled over series.
    ``fitted``: a dict kept across the runs of a sweep; models whose spec says
    ``one_model_for_all_horizons`` (their training does not depend on the horizon) are fitted once
    per dataset/seed/settings and scored at every horizon by rollout, as their papers do. Only one
    fitted model is kept, so a sweep plans the horizons of one fit next to each other. A run scored
    with an earlier run's fit reports ``train_seconds`` 0 and that run's horizon in ``shared_fit_with``
    (the fit's time is on that run's row, once); its epochs, losses and curves are the fit's.
    ``scoring``: ``{"levels": [80, 95], "interval_method": "split" | "adaptive"}`` also scores conformal
    intervals (calibrated on the validation windows at fit): ``coverage_80``, ``width_80`` (data units),
    ``winkler_80``, ... columns.
    ``forecast_windows``: also return the forecast and truth of that many test windows (first to
    last, evenly spaced) of the last channel as ``"forecasts"`` (a DataFrame, for the report's figures).
    """
    data = resolve_dataset(dataset, lookback, horizon, date_column, dayfirst, id_column, channels_as_series)
    split = fit_data = data.split
    source = data
    if train_on is not None and data.is_panel:
        raise ValueError("zero-shot transfer (train_on) scores a wide dataset channel for channel; drop train_on, "
                         "or drop channels_as_series / id_column")
    if train_on is not None:
        source = resolve_dataset(train_on, lookback, horizon, date_column, dayfirst)
        check_transfer_channels(source, data)
        fit_data = source.split
    spec, training, settings = run_settings(model, source, horizon, model_params, training, lookback,
                                            target=data if train_on is not None else None, scoring=scoring)
    shared_fit = fitted is not None and (spec.one_model_for_all_horizons or train_on is not None)
    if train_on is None:
        key = (model, data.name, lookback, seed, settings)
    else:  # the fit's own settings (no target): one fit for every target
        fit_settings = run_settings(model, source, horizon, model_params, training, lookback)[2]
        key = ("train_on", model, source.name, lookback, seed, fit_settings,
               None if spec.one_model_for_all_horizons else horizon)
    shared_with = None
    if shared_fit and key in fitted:
        forecaster, shared_with = fitted[key]
    else:
        forecaster = Forecaster(model=spec, lookback=lookback, horizon=horizon, random_state=seed, freq=source.freq,
                                time_features=source.time_features, device=device, verbose=verbose, **training)
        forecaster.fit(fit_data.train, val_df=fit_data.val)
        if shared_fit:
            fitted.clear()  # keep one fitted model alive at a time
            fitted[key] = (forecaster, horizon)
    scorer = forecaster
    test = split.test
    if train_on is not None:
        scorer, test = transfer_view(forecaster, data)
    levels = list(scoring["levels"]) if scoring else None
    if scoring:
        scorer.set_params(interval_method=scoring.get("interval_method", "split"))
    started = time.perf_counter()
    scores = scorer.evaluate(test, horizon=horizon, level=levels)
    predict_seconds = time.perf_counter() - started
    result = forecaster.training_
    row = {
        "mse": scores["mse"],
        "mae": scores["mae"],
        "n_test_windows": scores["n_windows"],
        "val_mse": min(result.val_loss) if result.val_loss else np.nan,
        "train_seconds": 0.0 if shared_with is not None else forecaster.fit_seconds_,
        "epoch_seconds": float(np.mean(result.epoch_seconds)) if result.epoch_seconds else np.nan,
        "epoch_val_seconds": float(np.mean(result.val_seconds)) if result.val_seconds else np.nan,
        "predict_seconds": predict_seconds,
        "epochs": result.epochs,
        "best_epoch": result.best_epoch,
        "device": str(forecaster.device_),
        "precision": result.precision,
        "time_features": forecaster.time_feature_freq_ or "",
        # every setting the run actually used, so a row can be reproduced without the code's defaults
        "settings": settings,
        "code_version": code_version(model),
        "shared_fit_with": np.nan if shared_with is None else shared_with,
        "loss_curve": _loss_curve(result),
        **{k: v for k, v in scores.items() if k.startswith(INTERVAL_SCORES)},
    }
    if forecast_windows:
        row["forecasts"] = _forecast_windows(scorer, test, lookback, horizon, forecast_windows)
    return row


def check_transfer_channels(source: BenchData, target: BenchData) -> None:
    """A model fitted on ``source`` forecasts ``target`` channel by channel: the counts must match."""
    n_source, n_target = source.split.train.shape[1], target.split.train.shape[1]
    if n_source != n_target:
        raise ValueError(
            f"--train-on {source.name} has {n_source} channels but dataset {target.name} has {n_target}: a model "
            f"fitted on one dataset scores another only with the same number of channels (channel i of the target "
            f"feeds channel i of the model); choose targets with {n_source} channels, or select {n_source} columns of "
            f"{target.name} into a CSV of their own")


def transfer_view(forecaster: Forecaster, target: BenchData) -> tuple[Forecaster, pd.DataFrame]:
    """The fitted ``forecaster`` as it scores ``target`` zero-shot, and the target's test split to score.

    A shallow copy (the network is shared, not copied) whose scaler is fitted on the target's training
    split (the papers' protocol: each dataset standardized by its own training split), with the target's
    step and calendar, so its windows are checked and given calendar features as the target's own; the
    target's columns take the source's names, channel i for channel i."""
    from .data.scaling import fit_scaler
    from .validation import check_frame

    columns = list(forecaster.columns_)
    train = target.split.train.set_axis(columns, axis=1)
    frame = check_frame(train, min_rows=1, freq=target.freq, what=f"{target.name} training split")
    view = copy.copy(forecaster)
    view.scaler_ = fit_scaler(frame.values, columns)
    view.freq_ = frame.freq
    view.freq_given_ = None if target.freq is None else frame.freq
    view.calendar_ = frame.calendar
    return view, target.split.test.set_axis(columns, axis=1)


def _loss_curve(result) -> str:
    """Per-epoch training and validation loss as JSON ("" for a model that does not train by gradient)."""
    if not result.train_loss:
        return ""
    def clean(values):
        return [None if not np.isfinite(v) else float(f"{v:.6g}") for v in values]
    return json.dumps({"train": clean(result.train_loss), "val": clean(result.val_loss)})


def _forecast_windows(forecaster: Forecaster, test: pd.DataFrame, lookback: int, horizon: int, n: int) -> pd.DataFrame:
    """Forecast and truth (data units) of the last channel (a panel: the last series' first target) for ``n``
    test windows, with up to ``FORECAST_HISTORY`` look-back steps before each (step <= 0: history, no forecast)."""
    panel = ID_COL in test.columns
    if panel:
        series = test[ID_COL].iloc[-1]
        test = test[test[ID_COL] == series].reset_index(drop=True)
        times, column, label = test[TIME_COL], forecaster.columns_[0], series
    else:
        times, column = test.index, test.columns[-1]
        label = column
    last = len(test) - lookback - horizon
    starts = sorted(set(np.linspace(0, last, n).round().astype(int).tolist()))
    history = min(lookback, FORECAST_HISTORY)
    frames = []
    for window, start in enumerate(starts):
        origin = start + lookback  # the first forecast step
        forecast = forecaster.predict(test.iloc[start:origin], horizon=horizon)[column].to_numpy()
        frames.append(pd.DataFrame({
            "window": window, "origin": str(times[origin]), "channel": str(label),
            "step": np.arange(-history + 1, horizon + 1),
            "truth": test[column].iloc[origin - history:origin + horizon].to_numpy(),
            "forecast": np.concatenate([np.full(history, np.nan), forecast]),
        }))
    return pd.concat(frames, ignore_index=True)


def _jsonable(params: dict) -> dict:
    return {k: v if isinstance(v, (int, float, str, bool, type(None), list)) else repr(v) for k, v in params.items()}


def _row_key(row: dict) -> tuple | None:
    """A recorded row's resume key; None for rows recorded before settings and code were keyed."""
    if any(not isinstance(row.get(k), str) or not row.get(k) for k in ("settings", "code_version")):
        return None
    return (row["model"], row["dataset"], int(row["horizon"]), int(row["lookback"]), int(row["seed"]), row["params"],
            _train_dataset(row), _layout(row), row["settings"], row["code_version"])


def _train_dataset(row: dict) -> str:
    """A recorded row's ``train_dataset``: "" for an ordinary run (empty, or recorded before the column)."""
    value = row.get("train_dataset")
    return value if isinstance(value, str) else ""


def _layout(row: dict) -> str:
    """A recorded row's ``layout``: WIDE when empty (recorded before the column)."""
    value = row.get("layout")
    return value if isinstance(value, str) and value else WIDE


def plan_sweep(models: list[str], sources: dict, horizons: list[int], lookback: int, seeds: list[int],
               results: pd.DataFrame, model_params: dict, training: dict, params_json: str,
               date_column: str | None = None, dayfirst: bool = False,
               train_on: tuple | None = None, scoring: dict | None = None, id_column: str | None = None,
               channels_as_series: bool = False) -> tuple[list[dict], int, int]:
    """The runs ``results`` does not hold yet, as dicts of the row's key columns, and (runs already
    done, recorded runs that no longer match and are re-run).

    Ordered by dataset, model, settings, seed, then horizon, so a fit shared by all horizons is used
    for all of them before the next one replaces it. ``train_on``: ``(recorded name, what to read)`` of a
    zero-shot run's training dataset; then ordered by model, fit settings, seed, horizon, then target,
    so one fit serves every target (and every horizon where the spec allows) before the next."""
    done = {_row_key(r) for r in results.to_dict("records")} - {None}
    recorded = {(r["model"], r["dataset"], int(r["horizon"]), int(r["lookback"]), int(r["seed"]), r["params"],
                 _train_dataset(r), _layout(r)) for r in results.to_dict("records")}
    train_name = train_on[0] if train_on else ""
    train_data = resolve_dataset(train_on[1], lookback, max(horizons), date_column, dayfirst) if train_on else None
    plan, n_done, n_stale = [], 0, 0
    for d_index, (dataset, source) in enumerate(sources.items()):
        data = resolve_dataset(source, lookback, max(horizons), date_column, dayfirst, id_column, channels_as_series)
        for m_index, model in enumerate(models):
            code = code_version(model)
            settings_order: dict[str, int] = {}
            for s_index, seed in enumerate(seeds):
                for h_index, horizon in enumerate(horizons):
                    if train_data is None:
                        settings = run_settings(model, data, horizon, model_params, training, lookback,
                                                scoring=scoring)[2]
                        # the fit's settings leave out the scoring (one fit, whatever is scored)
                        fit = run_settings(model, data, horizon, model_params, training, lookback)[2] \
                            if scoring else settings
                    else:
                        settings = run_settings(model, train_data, horizon, model_params, training, lookback,
                                                target=data, scoring=scoring)[2]
                        fit = run_settings(model, train_data, horizon, model_params, training, lookback)[2]
                    key = (model, dataset, int(horizon), int(lookback), int(seed), params_json, train_name,
                           data.layout, settings, code)
                    if key in done:
                        n_done += 1
                        continue
                    n_stale += key[:8] in recorded
                    fit_index = settings_order.setdefault(fit, len(settings_order))
                    order = (d_index, m_index, fit_index, s_index, h_index, 0) if train_data is None else \
                        (0, m_index, fit_index, s_index, h_index, d_index)
                    plan.append({"order": order, **dict(zip(KEY, key)), "scoring": scoring})
    plan.sort(key=lambda run: run.pop("order"))
    return plan, n_done, n_stale


@dataclass
class Sweep:
    """A planned sweep, shared by the back-ends (sequential here, Ray in :mod:`tsforecast.distributed`): the
    runs still to do, in plan order, and what every run reads. Only the driver records results
    (:func:`record_run`), so ``results.csv`` has one writer whatever runs the fits."""
    out: Path
    #: recorded dataset name -> what to read (a bundled name or the user's CSV path)
    sources: dict
    lookback: int
    model_params: dict
    training: dict
    date_column: str | None
    dayfirst: bool
    runs: list[dict]
    #: every row recorded in ``out`` so far (old and new)
    results: pd.DataFrame
    #: zero-shot transfer: (recorded name, what to read) of the dataset every model is fitted on
    train_on: tuple | None = None
    #: a user's CSV is long with this id column (see :func:`resolve_dataset`)
    id_column: str | None = None
    #: each dataset's channels as a panel of univariate series
    channels_as_series: bool = False


def prepare_sweep(models: list[str], datasets: list[str], horizons: list[int], lookback: int, seeds: list[int],
                  out: str | Path, model_params: dict | None = None, training: dict | None = None,
                  command: str | None = None, log: Callable[[str], None] = print, date_column: str | None = None,
                  dayfirst: bool = False, train_on: str | None = None, scoring: dict | None = None,
                  id_column: str | None = None, channels_as_series: bool = False) -> Sweep:
    """Check every input, plan the runs ``out`` does not hold yet (:func:`plan_sweep`) and record the command.
    ``train_on``: zero-shot transfer, see the module docstring (channel counts checked here, before any run).
    ``id_column``, ``channels_as_series``: panel datasets, see :func:`resolve_dataset`."""
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
    if train_on is not None and channels_as_series:
        raise ValueError("--train-on scores a wide dataset channel for channel; drop --channels-as-series or --train-on")
    sources = dict(_dataset_sources(datasets, lookback, max(horizons), date_column, dayfirst, id_column,
                                    channels_as_series))
    if train_on is not None:
        train_on = _dataset_sources([train_on], lookback, max(horizons), date_column, dayfirst)[0]
        source = resolve_dataset(train_on[1], lookback, max(horizons), date_column, dayfirst)
        for target in sources.values():
            check_transfer_channels(source, resolve_dataset(target, lookback, max(horizons), date_column, dayfirst))
    params_json = json.dumps({**model_params, **{f"train.{k}": v for k, v in training.items()}}, sort_keys=True)
    results = read_results(out)
    plan, n_done, n_stale = plan_sweep(models, sources, horizons, lookback, seeds, results, model_params, training,
                                       params_json, date_column, dayfirst, train_on, scoring, id_column,
                                       channels_as_series)
    if command:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        with open(_ensure_dir(out) / COMMANDS_FILE, "a") as handle:
            handle.write(f"# {stamp} on {machine_description()}\n{command}\n")
    stale = f"; {n_stale} recorded with other settings or code, re-run" if n_stale else ""
    log(f"{len(plan)} runs to do ({n_done} already in {out / RESULTS_FILE}{stale})")
    return Sweep(out, sources, lookback, model_params, training, date_column, dayfirst, plan, results, train_on,
                 id_column, channels_as_series)


def fit_groups(runs: list[dict]) -> list[list[dict]]:
    """The planned runs in groups that share one fit (a model fitted once for all horizons: same model,
    dataset, look-back, seed and settings, next to each other in plan order); every other run alone."""
    groups: list[list[dict]] = []
    previous = None
    for run in runs:
        key = (run["model"], run["dataset"], run["lookback"], run["seed"], run["settings"])
        if groups and key == previous and get_model_class(run["model"]).one_model_for_all_horizons:
            groups[-1].append(run)
        else:
            groups.append([run])
        previous = key
    return groups


def execute_run(run: dict, source: str, lookback: int, model_params: dict, training: dict, device: str = "auto",
                verbose: int = 0, fitted: dict | None = None, date_column: str | None = None,
                dayfirst: bool = False, train_source: str | None = None, id_column: str | None = None,
                channels_as_series: bool = False) -> dict:
    """One planned run (a :func:`plan_sweep` entry) as its full row, plus ``"forecasts"`` (the figures' test
    windows): where it runs (the machine, torch) is recorded by whoever runs it. ``train_source``: what
    to read for a zero-shot run's ``train_dataset`` (default: that name, a bundled dataset)."""
    from . import __version__

    row = {k: run[k] for k in RUN}
    row["train_dataset"] = run["train_dataset"] or np.nan  # empty, as results.csv reads it back
    row["run_id"] = run_id(*(run[k] for k in KEY))
    train_on = (train_source or run["train_dataset"]) if run.get("train_dataset") else None
    row.update(run_one(run["model"], source, run["horizon"], lookback, run["seed"], model_params, training, device,
                       verbose, fitted, date_column=date_column, dayfirst=dayfirst, forecast_windows=FORECAST_WINDOWS,
                       train_on=train_on, scoring=run.get("scoring"), id_column=id_column,
                       channels_as_series=channels_as_series))
    row.update({"machine": machine_description(), "torch_version": torch.__version__, "tsforecast_version": __version__,
                "git_commit": git_commit(), "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    return row


def record_run(sweep: Sweep, row: dict) -> None:
    """Append a finished run's row to ``sweep.results`` and rewrite ``results.csv`` and ``report.md`` atomically;
    its forecast file is written first, so a recorded row's forecast file always exists."""
    row = dict(row)
    forecasts = row.pop("forecasts")
    out = sweep.out
    write_atomic(out / FORECASTS_DIR / f"{row['run_id']}.csv", forecasts.to_csv(index=False, float_format="%.5g"))
    columns = result_columns(list(sweep.results.columns) + list(row))
    new = pd.DataFrame([row]).reindex(columns=columns)
    sweep.results = pd.concat([sweep.results, new], ignore_index=True).reindex(columns=columns) \
        if len(sweep.results) else new
    write_atomic(out / RESULTS_FILE, sweep.results.to_csv(index=False, float_format="%.6g"))
    write_atomic(out / REPORT_FILE, render_report(sweep.results, out, figures=None))


def result_columns(present) -> list[str]:
    """``results.csv``'s columns: the fixed ones, then any interval scores recorded (``coverage_80``, ...)."""
    extra = sorted({c for c in present if isinstance(c, str) and c.startswith(INTERVAL_SCORES)},
                   key=lambda c: (float(c.split("_", 1)[1]), INTERVAL_SCORES.index(c.split("_", 1)[0] + "_")))
    return COLUMNS + extra


def run_summary(row: dict) -> str:
    """One finished run in one line (the progress log)."""
    shared = f", fit shared with H={row['shared_fit_with']}" if row["shared_fit_with"] == row["shared_fit_with"] \
        else f", fit {row['train_seconds']:.1f}s"
    layout = f" [{row['layout']}]" if _layout(row) != WIDE else ""
    return (f"{row['model']} {transfer_label(row)}{layout} H={row['horizon']} seed={row['seed']}: mse={row['mse']:.4f} "
            f"mae={row['mae']:.4f} ({row['epochs']} epochs{shared}, test {row['predict_seconds']:.1f}s)")


def run_sweep(models: list[str], datasets: list[str], horizons: list[int], lookback: int, seeds: list[int],
              out: str | Path, model_params: dict | None = None, training: dict | None = None,
              device: str = "auto", verbose: int = 0, command: str | None = None,
              log: Callable[[str], None] = print, date_column: str | None = None,
              dayfirst: bool = False, figures: bool = True, train_on: str | None = None,
              levels: list | None = None, interval_method: str = "split", id_column: str | None = None,
              channels_as_series: bool = False) -> pd.DataFrame:
    """Run every missing combination, one after another in this process; returns all results in ``out``
    (old and new). :func:`tsforecast.distributed.run_sweep` runs the same plan as Ray tasks.

    ``datasets``: bundled names and/or CSV files of the user's own (read with ``date_column`` and
    ``dayfirst``, split 70/10/20, recorded under the file's name; see :func:`resolve_dataset`).
    Each run saves a few test windows' forecasts to ``out/forecasts/<run_id>.csv``; when the sweep
    ends, the report's figures are drawn (``figures=False``: not).
    ``train_on``: zero-shot transfer, fitted on that dataset and scored on each of ``datasets`` (module docstring).
    ``levels``: also score conformal prediction intervals at these levels (``interval_method``: "split" or
    "adaptive"): coverage, mean width (data units) and Winkler score per run and level.
    ``channels_as_series``: each dataset's channels as a panel of univariate series, one global model (rows
    record ``layout`` "channels_as_series"); ``id_column``: a user's CSV is long, a panel of its series.
    """
    sweep = prepare_sweep(models, datasets, horizons, lookback, seeds, out, model_params, training, command, log,
                          date_column, dayfirst, train_on, scoring_settings(levels, interval_method), id_column,
                          channels_as_series)
    fitted: dict = {}
    train_source = sweep.train_on[1] if sweep.train_on else None
    for i, run in enumerate(sweep.runs, 1):
        row = execute_run(run, sweep.sources[run["dataset"]], lookback, sweep.model_params, sweep.training, device,
                          verbose, fitted, date_column, dayfirst, train_source, sweep.id_column,
                          sweep.channels_as_series)
        record_run(sweep, row)
        log(f"[{i}/{len(sweep.runs)}] {run_summary(row)}")
    if len(sweep.results):
        write_report(sweep.results, sweep.out, figures=figures)
    return sweep.results


def scoring_settings(levels, interval_method: str = "split") -> dict | None:
    """The ``scoring`` part of a run's settings for ``--levels`` (None without levels); checked here, before any run."""
    if not levels:
        return None
    from .intervals import check_levels, check_method

    return {"levels": [float(v) for v in check_levels(levels)], "interval_method": check_method(interval_method)}


def write_report(results: pd.DataFrame, out: Path, figures: bool = True) -> Path:
    """Draw the figures (``figures=True``) and write ``report.md`` linking them."""
    drawn = None
    if figures:
        from .figures import write_figures

        drawn = write_figures(label_rows(current_rows(results)), Path(out))
    write_atomic(Path(out) / REPORT_FILE, render_report(results, out, figures=drawn))
    return Path(out) / REPORT_FILE


def _dataset_sources(datasets: list[str], lookback: int, horizon: int, date_column, dayfirst, id_column=None,
                     channels_as_series: bool = False) -> list[tuple]:
    """(recorded name, what to read) per dataset; a user's CSV is read and size-checked here, before any run."""
    sources, seen = [], {}
    bundled = {name.lower() for name in DATASETS}
    for dataset in datasets:
        if is_user_csv(dataset):
            name = resolve_dataset(dataset, lookback, horizon, date_column, dayfirst, id_column, channels_as_series).name
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
    or in an earlier source are kept once (the first seen wins), commands and forecast files are added."""
    out = Path(out)
    frames, commands = [read_results(out)], []
    for source in sources:
        source = Path(source)
        if not (source / RESULTS_FILE).is_file():
            raise FileNotFoundError(f"no {RESULTS_FILE} in {source}")
        if source.resolve() == out.resolve():
            continue
        frames.append(read_results(source))
        for file in sorted((source / FORECASTS_DIR).glob("*.csv")):
            if not (out / FORECASTS_DIR / file.name).is_file():
                write_atomic(out / FORECASTS_DIR / file.name, file.read_text())
        if (source / COMMANDS_FILE).is_file():
            commands.append((source / COMMANDS_FILE).read_text())
    merged = pd.concat([f for f in frames if len(f)], ignore_index=True)
    merged = merged.reindex(columns=result_columns(merged.columns)).drop_duplicates(subset=KEY, keep="first")
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
#: how the report names a zero-shot run's dataset, and the key of its published figures: ETTh1->ETTh2
TRANSFER_ARROW = "->"


def transfer_label(row) -> str:
    """``source->target`` for a zero-shot row, the dataset's name for an ordinary one."""
    train = _train_dataset(row)
    return f"{train}{TRANSFER_ARROW}{row['dataset']}" if train else str(row["dataset"])


def label_transfer_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows with a zero-shot row's ``dataset`` as ``source->target`` (what the report and figures show)."""
    if "train_dataset" not in rows or rows["train_dataset"].isna().all():
        return rows
    rows = rows.copy()
    rows["dataset"] = [transfer_label(r) for r in rows.to_dict("records")]
    return rows


#: how the report labels a panel run (after its params), so a panel row never reads as the wide one
LAYOUT_LABELS = {CHANNELS_AS_SERIES: "[channels as series]", LONG: "[panel]"}


def label_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows as the report and figures show them: a zero-shot row's dataset as ``source->target`` and a
    panel row's params with its layout (``[channels as series]``), so each is a variant of its own."""
    rows = label_transfer_rows(rows)
    if "layout" not in rows or not rows["layout"].isin(list(LAYOUT_LABELS)).any():
        return rows
    rows = rows.copy()
    label = rows["layout"].map(LAYOUT_LABELS)
    params = rows["params"].where(~rows["params"].isin(["{}", ""]), "")
    rows["params"] = (params + " " + label).str.strip().where(label.notna(), rows["params"])
    return rows


def current_rows(results: pd.DataFrame) -> pd.DataFrame:
    """The newest row of each run (a re-run after a settings or code change supersedes the older row,
    which stays in results.csv)."""
    if results.empty:
        return results
    return results.drop_duplicates(subset=[c for c in RUN if c in results], keep="last")


def shared_fit_rows(results: pd.DataFrame) -> pd.Series:
    """True for rows scored with another row's fit (its time is on that row). Rows recorded before
    ``shared_fit_with`` existed repeated the full fit time on every horizon: for a model fitted once for
    all horizons, the rows of one dataset/seed/settings with the same fit time, epochs and validation
    loss are one fit, counted on its smallest horizon."""
    shared = results.get("shared_fit_with", pd.Series(np.nan, index=results.index)).notna()
    legacy = results.get("code_version", pd.Series(np.nan, index=results.index)).isna()
    one_fit = results["model"].map(lambda m: get_model_class(m).one_model_for_all_horizons)
    candidates = results[legacy & one_fit & results["train_seconds"].notna()]
    fit_columns = ["model", "dataset", "lookback", "seed", "params", "train_seconds", "epochs"]
    for _, rows in candidates.groupby(fit_columns, sort=False, dropna=False):
        if len(rows) > 1:
            shared[rows.index[rows["horizon"] != rows["horizon"].min()]] = True
    return shared


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


def run_label(model: str, params: str) -> str:
    return model if params in ("{}", "") else f"{model} {params}"


#: the horizons a published "avg" row averages over (datasets/published_results.csv)
PUBLISHED_AVERAGE_HORIZONS = [96, 192, 336, 720]
#: marks a published figure (or average) at another look-back than ours
OTHER_LOOKBACK = "‡"
OTHER_LOOKBACK_NOTE = (f"{OTHER_LOOKBACK} The published figure is at another look-back than ours (its L in brackets): "
                       "the ratio compares different look-backs, not like for like.")


def group_runs(results: pd.DataFrame) -> pd.DataFrame:
    """Means over seeds per model, params, dataset, horizon and look-back (newest row of each run)."""
    rows = label_rows(current_rows(results)).copy()
    rows["fit_s"] = rows["train_seconds"].where(~shared_fit_rows(rows))
    rows["shared"] = rows["fit_s"].isna() & rows["train_seconds"].notna()
    return (rows.groupby(["dataset", "model", "params", "horizon", "lookback"], sort=False)
            .agg(mse=("mse", "mean"), mae=("mae", "mean"), mse_std=("mse", "std"), seeds=("seed", "nunique"),
                 windows=("n_test_windows", "first"), epochs=("epochs", "mean"),
                 train_s=("fit_s", "mean"), shared=("shared", "all"), epoch_s=("epoch_seconds", "mean"),
                 predict_s=("predict_seconds", "mean"), device=("device", "first"))
            .reset_index()
            .sort_values("dataset", kind="stable"))  # merged sweeps list datasets in any order


def render_report(results: pd.DataFrame, out: Path | None = None, figures: tuple | None = None) -> str:
    """report.md's text. ``figures``: what :func:`tsforecast.figures.write_figures` drew, as
    ``([(file, caption), ...], [notes])``, linked at the end; None: say when figures are drawn."""
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
    superseded = len(results) - len(current_rows(results))
    if superseded:
        lines += [f"{superseded} older row(s) of runs re-run with other settings or code are kept in `{RESULTS_FILE}` "
                  "and left out below (the newest row of each run is shown).", ""]
    grouped = group_runs(results)
    ref_names = " | ".join(f"{name} (L={lb}) MSE | ratio" for name, lb in REFERENCE_BASELINES)
    for dataset, table in grouped.groupby("dataset", sort=False):
        table = table.sort_values(["model", "params", "horizon", "lookback"], kind="stable")
        lines += [f"## {dataset}", ""]
        if TRANSFER_ARROW in dataset:
            source, target = dataset.split(TRANSFER_ARROW, 1)
            lines += [f"Zero-shot: fitted on {source}'s training split, scored on {target}'s test split (scaled by "
                      f"{target}'s own training split). Fits marked shared serve every target.", ""]
        lines += [f"| model | H | L | MSE | MAE | seeds | published MSE / MAE (L) | ratio MSE | ratio MAE | {ref_names} "
                  "| test windows | epochs | fit s | s/epoch | test s | device |"]
        lines += ["|" + "---|" * (15 + 2 * len(REFERENCE_BASELINES))]
        other_lookback = any_shared = False
        for r in table.itertuples():
            spec = get_model_class(r.model)
            pub = _published_for(lookup, spec.published_name, dataset, r.horizon, r.lookback)
            mark = ""
            if pub and int(pub[2]) != int(r.lookback):
                mark, other_lookback = " " + OTHER_LOOKBACK, True
            pub_cells = (f"{pub[0]:.3f} / {pub[1]:.3f} ({pub[2]}){mark}", _fmt(r.mse / pub[0]), _fmt(r.mae / pub[1])) \
                if pub else ("—", "", "")
            ref_cells = []
            for name, lb in REFERENCE_BASELINES:
                ref = lookup.get((name, dataset, str(r.horizon), lb))
                ref_cells += [_fmt(ref[0]), _fmt(r.mse / ref[0])] if ref else ["—", ""]
            mse = _fmt(r.mse, 4) + (f" ± {r.mse_std:.4f}" if r.seeds > 1 else "")
            fit = "shared" if r.shared else _fmt(r.train_s, 1)
            any_shared |= bool(r.shared)
            lines.append(
                f"| {run_label(r.model, r.params)} | {r.horizon} | {r.lookback} | {mse} | {_fmt(r.mae, 4)} | {r.seeds} | "
                f"{' | '.join(pub_cells)} | {' | '.join(ref_cells)} | {r.windows} | {_fmt(r.epochs, 1)} | {fit} | "
                f"{_fmt(r.epoch_s, 2)} | {_fmt(r.predict_s, 2)} | {r.device} |"
            )
        lines.append("")
        if other_lookback:
            lines += [OTHER_LOOKBACK_NOTE, ""]
        if any_shared:
            lines += ["`fit s` = shared: one model fitted for all horizons (its spec's `one_model_for_all_horizons`), "
                      "scored at this horizon; the fit's time is counted once, on the row of the horizon it was fitted "
                      "at (means over the seeds whose fit it was).", ""]
    lines += _transfer_published(grouped, lookup)
    lines += _interval_table(label_rows(current_rows(results)))
    lines += _horizon_averages(grouped, lookup)
    lines += _overall_averages(grouped, lookup)
    lines += _figure_section(figures)
    return "\n".join(lines) + "\n"


def _transfer_published(grouped: pd.DataFrame, lookup: dict) -> list[str]:
    """Every published zero-shot figure (any model) for the transfer pairs and horizons run, for context."""
    pairs = [d for d in dict.fromkeys(grouped["dataset"]) if TRANSFER_ARROW in d]
    lines = []
    for pair in pairs:
        horizons = [str(h) for h in sorted(set(grouped.loc[grouped["dataset"] == pair, "horizon"].astype(int)))] + ["avg"]
        for horizon in horizons:
            found = sorted((model, mse, mae, lb) for (model, ds, h, lb), (mse, mae) in lookup.items()
                           if ds == pair and h == horizon)
            if found:
                cells = ", ".join(f"{m} {mse:.3f} / {mae:.3f} (L={lb})" for m, mse, mae, lb in found)
                lines.append(f"| {pair} | {horizon} | {cells} |")
    if not lines:
        return []
    return ["## Published zero-shot figures for these pairs", "",
            "MSE / MAE as published (sources: `datasets/published_results.csv`); `avg`: mean over H = 96, 192, 336, 720.",
            "", "| pair | H | published |", "|---|---|---|", *lines, ""]


def _published_average(lookup: dict, model: str, rows: pd.DataFrame) -> tuple[float | None, str]:
    """The mean published MSE over ``rows``' dataset/horizon/look-back (None unless all are published)
    and a marker when any of them is at another look-back than ours."""
    name = get_model_class(model).published_name
    pubs = [_published_for(lookup, name, d, h, lb) for d, h, lb in zip(rows.dataset, rows.horizon, rows.lookback)]
    if pubs and not all(pubs) and rows.dataset.nunique() == 1 and sorted(rows.horizon) == PUBLISHED_AVERAGE_HORIZONS:
        # some papers publish only the average over the four horizons (AutoTimes, Time-LLM)
        pub = _published_for(lookup, name, rows.dataset.iloc[0], "avg", rows.lookback.iloc[0])
        pubs = [pub] * len(rows)
    if not pubs or not all(pubs):
        return None, ""
    mixed = any(int(p[2]) != int(lb) for p, lb in zip(pubs, rows.lookback))
    return float(np.mean([p[0] for p in pubs])), (" " + OTHER_LOOKBACK if mixed else "")


def _interval_table(rows: pd.DataFrame) -> list[str]:
    """Conformal intervals per run (``--levels``): coverage (%), mean width and Winkler score (data units)."""
    columns = [c for c in result_columns(rows.columns) if c.startswith(INTERVAL_SCORES)]
    if not columns:
        return []
    rows = rows.dropna(subset=columns, how="all")
    method = rows["settings"].map(lambda text: json.loads(text).get("scoring", {}).get("interval_method", ""))
    lines = ["## Prediction intervals", "",
             "Conformal intervals calibrated on the validation windows at fit, scored on every test window: "
             "coverage in %, mean width and Winkler interval score in the data's units (means over seeds).", "",
             "| dataset | model | H | method | " + " | ".join(columns) + " |", "|" + "---|" * (4 + len(columns))]
    table = rows.assign(method=method).groupby(["dataset", "model", "params", "horizon", "method"], sort=False)[columns]
    for (dataset, model, params, horizon, how), values in table.mean().iterrows():
        cells = " | ".join(_fmt(values[c], 1 if c.startswith("coverage_") else 3) for c in columns)
        lines.append(f"| {dataset} | {run_label(model, params)} | {horizon} | {how} | {cells} |")
    return lines + [""]


def _horizon_averages(grouped: pd.DataFrame, lookup: dict) -> list[str]:
    averages = grouped.groupby(["model", "params", "dataset"], sort=False).agg(
        mse=("mse", "mean"), mae=("mae", "mean"), horizons=("horizon", "nunique")).reset_index()
    ref_head = " | ".join(f"{name} (L={lb}) avg | ratio" for name, lb in REFERENCE_BASELINES)
    lines = ["## Averages over horizons", "",
             f"| model | dataset | horizons | MSE | MAE | published MSE avg | ratio | {ref_head} |",
             "|" + "---|" * (7 + 2 * len(REFERENCE_BASELINES))]
    any_mixed = False
    for r in averages.itertuples():
        rows = grouped[(grouped.model == r.model) & (grouped.params == r.params) & (grouped.dataset == r.dataset)]
        pub_avg, mark = _published_average(lookup, r.model, rows)
        any_mixed |= bool(mark)
        ref_cells = []
        for name, lb in REFERENCE_BASELINES:
            refs = [lookup.get((name, r.dataset, str(h), lb)) for h in rows.horizon]
            ref_avg = float(np.mean([ref[0] for ref in refs])) if refs and all(refs) else None
            ref_cells += [_fmt(ref_avg), _fmt(r.mse / ref_avg) if ref_avg else ""]
        lines.append(f"| {run_label(r.model, r.params)} | {r.dataset} | {r.horizons} | {_fmt(r.mse, 4)} | "
                     f"{_fmt(r.mae, 4)} | {_fmt(pub_avg)}{mark if pub_avg else ''} | "
                     f"{_fmt(r.mse / pub_avg) if pub_avg else ''} | {' | '.join(ref_cells)} |")
    if any_mixed:
        lines += ["", OTHER_LOOKBACK_NOTE.replace("figure is", "average holds figures")]
    return lines


def _overall_averages(grouped: pd.DataFrame, lookup: dict) -> list[str]:
    """Per model, the mean over every dataset x horizon it ran next to the published mean over the same
    runs (the papers' "average over datasets"), for models run on more than one dataset."""
    lines, any_mixed = [], False
    for (model, params), rows in grouped.groupby(["model", "params"], sort=False):
        if rows.dataset.nunique() < 2:
            continue
        pub_avg, mark = _published_average(lookup, model, rows)
        any_mixed |= bool(mark)
        lines.append(f"| {run_label(model, params)} | {', '.join(rows.dataset.unique())} | {len(rows)} runs | "
                     f"{_fmt(rows.mse.mean(), 4)} | {_fmt(rows.mae.mean(), 4)} | {_fmt(pub_avg)}{mark if pub_avg else ''} | "
                     f"{_fmt(rows.mse.mean() / pub_avg) if pub_avg else ''} |")
    if not lines:
        return []
    return ["", "## Averages over datasets and horizons", "",
            "| model | datasets | runs | MSE | MAE | published MSE avg (same runs) | ratio |", "|---|---|---|---|---|---|---|",
            *lines, *(["", OTHER_LOOKBACK_NOTE.replace("figure is", "average holds figures")] if any_mixed else [])]


def _figure_section(figures: tuple | None) -> list[str]:
    if figures is None:
        return ["", "## Figures", "", "Drawn when the sweep finishes, or by `tsforecast report --out DIR`."]
    drawn, notes = figures
    lines = ["", "## Figures", ""]
    for file, caption in drawn:
        lines += [f"![{caption}]({file})", "", f"*{caption}*", ""]
    lines += [f"- {note}" for note in notes]
    return lines if drawn or notes else []
