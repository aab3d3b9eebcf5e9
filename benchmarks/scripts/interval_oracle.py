"""The narrowest static interval per horizon step and channel that covers the nominal share of the TEST
targets, found on those targets themselves (an oracle no method can use): a floor for the width of any
interval calibrated per step and channel, to read the split vs adaptive widths of ``results/intervals``
against. AR(96), H=96, protocol splits, fitted on train with val_df = validation (as
``interval_coverage.py``); the oracle radius of a step and channel is the ``ceil(level x n)``-th smallest
of its ``n`` test errors (so it covers at least the level on every step and channel), the split radius
the conformal quantile of the validation errors (what ``Forecaster`` uses). Width in the data's units,
mean over windows, steps and channels, as ``evaluate`` reports it. Neural models are read from the
``--model-cache`` of ``interval_coverage.py`` (the same fits as its table); AR is refitted (closed form).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/scripts/interval_oracle.py --models ar,itransformer,smamba \
        --model-cache OUT/models --out benchmarks/results/intervals
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd

from tsforecast import Forecaster, protocol_split
from tsforecast.bench import machine_description
from tsforecast.intervals import conformal_quantile
from tsforecast.io import write_atomic

LEVELS = (80, 95)
FREQ = {"Weather": "10min"}


def oracle_row(forecaster: Forecaster, model: str, dataset: str, split, horizon: int) -> dict:
    scale = forecaster._target_scaler(0).scale_
    # the test windows' scores, computed as the calibration's are
    test = forecaster._window_errors(*forecaster._evaluation_series(split.test, horizon), horizon).astype(np.float64)
    calibration = forecaster.intervals_.scores_for(horizon, forecaster._calibration_scores).astype(np.float64)
    row = {"model": model, "dataset": dataset, "horizon": horizon, "n_test_windows": len(test)}
    for level in LEVELS:
        k = math.ceil(level / 100 * len(test))
        oracle = np.partition(test, k - 1, axis=0)[k - 1]
        split_radius = conformal_quantile(calibration, level)
        for name, radius in (("oracle", oracle), ("split", split_radius)):
            row[f"{name}_coverage_{level}"] = 100 * (test <= radius).mean()
            row[f"{name}_width_{level}"] = (2 * radius * scale).mean()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="ar")
    parser.add_argument("--datasets", default="ETTh1,ETTh2,ETTm1,ETTm2,Weather")
    parser.add_argument("--max-epochs", type=int, default=2, help="the neural fits' budget (cache folder name)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model-cache", default=None, help="interval_coverage.py's fitted models")
    parser.add_argument("--lookback", type=int, default=96)
    parser.add_argument("--horizon", type=int, default=96)
    parser.add_argument("--out", default="benchmarks/results/intervals")
    args = parser.parse_args()
    rows = []
    for dataset in args.datasets.split(","):
        split = protocol_split(dataset, lookback=args.lookback)
        for model in args.models.split(","):
            if model == "ar":
                forecaster = Forecaster(model="ar", lookback=args.lookback, horizon=args.horizon,
                                        freq=FREQ.get(dataset), time_features="h").fit(split.train, val_df=split.val)
            else:
                name = f"{model}_{dataset}_H{args.horizon}_L{args.lookback}_e{args.max_epochs}_s{args.seed}"
                cached = None if args.model_cache is None else Path(args.model_cache) / name
                if cached is None or not cached.exists():
                    print(f"skipped {model} {dataset}: no fitted model at {cached}", flush=True)
                    continue
                forecaster = Forecaster.load(cached)
            rows.append(oracle_row(forecaster, model, dataset, split, args.horizon))
            print({k: round(v, 3) if isinstance(v, float) else v for k, v in rows[-1].items()}, flush=True)
    frame = pd.DataFrame(rows).assign(machine=machine_description())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "oracle.csv", frame.to_csv(index=False, float_format="%.6g"))


if __name__ == "__main__":
    main()
