"""Sweeps and hyperparameter searches on Ray: one machine's cores, or a cluster.

Needs the optional extra: ``pip install "tsforecast[distributed]"`` (``ray[tune]``); the sequential
back-end (:func:`tsforecast.bench.run_sweep`) needs nothing of it.

**Sweeps** (:func:`run_sweep`, ``tsforecast bench --backend ray``) plan exactly as the sequential
back-end (:func:`tsforecast.bench.prepare_sweep`: same runs, same resume key) and run each fit group
as one Ray task with its resources declared (``cpus_per_run`` CPUs, torch using as many threads;
``gpus_per_run`` GPUs). A fit group is one run, or for a model fitted once for all horizons every
horizon of one fit, so nothing refits. Tasks return rows; the driver alone writes ``results.csv``
(atomically, after each run), so the file is never half-written and a killed sweep resumes like a
sequential one. A run that raises is recorded in ``failures.csv`` with its error (never in
``results.csv``) and is planned again by the next invocation. When the sweep ends the new rows are put
in plan order, so results.csv and the figures read as the sequential back-end's.

**Searches** (:func:`tune`, ``tsforecast tune``) run Ray Tune over the model's and the training's
parameters (:func:`parse_space` documents the search-space format), scored on the validation split's
MSE (every validation window, scaled data) and never on the test split; ASHA stops poor trials by
epoch. The best configuration is then refitted and scored once on the test split. Every trial is
recorded in ``trials.csv``, the winner and its test scores in ``best.json``.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from . import bench
from .bench import (KEY, RESULTS_FILE, RUN, Sweep, execute_run, fit_groups, is_user_csv,
                    prepare_sweep, record_run, resolve_dataset, run_settings, run_summary, scoring_settings,
                    write_report)
from .io import write_atomic

INSTALL_HINT = 'pip install "tsforecast[distributed]"'
FAILURES_FILE = "failures.csv"
TRIALS_FILE = "trials.csv"
BEST_FILE = "best.json"
FAILURE_COLUMNS = RUN + ["run_id", "settings", "code_version", "error", "failed_at"]
#: training settings a search may vary (besides the model's own, ``model__<name>``)
TRAINING_KEYS = ("max_epochs", "batch_size", "learning_rate", "patience", "lr_schedule")
#: search-space distributions: name -> number of arguments (None: a non-empty list of values)
DISTRIBUTIONS = {"choice": None, "uniform": 2, "loguniform": 2, "randint": 2, "lograndint": 2, "quniform": 3,
                 "qloguniform": 3, "qrandint": 3}


def require_ray():
    """The ``ray`` module, or an ImportError saying how to install it."""
    try:
        import ray
        import ray.tune  # noqa: F401  (the search needs it; a bare `pip install ray` lacks its dependencies)
    except ImportError as err:
        raise ImportError(f"the Ray back-end needs ray[tune], which is not installed ({err}); install it with "
                          f"{INSTALL_HINT}") from err
    return ray


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None):
    """Connect to Ray: a session already started (by the caller) is used and left running; ``address``
    (``"auto"``: the cluster this machine belongs to, ``"ray://host:10001"``: a remote one) is joined;
    otherwise Ray starts on this machine's cores (``num_cpus``, default all), quietly, and stops after."""
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    quiet = dict(logging_level=logging.ERROR, log_to_driver=False)
    if address:
        ray.init(address=address, **quiet)
    else:
        ray.init(num_cpus=num_cpus or _usable_cores(), include_dashboard=False, **quiet)
    try:
        yield ray
    finally:
        ray.shutdown()


