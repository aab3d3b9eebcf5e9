"""AR-Net's default learning rate and batch size, chosen on the VALIDATION split only.

For each dataset (ETTh1, ETTm1, Weather; lookback 96) the LTSF protocol split is taken
(``tsforecast.protocol_split``); every (learning rate, batch size) of the grid fits AR-Net on the
training split with early stopping on the validation split (seed 0, the other settings AR-Net's
defaults), and OLS AR is fitted once as the yardstick. Recorded per run, on the validation split only:

* ``val_one_step_mse``: the best epoch's one-step validation MSE (what early stopping sees);
* ``val_mse_h96``: MSE of the H=96 rollout over every validation window (``Forecaster.evaluate``).

The choice is the setting with the lowest mean, over the three datasets, of ``val_mse_h96`` divided by
OLS's ``val_mse_h96`` (AR-Net is a one-step model: the horizon does not change its training, only
the rollout it is scored by). The test split is never touched.

Each finished run is appended to the CSV at once; a rerun skips the runs already there.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/scripts/arnet_defaults.py \\
        --out benchmarks/results/arnet_defaults/validation.csv
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from tsforecast import ARNet, Forecaster, protocol_split
from tsforecast.data.datasets import dataset_info
from tsforecast.bench import append_row, read_rows

DATASETS = ("ETTh1", "ETTm1", "Weather")
LEARNING_RATES = (1e-3, 3e-3, 1e-2)
BATCH_SIZES = (128, 512)
LOOKBACK, HORIZON = 96, 96
FIELDS = ["dataset", "model", "learning_rate", "batch_size", "val_one_step_mse", "val_mse_h96", "epochs",
          "best_epoch", "fit_seconds", "torch_threads"]


def done_keys(path: Path) -> set[tuple[str, str, str, str]]:
    return {(r["dataset"], r["model"], r["learning_rate"], r["batch_size"]) for r in read_rows(path)}


def append(path: Path, row: dict) -> None:
    append_row(path, row, FIELDS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    args = parser.parse_args()
    out = Path(args.out)
    done = done_keys(out)
    for dataset in args.datasets.split(","):
        split = protocol_split(dataset, LOOKBACK)
        freq = dataset_info(dataset).freq  # as `tsforecast bench`: Weather has a duplicated timestamp
        settings = [("ar", "", "")] + [("arnet", lr, bs) for lr in LEARNING_RATES for bs in BATCH_SIZES]
        for model, lr, bs in settings:
            if (dataset, model, str(lr), str(bs)) in done:
                continue
            start = time.perf_counter()
            if model == "ar":
                f = Forecaster(model="ar", lookback=LOOKBACK, horizon=HORIZON, freq=freq).fit(split.train)
                one_step, epochs, best = "", "", ""
            else:
                f = Forecaster(model=ARNet(), lookback=LOOKBACK, horizon=HORIZON, learning_rate=lr, batch_size=bs,
                               freq=freq, random_state=0).fit(split.train, val_df=split.val)
                one_step, epochs, best = min(f.training_.val_loss), f.training_.epochs, f.training_.best_epoch
            seconds = time.perf_counter() - start
            row = {"dataset": dataset, "model": model, "learning_rate": lr, "batch_size": bs,
                   "val_one_step_mse": one_step, "val_mse_h96": f.evaluate(split.val)["mse"], "epochs": epochs,
                   "best_epoch": best, "fit_seconds": round(seconds, 2), "torch_threads": torch.get_num_threads()}
            append(out, row)
            print(row, flush=True)


if __name__ == "__main__":
    main()
