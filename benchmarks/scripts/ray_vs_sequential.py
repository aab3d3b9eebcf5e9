"""The linear_l96 sweep (naive, AR, AR-Net on ETTh1, ETTh2, ETTm1, ETTm2, Weather x 96-720: 60 runs) run
twice side by side on this machine: the sequential back-end, then local Ray (one CPU per run), each into a
fresh folder, timing the whole command (planning, Ray start and stop, figures included) and the machine's
load. Writes benchmarks/results/distributed_linear_l96/{timing.csv, results.csv, report.md, figures} (the
Ray run's) and checks both back-ends gave the same figures.

    .venv/bin/python benchmarks/scripts/ray_vs_sequential.py [--datasets ETTh1,ETTh2]

``--datasets`` runs part of the sweep (all five by default; the committed figures: see benchmarks/README.md).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "benchmarks" / "results" / "distributed_linear_l96"
SWEEP = ["--models", "naive,ar,arnet", "--horizons", "96,192,336,720", "--lookback", "96", "--seeds", "0"]
BIN = REPO / ".venv" / "bin" / "tsforecast"


def timed(args: list[str], env: dict) -> dict:
    load = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.run([str(BIN), *args], capture_output=True, text=True, env={**os.environ, **env})
    wall = time.perf_counter() - started
    if proc.returncode:
        sys.exit(f"failed: {' '.join(args)}\n{proc.stderr[-3000:]}")
    return {"wall_s": round(wall, 1), "load_1min_before": round(load, 2), "load_1min_after": round(os.getloadavg()[0], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="ETTh1,ETTh2,ETTm1,ETTm2,Weather")
    sweep = SWEEP + ["--datasets", parser.parse_args().datasets]
    scratch = Path(tempfile.mkdtemp(prefix="ray-vs-seq-"))
    rows = []
    # One torch thread per run in both: the sequential back-end one run at a time, Ray two at a time (2 cores).
    # (Torch's default, a thread per core, is far slower for these small models when the cores are shared.)
    for backend, extra in (("sequential", []), ("ray", ["--backend", "ray", "--cpus-per-run", "1"])):
        out = scratch / backend
        rows.append({"backend": backend, "cores": os.cpu_count(), "torch_threads_per_run": 1,
                     **timed(["bench", *sweep, "--out", str(out), *extra], {"OMP_NUM_THREADS": "1"})})
        results = pd.read_csv(out / "results.csv")
        rows[-1].update(runs=len(results), sum_fit_s=round(results["train_seconds"].sum(), 1),
                        sum_test_s=round(results["predict_seconds"].sum(), 1))
        print(rows[-1], flush=True)
    seq, ray = (pd.read_csv(scratch / b / "results.csv") for b in ("sequential", "ray"))
    assert list(seq["run_id"]) == list(ray["run_id"]), "the back-ends planned different runs"
    diff = (seq["mse"] - ray["mse"]).abs().max()
    timing = pd.DataFrame(rows)
    timing["max_abs_mse_diff_vs_sequential"] = [0.0, diff]
    timing["s_per_run"] = (timing["wall_s"] / timing["runs"]).round(2)
    if OUT.exists():
        shutil.rmtree(OUT)
    shutil.copytree(scratch / "ray", OUT)
    timing.to_csv(OUT / "timing.csv", index=False)
    print(timing.to_string(index=False))
    shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