def _usable_cores() -> int:
    """The cores this process may run on (a taskset or a container's CPU set), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _resources(ray, device: str, cpus: float, gpus: float | None, what: str) -> tuple[float, float, str, int]:
    """(CPUs, GPUs, device, torch threads) of one task: GPUs default to one per task where the cluster has
    any (and ``device`` allows it); a task without GPUs trains on the CPU, so tasks never share a GPU unasked."""
    if not cpus or cpus <= 0:
        raise ValueError(f"--cpus-per-{what} must be positive, got {cpus}")
    total = ray.cluster_resources()
    if gpus is None:
        gpus = 1.0 if total.get("GPU", 0) > 0 and device != "cpu" else 0.0
    if gpus < 0:
        raise ValueError(f"--gpus-per-{what} must be 0 or more, got {gpus}")
    if gpus == 0 and device not in ("auto", "cpu"):
        raise ValueError(f"device={device!r} but no GPU is requested per {what}; add --gpus-per-{what} 1 "
                         "(or a fraction, e.g. 0.25 to share one GPU between four)")
    if gpus > 0 and device == "cpu":
        raise ValueError(f"--gpus-per-{what} {gpus} with device 'cpu'; drop --device cpu or use --gpus-per-{what} 0")
    for name, need in (("CPU", cpus), ("GPU", gpus)):
        if need > total.get(name, 0):
            raise ValueError(f"each {what} asks for {need:g} {name}(s) but the Ray cluster has {total.get(name, 0):g}; "
                             f"lower --{name.lower()}s-per-{what}")
    return cpus, gpus, ("cpu" if gpus == 0 else device), max(1, int(cpus))


# ---------------------------------------------------------------------- a user's CSV on the workers
def _payload(source: str) -> tuple | None:
    """A user's CSV travels with the tasks, as (file name, bytes): a worker of a cluster cannot read the
    driver's files. None for a bundled dataset (every worker has it)."""
    if not is_user_csv(source):
        return None
    return Path(source).name, Path(source).read_bytes()


def _worker_source(source: str, shipped: tuple | None) -> str:
    """Where this worker reads the dataset: the bundled name, or the shipped CSV written once to a local
    file of the same name (its recorded name and its sha256, part of the resume key, stay the same)."""
    if shipped is None:
        return source
    name, data = shipped
    path = Path(tempfile.gettempdir()) / "tsforecast-ray" / hashlib.sha256(data).hexdigest()[:16] / name
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=path.parent)  # tasks of one node may race: write, rename
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    return str(path)


# ---------------------------------------------------------------------- sweeps
def run_group(runs: list[dict], source: str, shipped, lookback: int, model_params: dict, training: dict,
              device: str, verbose: int, date_column, dayfirst: bool, threads: int) -> dict:
    """A Ray task: the runs of one fit group, in order (a shared fit is fitted once). Returns
    ``{"rows": [...], "failed": [runs not done], "error": text}``: the rows finished before an error are kept."""
    import torch

    torch.set_num_threads(threads)
    source = _worker_source(source, shipped)
    rows, fitted = [], {}
    for i, run in enumerate(runs):
        try:
            rows.append(execute_run(run, source, lookback, model_params, training, device, verbose, fitted,
                                    date_column, dayfirst))
        except Exception as err:  # recorded by the driver, retried by the next invocation
            return {"rows": rows, "failed": runs[i:], "error": _error_text(err)}
    return {"rows": rows, "failed": [], "error": ""}


def _error_text(err: BaseException) -> str:
    """An error in one line: its type, message and where it was raised."""
    err = getattr(err, "cause", None) or err  # a RayTaskError wraps the task's own exception
    last = traceback.extract_tb(err.__traceback__)[-1:] if err.__traceback__ else []
    where = f" (at {Path(last[0].filename).name}:{last[0].lineno})" if last else ""
    return " ".join(f"{type(err).__name__}: {err}{where}".split())


def read_failures(out: str | Path) -> pd.DataFrame:
    path = Path(out) / FAILURES_FILE
    if not path.is_file():
        return pd.DataFrame(columns=FAILURE_COLUMNS)
    return pd.read_csv(path, dtype={"params": str, "settings": str, "code_version": str, "run_id": str},
                       keep_default_na=False, na_values=[""])


def _write_failures(out: Path, failures: pd.DataFrame) -> None:
    """The runs that failed and have not finished since (a rerun retries them); no file when there are none."""
    path = out / FAILURES_FILE
    if failures.empty:
        path.unlink(missing_ok=True)
    else:
        failures = failures.drop_duplicates("run_id", keep="last")  # its latest attempt
        write_atomic(path, failures.reindex(columns=FAILURE_COLUMNS).to_csv(index=False))


