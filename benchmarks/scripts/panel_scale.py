"""Scale of the panel path: 1,000 series x 500 hourly steps, one epoch of AR-Net and of a small iTransformer,
then a predict over every series; next to the wide path on one series with the same number of training windows.

Each (model, layout) arm runs in a fresh subprocess (1 torch thread, OMP_NUM_THREADS=1), so its peak RSS is its
own. Per arm:

* baseline RSS: after the imports and a warm-up fit of the same model on 300 wide rows (torch's kernels,
  lazily imported modules and the allocator are initialized before anything is counted);
* data: the input frame's ``memory_usage(deep=True)`` (long: ``unique_id`` str, ``ds`` datetime64, ``y``
  float64; wide: the DatetimeIndex and ``y``);
* model: the network's parameter bytes x 5 (weights, gradients, Adam's two moments, the best-epoch copy);
* peak RSS: the kernel's high-water mark (``ru_maxrss``, reset through /proc/self/clear_refs after the
  baseline and again before predict), over building the frame, ``fit`` and ``predict``;
* ``rss_over_data_model = (peak - baseline) / (data + model)``: the target is <= 1.5;
* time per window: the training loop's CPU seconds (its validation pass left out) over ``training_.n_windows``;
  the target is panel <= 1.2 x wide. CPU rather than wall time because the machine is shared: other
  processes stretch a run's wall time by up to 2x and barely move its CPU time (both are in results.csv:
  ``seconds_per_window`` is the wall-clock ``training_.epoch_seconds[0] - val_seconds[0]`` per window).
  ``fit_cpu_seconds`` (read, scale, encode, train, validate, calibrate) per window is reported beside it.

Settings: lookback 48, horizon 12, max_epochs 1, batch_size 256, validation_fraction 0.1 (the default: the
last 10% of each series is held out and scored once), random_state 0. The wide series is long enough that its
training rows give exactly the panel's number of training windows.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/scripts/panel_scale.py \
        --out benchmarks/results/panel_scale --repeats 3
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOOKBACK, HORIZON, BATCH, FRACTION = 48, 12, 256, 0.1
MODELS = {"arnet": {}, "itransformer": {"d_model": 64, "e_layers": 1, "n_heads": 4}}
COLUMNS = ["model", "layout", "n_series", "steps", "rows", "n_windows", "fit_seconds", "train_seconds",
           "seconds_per_window", "fit_seconds_per_window", "fit_cpu_seconds", "train_cpu_seconds",
           "cpu_seconds_per_window", "fit_cpu_seconds_per_window", "predict_seconds", "predict_frame_seconds",
           "peak_rss_mb", "fit_peak_rss_mb", "predict_peak_rss_mb", "baseline_rss_mb", "data_mb", "data_rss_mb",
           "model_mb", "rss_over_data_model"]
MB = 2**20


# ---------------------------------------------------------------------------- in the child process
def _rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _reset_peak() -> None:
    # "5" resets the process' RSS high-water mark (Linux >= 4.0), which is what ru_maxrss reports
    Path("/proc/self/clear_refs").write_text("5")


def panel_values(n_series: int, steps: int, seed: int = 0):
    """(n_series, steps) hourly series with varied levels, scales, daily/weekly seasonality and AR(1) noise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    level = rng.lognormal(3.0, 1.5, (n_series, 1))
    scale = level * rng.uniform(0.05, 0.5, (n_series, 1))
    daily = rng.uniform(0.0, 1.0, (n_series, 1)) * np.sin(2 * np.pi * (t / 24 + rng.uniform(0, 1, (n_series, 1))))
    weekly = rng.uniform(0.0, 0.5, (n_series, 1)) * np.sin(2 * np.pi * (t / 168 + rng.uniform(0, 1, (n_series, 1))))
    noise = rng.standard_normal((n_series, steps))
    phi = rng.uniform(0.3, 0.9, (n_series, 1))
    for k in range(1, steps):  # AR(1) noise, vectorized over series
        noise[:, k] += phi[:, 0] * noise[:, k - 1]
    return level + scale * (daily + weekly + 0.3 * noise)