def run_sweep(models: list[str], datasets: list[str], horizons: list[int], lookback: int, seeds: list[int],
              out: str | Path, model_params: dict | None = None, training: dict | None = None,
              device: str = "auto", verbose: int = 0, command: str | None = None,
              log: Callable[[str], None] | None = None, date_column: str | None = None, dayfirst: bool = False,
              figures: bool = True, address: str | None = None, num_cpus: int | None = None,
              cpus_per_run: float = 1, gpus_per_run: float | None = None, progress: bool = True,
              task: Callable = run_group, levels: list | None = None, interval_method: str = "split") -> pd.DataFrame:
    """:func:`tsforecast.bench.run_sweep` with every fit group a Ray task; returns all results in ``out``.

    ``address``: a running Ray cluster (``"auto"``, ``"ray://head:10001"``); None starts Ray here on
    ``num_cpus`` cores (default all) and stops it after. ``cpus_per_run`` CPUs per task (torch uses that
    many threads); ``gpus_per_run`` GPUs per task (a fraction shares a GPU; None: 1 where the cluster has
    GPUs, else 0). ``log``: one line per finished run (default: above the progress bar).
    Runs that fail are in ``out/failures.csv`` (and retried by the next call with the same arguments).
    ``task``: what a worker runs for one fit group (:func:`run_group`; tests replace it)."""
    require_ray()  # before planning: the message should not wait for a sweep's checks
    sweep = prepare_sweep(models, datasets, horizons, lookback, seeds, out, model_params, training, command,
                          log or print, date_column, dayfirst, scoring=scoring_settings(levels, interval_method))
    out = sweep.out
    failures = read_failures(out)
    if sweep.runs:
        with ray_session(address, num_cpus) as ray:
            _run_on_ray(ray, sweep, failures, device, verbose, cpus_per_run, gpus_per_run, progress, log, task)
            failures = read_failures(out)
    done = set(sweep.results["run_id"].dropna()) if len(sweep.results) else set()
    if len(failures):
        failures = failures[~failures["run_id"].isin(done)]
        _write_failures(out, failures)
        if len(failures):
            (log or print)(f"{len(failures)} run(s) failed, see {out / FAILURES_FILE}; run the same command again "
                           "to retry them")
    if len(sweep.results):
        write_report(sweep.results, out, figures=figures)
    return sweep.results


def _run_on_ray(ray, sweep: Sweep, failures: pd.DataFrame, device: str, verbose: int, cpus: float,
                gpus: float | None, progress: bool, log, task: Callable) -> None:
    from tqdm import tqdm

    cpus, gpus, device, threads = _resources(ray, device, cpus, gpus, "run")
    remote = ray.remote(task).options(num_cpus=cpus, num_gpus=gpus)
    # put in the object store once, not once per task (a task's ObjectRef argument arrives as its value)
    payloads = {name: _payload(source) for name, source in sweep.sources.items()}
    shipped = {name: None if payload is None else ray.put(payload) for name, payload in payloads.items()}
    pending = {}
    for group in fit_groups(sweep.runs):
        dataset = group[0]["dataset"]
        ref = remote.remote(group, sweep.sources[dataset], shipped[dataset], sweep.lookback, sweep.model_params,
                            sweep.training, device, verbose, sweep.date_column, sweep.dayfirst, threads)
        pending[ref] = group
    n_before, order = len(sweep.results), {bench.run_id(*(r[k] for k in KEY)): i for i, r in enumerate(sweep.runs)}
    bar = tqdm(total=len(sweep.runs), unit="run", desc="sweep", disable=not progress, dynamic_ncols=True)
    say = log or bar.write
    other_code = False
    try:
        while pending:
            [ref], _ = ray.wait(list(pending), num_returns=1)
            group = pending.pop(ref)
            try:
                outcome = ray.get(ref)
            except Exception as err:  # the task itself died (worker crash, node lost, ...)
                outcome = {"rows": [], "failed": group, "error": _error_text(err)}
            for row in outcome["rows"]:
                record_run(sweep, row)
                bar.update(1)
                say(f"[{bar.n}/{len(sweep.runs)}] {run_summary(row)}")
                planned = sweep.runs[order[row["run_id"]]]
                if not other_code and (row["code_version"], row["settings"]) != (planned["code_version"],
                                                                                  planned["settings"]):
                    other_code = True
                    say("warning: a worker runs other tsforecast code or settings than this driver; its rows "
                        "record the worker's, and a sweep from this code re-runs them. Install the same "
                        "tsforecast on every node.")
            if outcome["failed"]:
                stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
                new = pd.DataFrame([{**{k: run[k] for k in KEY}, "run_id": bench.run_id(*(run[k] for k in KEY)),
                                     "error": outcome["error"], "failed_at": stamp} for run in outcome["failed"]])
                failures = pd.concat([failures, new], ignore_index=True) if len(failures) else new
                _write_failures(sweep.out, failures)
                bar.update(len(outcome["failed"]))
                say(f"failed: {group[0]['model']} {group[0]['dataset']} seed={group[0]['seed']} "
                    f"H={','.join(str(r['horizon']) for r in outcome['failed'])}: {outcome['error']}")
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        bar.close()
    # Runs finish in any order; the rows of this sweep go in plan order, as the sequential back-end writes them.
    new = sweep.results.iloc[n_before:]
    ranks = new["run_id"].map(order)
    sweep.results = pd.concat([sweep.results.iloc[:n_before], new.iloc[np.argsort(ranks.to_numpy(), kind="stable")]],
                              ignore_index=True)
    write_atomic(sweep.out / RESULTS_FILE, sweep.results.to_csv(index=False, float_format="%.6g"))


# ---------------------------------------------------------------------- searches
def parse_space(space: dict | str | Path, model: str) -> dict:
    """A search space as Ray Tune samplers, from JSON (a dict, a JSON text or a .json file).

    Keys: ``model__<name>`` for one of the model's hyperparameters (``tsforecast models``; e.g.
    ``model__d_model``) or a training setting (``learning_rate``, ``batch_size``, ``max_epochs``,
    ``patience``, ``lr_schedule``). Values: ``{"choice": [v1, v2, ...]}``, ``{"uniform": [low, high]}``,
    ``{"loguniform": [low, high]}``, ``{"randint": [low, high]}`` (high excluded), ``{"lograndint": [low,
    high]}``, ``{"quniform": [low, high, q]}``, ``{"qloguniform": [low, high, q]}``, ``{"qrandint": [low,
    high, q]}``, or a plain value (fixed in every trial). Example::

        {"model__d_model": {"choice": [64, 128, 256]}, "model__e_layers": {"choice": [1, 2]},
         "learning_rate": {"loguniform": [1e-4, 1e-2]}, "batch_size": 32}
    """
    from ray import tune as ray_tune

    from .models.registry import get_model_class

    if isinstance(space, (str, Path)):
        text = str(space)
        if not text.lstrip().startswith("{"):
            path = Path(text)
            if not path.is_file():
                raise FileNotFoundError(f"search space {text!r}: no such file; give a JSON file such as "
                                        '{"learning_rate": {"loguniform": [1e-4, 1e-2]}} or that JSON text')
            text = path.read_text()
        try:
            space = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"search space is not valid JSON: {err}") from err
    if not isinstance(space, dict) or not space:
        raise ValueError('the search space must be a non-empty JSON object, e.g. '
                         '{"learning_rate": {"loguniform": [1e-4, 1e-2]}}')
    model_keys = get_model_class(model)._get_param_names()
    samplers = {}
    for key, value in space.items():
        if key.startswith("model__"):
            if key[len("model__"):] not in model_keys:
                raise ValueError(f"search space key {key!r}: model {model!r} has no parameter "
                                 f"{key[len('model__'):]!r}; its parameters are "
                                 f"{', '.join('model__' + k for k in model_keys) or 'none'}")
        elif key not in TRAINING_KEYS:
            raise ValueError(f"search space key {key!r} is neither a model parameter (model__<name>, e.g. "
                             f"{'model__' + model_keys[0] if model_keys else 'model__d_model'}) nor a training "
                             f"setting ({', '.join(TRAINING_KEYS)})")
        if not isinstance(value, dict):
            samplers[key] = value  # fixed
            continue
        if len(value) != 1 or next(iter(value)) not in DISTRIBUTIONS:
            raise ValueError(f"search space key {key!r}: {value!r} is not one distribution; use one of "
                             f"{', '.join(DISTRIBUTIONS)}, e.g. {{\"choice\": [64, 128]}} or a plain value")
        kind, args = next(iter(value.items()))
        n_args = DISTRIBUTIONS[kind]
        if not isinstance(args, list) or not args or (n_args is not None and len(args) != n_args):
            shape = "a non-empty list of values" if n_args is None else f"a list of {n_args} numbers"
            raise ValueError(f"search space key {key!r}: {kind} takes {shape}, got {args!r}")
        samplers[key] = getattr(ray_tune, kind)(args) if kind == "choice" else getattr(ray_tune, kind)(*args)
    return samplers