def long_frame(values, n_series: int, steps: int):
    """The long frame: unique_id (str), ds (hourly, each series starting up to 4 weeks after 2020-01-01), y."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    starts = np.datetime64("2020-01-01T00", "us") + rng.integers(0, 24 * 28, n_series).astype("timedelta64[h]")
    ds = (starts[:, None] + np.arange(steps).astype("timedelta64[h]")).ravel()
    # the ids repeated inside pyarrow (take): no numpy string temporary
    ids = pd.array([f"s{i:04d}" for i in range(n_series)], dtype="str").take(np.repeat(np.arange(n_series), steps))
    return pd.DataFrame({"unique_id": ids, "ds": ds, "y": values}, copy=False)


def wide_rows(n_windows: int, output_len: int) -> int:
    """The length of one wide series whose training rows (after the validation_fraction hold-out) give
    exactly ``n_windows`` training windows."""
    from tsforecast.data.splits import holdout_split

    rows = int((n_windows + LOOKBACK + output_len - 1) / (1 - FRACTION))
    for candidate in range(rows - 20, rows + 20):
        if holdout_split(candidate, FRACTION, LOOKBACK, output_len) - LOOKBACK - output_len + 1 == n_windows:
            return candidate
    raise RuntimeError(f"no wide length gives {n_windows} training windows")


def wide_frame(values):
    """One series: ``values`` (the panel's series laid end to end), hourly from 2020-01-01."""
    import pandas as pd

    return pd.DataFrame({"y": values}, index=pd.date_range("2020-01-01", periods=len(values), freq="h"), copy=False)


def load_values(path: str, rows: int):
    """``rows`` values read straight into one array (no temporary: the frame's memory is the data's)."""
    import numpy as np

    return np.fromfile(path, dtype=np.float64, count=rows)


def _cpu_timers() -> dict:
    """CPU seconds of the training loop and of its validation pass, accumulated per call: a run's CPU time
    barely moves when other processes share the cores, its wall time does (measurement only: the functions
    are wrapped, not changed)."""
    import tsforecast.forecaster as forecaster_module
    import tsforecast.training as training_module

    spent = {"train": 0.0, "evaluate_loss": 0.0}

    def timed(module, name):
        original = getattr(module, name)

        def wrapper(*args, **kwargs):
            started = time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                spent[name] += time.process_time() - started
        setattr(module, name, wrapper)

    timed(forecaster_module, "train")
    timed(training_module, "evaluate_loss")
    return spent


def child(arm: dict) -> dict:
    import gc
    import warnings

    import numpy as np
    import torch

    from tsforecast import Forecaster
    from tsforecast.models.registry import get_model_class

    torch.set_num_threads(1)

    def forecaster():
        spec = get_model_class(arm["model"])(**MODELS[arm["model"]])
        return Forecaster(model=spec, lookback=LOOKBACK, horizon=HORIZON, max_epochs=1, batch_size=BATCH,
                          validation_fraction=FRACTION, random_state=0)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        forecaster().fit(wide_frame(panel_values(1, 300)[0]))  # warm-up: kernels, lazy imports, allocator
    gc.collect()
    baseline = _rss_mb()
    _reset_peak()

    if arm["layout"] == "panel":
        values = load_values(arm["values"], arm["n_series"] * arm["steps"])
        frame = long_frame(values, arm["n_series"], arm["steps"])
    else:
        frame = wide_frame(load_values(arm["values"], arm["rows"]))
    data_mb = frame.memory_usage(deep=True).sum() / MB
    gc.collect()
    data_rss = _rss_mb() - baseline  # what holding the frame costs here (allocator slack of building it included)
    cpu = _cpu_timers()
    f = forecaster()
    started, cpu_started = time.perf_counter(), time.process_time()
    f.fit(frame)
    fit_seconds, fit_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    fit_peak = _peak_mb()
    model_mb = 5 * sum(p.numel() * p.element_size() for p in f.network_.parameters()) / MB

    _reset_peak()
    started = time.perf_counter()
    forecast = f.predict()
    predict_seconds = time.perf_counter() - started
    started = time.perf_counter()
    again = f.predict(frame)  # the same forecasts, from the frame read again
    predict_frame_seconds = time.perf_counter() - started
    predict_peak = _peak_mb()
    if not np.allclose(forecast.select_dtypes("number").to_numpy(), again.select_dtypes("number").to_numpy()):
        raise AssertionError("predict() and predict(frame) differ")
    n_forecasts = len(forecast) if arm["layout"] == "panel" else 1
    if arm["layout"] == "panel" and n_forecasts != arm["n_series"] * HORIZON:
        raise AssertionError(f"predict gave {n_forecasts} rows, expected {arm['n_series'] * HORIZON}")

    training = f.training_
    train_seconds = training.epoch_seconds[0] - training.val_seconds[0]
    train_cpu = cpu["train"] - cpu["evaluate_loss"]
    peak = max(fit_peak, predict_peak)
    return {"model": arm["model"], "layout": arm["layout"],
            "n_series": arm["n_series"] if arm["layout"] == "panel" else 1,
            "steps": arm["steps"] if arm["layout"] == "panel" else len(frame), "rows": len(frame),
            "n_windows": training.n_windows, "output_len": int(f.network_.output_len),
            "fit_seconds": fit_seconds, "train_seconds": train_seconds,
            "seconds_per_window": train_seconds / training.n_windows,
            "fit_seconds_per_window": fit_seconds / training.n_windows,
            "train_cpu_seconds": train_cpu, "cpu_seconds_per_window": train_cpu / training.n_windows,
            "fit_cpu_seconds": fit_cpu, "fit_cpu_seconds_per_window": fit_cpu / training.n_windows,
            "predict_seconds": predict_seconds, "predict_frame_seconds": predict_frame_seconds,
            "peak_rss_mb": peak, "fit_peak_rss_mb": fit_peak, "predict_peak_rss_mb": predict_peak,
            "baseline_rss_mb": baseline, "data_mb": data_mb, "data_rss_mb": data_rss, "model_mb": model_mb,
            "rss_over_data_model": (peak - baseline) / (data_mb + model_mb),
            "val_seconds": training.val_seconds[0], "batch_size": training.batch_size,
            "torch_threads": torch.get_num_threads()}


# ---------------------------------------------------------------------------- the driver
def run_arm(arm: dict) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(arm)], env=env, capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"arm {arm} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs of each arm (panel and wide alternating); the summary takes the fastest")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    if not args.out:
        parser.error("--out is required")
    import pandas as pd

    from tsforecast.bench import machine_description

    values = panel_values(args.series, args.steps).ravel()  # written once; each arm reads it into one array
    tmp = tempfile.TemporaryDirectory()
    path = str(Path(tmp.name) / "values.f64")
    values.tofile(path)
    rows = []
    for repeat in range(args.repeats):  # panel and wide alternate, so a change in the machine's load hits both
        for model in args.models.split(","):
            panel = run_arm({"model": model, "layout": "panel", "n_series": args.series, "steps": args.steps,
                             "values": path})
            print(json.dumps(panel), flush=True)
            length = wide_rows(panel["n_windows"], panel["output_len"])
            if length > len(values):
                raise ValueError(f"the wide arm needs {length} rows, the panel has {len(values)} values")
            wide = run_arm({"model": model, "layout": "wide", "n_series": args.series, "steps": args.steps,
                            "rows": length, "values": path})
            print(json.dumps(wide), flush=True)
            if wide["n_windows"] != panel["n_windows"]:
                raise AssertionError(f"wide arm has {wide['n_windows']} windows, panel {panel['n_windows']}")
            rows += [{**panel, "repeat": repeat}, {**wide, "repeat": repeat}]
    table = pd.DataFrame(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table[["repeat", *COLUMNS]].to_csv(out / "results.csv", index=False, float_format="%.6g")
    summary = summarize(table)
    summary.to_csv(out / "summary.csv", index=False, float_format="%.4g")
    print(f"machine: {machine_description()} (nproc {os.cpu_count()}; 1 torch thread per arm)")
    print(summary.to_string(index=False))


def summarize(table):
    """Per model: each arm's fastest repeat for times (other processes on a shared machine only ever slow a
    run down) and its largest peak RSS, and the two ratios with their targets."""
    import pandas as pd

    groups = table.groupby(["model", "layout"], sort=False)
    best = groups[[c for c in COLUMNS if "seconds" in c]].min().join(groups[["rss_over_data_model"]].max())
    rows = []
    for model in table["model"].unique():
        panel, wide = best.loc[(model, "panel")], best.loc[(model, "wide")]
        rows.append({"model": model, "repeats": int(table["repeat"].max()) + 1,
                     "cpu_per_window_panel_over_wide": panel.cpu_seconds_per_window / wide.cpu_seconds_per_window,
                     "target_time (<=1.2)": panel.cpu_seconds_per_window / wide.cpu_seconds_per_window <= 1.2,
                     "wall_per_window_panel_over_wide": panel.seconds_per_window / wide.seconds_per_window,
                     "fit_cpu_per_window_panel_over_wide":
                         panel.fit_cpu_seconds_per_window / wide.fit_cpu_seconds_per_window,
                     "rss_over_data_model_panel": panel.rss_over_data_model,
                     "target_rss (<=1.5)": panel.rss_over_data_model <= 1.5,
                     "rss_over_data_model_wide": wide.rss_over_data_model})
    return pd.DataFrame(rows)

if __name__ == "__main__":
    main()