def _split_config(config: dict) -> tuple[dict, dict]:
    """A trial's configuration as (model params, training settings)."""
    params = {k[len("model__"):]: v for k, v in config.items() if k.startswith("model__")}
    training = {k: v for k, v in config.items() if k in TRAINING_KEYS}
    return params, training


@contextlib.contextmanager
def _report_each_epoch(report: Callable[[dict], None]):
    """Report every epoch's validation MSE while the shared training loop runs (ASHA stops trials by epoch).
    The loop computes that MSE once per epoch with ``training.evaluate_loss`` and has no callback, so the
    function is wrapped for the duration of one fit in this (the trial's own) process."""
    from . import training

    original, epochs = training.evaluate_loss, []

    def evaluate_and_report(network, windows, batch_size, *args, **kwargs):
        loss = original(network, windows, batch_size, *args, **kwargs)
        epochs.append(loss)
        report({"val_mse": loss if math.isfinite(loss) else float("inf"), "epoch": len(epochs)})
        return loss

    training.evaluate_loss = evaluate_and_report
    try:
        yield epochs
    finally:
        training.evaluate_loss = original


def _fit(model, data, horizon, lookback, seed, model_params, training, config, device):
    from .forecaster import Forecaster

    params, train = _split_config(config)
    spec, train, settings = run_settings(model, data, horizon, {**model_params, **params}, {**training, **train},
                                         lookback)
    forecaster = Forecaster(model=spec, lookback=lookback, horizon=horizon, random_state=seed, freq=data.freq,
                            time_features=data.time_features, device=device, **train)
    return forecaster, settings


def _trial(config: dict, model, source, shipped, horizon, lookback, seed, model_params, training, device, threads,
           date_column, dayfirst) -> None:
    """One trial: fit on the training split, report the validation MSE after each epoch (the test split is
    never read). A model without gradient training reports its validation MSE once."""
    import torch
    from ray import tune as ray_tune

    torch.set_num_threads(threads)
    data = resolve_dataset(_worker_source(source, shipped), lookback, horizon, date_column, dayfirst)
    forecaster, _ = _fit(model, data, horizon, lookback, seed, model_params, training, config, device)
    with _report_each_epoch(ray_tune.report) as epochs:
        forecaster.fit(data.split.train, val_df=data.split.val)
    if not epochs:
        ray_tune.report({"val_mse": forecaster.evaluate(data.split.val, horizon=horizon)["mse"], "epoch": 0})


def _refit_and_test(config, model, source, shipped, horizon, lookback, seed, model_params, training, device,
                    threads, date_column, dayfirst) -> dict:
    """The best configuration fitted again (all epochs, early stopping on validation) and scored on every
    test window."""
    import torch

    torch.set_num_threads(threads)
    data = resolve_dataset(_worker_source(source, shipped), lookback, horizon, date_column, dayfirst)
    forecaster, settings = _fit(model, data, horizon, lookback, seed, model_params, training, config, device)
    forecaster.fit(data.split.train, val_df=data.split.val)
    val = forecaster.evaluate(data.split.val, horizon=horizon)
    test = forecaster.evaluate(data.split.test, horizon=horizon)
    return {"val_mse": val["mse"], "test_mse": test["mse"], "test_mae": test["mae"],
            "n_test_windows": test["n_windows"], "epochs": forecaster.training_.epochs,
            "fit_seconds": forecaster.fit_seconds_, "device": str(forecaster.device_), "settings": json.loads(settings)}


@dataclass
class TuneResult:
    """What :func:`tune` found: the best configuration (by validation MSE), its refit's test scores, every trial."""
    best_config: dict
    best_val_mse: float
    #: the refit of the best configuration: val_mse, test_mse, test_mae, n_test_windows, epochs, ...
    test: dict
    trials: pd.DataFrame
    out: Path


def tune(model: str, dataset: str, horizon: int, space: dict | str | Path, trials: int = 20, lookback: int = 96,
         seed: int = 0, out: str | Path | None = None, model_params: dict | None = None,
         training: dict | None = None, device: str = "auto", address: str | None = None,
         num_cpus: int | None = None, cpus_per_trial: float = 1, gpus_per_trial: float | None = None,
         grace_period: int = 1, reduction_factor: float = 2, date_column: str | None = None,
         dayfirst: bool = False, log: Callable[[str], None] = print) -> TuneResult:
    """Search ``space`` (:func:`parse_space`) with ``trials`` random trials on Ray Tune for ``model`` on
    ``dataset`` (a bundled name or a CSV of your own, split as by ``tsforecast bench``) at ``horizon``.

    Trials are scored on the validation split's MSE only; ASHA (``grace_period`` epochs before a first
    cut, keeping 1/``reduction_factor`` of the trials at each rung) stops poor ones early. The best
    trial's configuration is refitted with the same seed and scored on the test split. ``model_params``
    and ``training`` are the fixed settings the space's keys override. Writes ``out/trials.csv`` (one row
    per trial: its configuration, best validation MSE, epochs reported, status, seconds, error) and
    ``out/best.json``; ``out`` defaults to ``tune/<model>_<dataset>_H<horizon>``."""
    require_ray()
    from ray import tune as ray_tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import BasicVariantGenerator

    from .models.registry import build_spec

    model = build_spec(model, model_params or {}).name
    samplers = parse_space(space, model)
    if isinstance(trials, bool) or not isinstance(trials, (int, np.integer)) or trials < 1:
        raise ValueError(f"trials must be a positive integer, got {trials!r}")
    data = resolve_dataset(dataset, lookback, horizon, date_column, dayfirst)  # reads and checks it once, here
    out = Path(out) if out is not None else Path("tune") / f"{model}_{data.name}_H{horizon}"
    model_params, training = dict(model_params or {}), dict(training or {})

    def limits(config: dict) -> tuple[int, int]:
        """A trial's resolved (max_epochs, patience): the family's defaults under the fixed and the sampled."""
        params, train = _split_config(config)
        resolved = json.loads(run_settings(model, data, horizon, {**model_params, **params}, {**training, **train},
                                           lookback)[2])["training"]
        return int(resolved.get("max_epochs", 1)), int(resolved.get("patience", 1))

    # ASHA's last rung: the most epochs any trial can train
    max_t = limits({})[0]
    if "max_epochs" in samplers:
        bound = samplers["max_epochs"]
        max_t = int(max(bound.categories) if hasattr(bound, "categories") else getattr(bound, "upper", bound))
    with ray_session(address, num_cpus) as ray:
        cpus, gpus, device, threads = _resources(ray, device, cpus_per_trial, gpus_per_trial, "trial")
        shipped = _payload(dataset)  # with_parameters puts it in the object store
        fixed = dict(model=model, source=dataset, shipped=shipped, horizon=horizon, lookback=lookback, seed=seed,
                     model_params=model_params, training=training, device=device, threads=threads,
                     date_column=date_column, dayfirst=dayfirst)
        trainable = ray_tune.with_resources(ray_tune.with_parameters(_trial, **fixed), {"cpu": cpus, "gpu": gpus})
        storage = Path(tempfile.mkdtemp(prefix="tsforecast-tune-"))
        started = time.perf_counter()
        try:
            tuner = ray_tune.Tuner(
                trainable, param_space=samplers,
                tune_config=ray_tune.TuneConfig(
                    metric="val_mse", mode="min", num_samples=trials, reuse_actors=True,
                    search_alg=BasicVariantGenerator(random_state=seed),
                    scheduler=ASHAScheduler(time_attr="training_iteration", max_t=max(1, max_t),
                                            grace_period=grace_period, reduction_factor=reduction_factor)),
                run_config=ray_tune.RunConfig(name="search", storage_path=str(storage), verbose=0))
            with _quiet_tune():
                grid = tuner.fit()
            table = _trials_table(grid, list(samplers), limits)
        finally:
            shutil.rmtree(storage, ignore_errors=True)
        search_seconds = time.perf_counter() - started
        ok = table[table["error"] == ""].dropna(subset=["val_mse"])
        if ok.empty:
            write_atomic(out / TRIALS_FILE, table.to_csv(index=False))
            raise ValueError(f"all {len(table)} trials failed (see {out / TRIALS_FILE}); first error: "
                             f"{table['error'].iloc[0]}")
        best = table.loc[ok["val_mse"].idxmin()]
        best_config = {k: _plain(best[k]) for k in samplers}
        log(f"{len(table)} trials in {search_seconds:.1f}s; best validation MSE {best['val_mse']:.4f} with "
            f"{json.dumps(best_config)}; refitting it and scoring on the test split")
        refit = ray.remote(_refit_and_test).options(num_cpus=cpus, num_gpus=gpus)
        test = ray.get(refit.remote(best_config, **fixed))
    write_atomic(out / TRIALS_FILE, table.to_csv(index=False, float_format="%.6g"))
    summary = {"model": model, "dataset": data.name, "horizon": horizon, "lookback": lookback, "seed": seed,
               "trials": len(table), "search_seconds": round(search_seconds, 1), "best_trial": best["trial_id"],
               "best_config": best_config, "best_val_mse": float(best["val_mse"]), "refit": test,
               "space": {k: str(v) for k, v in samplers.items()}, "model_params": model_params, "training": training,
               "code_version": bench.code_version(model),
               "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    write_atomic(out / BEST_FILE, json.dumps(summary, indent=2, default=str) + "\n")
    log(f"test MSE {test['test_mse']:.4f} MAE {test['test_mae']:.4f} over {test['n_test_windows']} windows "
        f"-> {out / BEST_FILE}, {out / TRIALS_FILE}")
    return TuneResult(best_config, float(best["val_mse"]), test, table, out)


@contextlib.contextmanager
def _quiet_tune():
    """No experiment box, status table or TensorBoard hints on the console (Tune reads the switch when a
    search starts). The per-trial logs stay on: the trials table is read from them."""
    switches = {"RAY_AIR_NEW_OUTPUT": "0"}
    saved = {k: os.environ.get(k) for k in switches}
    os.environ.update(switches)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _plain(value):
    """A numpy scalar from the trials table as a JSON-ready Python value."""
    return value.item() if isinstance(value, np.generic) else value


def _trials_table(grid, keys: list[str], limits: Callable[[dict], tuple[int, int]]) -> pd.DataFrame:
    """One row per trial: its configuration, best validation MSE and epoch, epochs reported, how it ended.
    ``limits(config)``: the trial's resolved (max_epochs, patience), to tell the ways a trial ends apart."""
    rows = []
    for result in grid:
        history = result.metrics_dataframe
        row = {"trial_id": (result.metrics or {}).get("trial_id", ""), **{k: result.config.get(k) for k in keys}}
        if history is not None and len(history) and "val_mse" in history:
            best = int(history["val_mse"].to_numpy().argmin())
            row.update(val_mse=float(history["val_mse"].min()), best_epoch=int(history["epoch"].iloc[best]),
                       epochs=int(history["epoch"].max()), seconds=float(history["time_total_s"].max()))
        else:
            row.update(val_mse=np.nan, best_epoch=np.nan, epochs=0, seconds=np.nan)
        if result.error is not None:
            row["status"], row["error"] = "error", _error_text(result.error)
        else:
            max_epochs, patience = limits(result.config)
            if row["epochs"] == 0 or row["epochs"] >= max_epochs:
                row["status"] = "finished"
            elif row["epochs"] - row["best_epoch"] >= patience:
                row["status"] = "early stopping"  # the training loop's own patience
            else:
                row["status"] = "stopped by ASHA"
            row["error"] = ""
        rows.append(row)
    return pd.DataFrame(rows).sort_values("trial_id", kind="stable").reset_index(drop=True)
