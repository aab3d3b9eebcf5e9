"""bf16 on a CPU with bf16 matrix units: does validation accuracy hold, and what does it save?

    OMP_NUM_THREADS=1 nice python benchmarks/scripts/precision_cpu.py --out benchmarks/results/precision \
        [--seeds 0 1 --lookback 192 --llm-layers 4 --train-stride 8 --max-epochs 2 --itransformer-epochs 1]

Two comparisons on ETTh1's protocol split, every arm with the same seed, data and budget:

* AutoTimes (default SmolLM2, its first ``llm_layers`` blocks, look-back 192, every ``train_stride``-th
  training window, ``max_epochs`` epochs, the model's defaults otherwise): ``llm_dtype="float32"`` (what
  the committed CPU figures ran in) against ``llm_dtype="auto"`` (bf16 autocast of the LLM where the CPU
  has bf16 units; the adapters stay fp32).
* iTransformer (look-back 96, H=96, its defaults, ``itransformer_epochs`` epochs): ``precision="fp32"``
  against ``precision="bf16"`` (the shared training loop's autocast: the whole network).

Per run: validation MSE (best epoch), test MSE/MAE at H=96 (scaled data, every test window), seconds
per epoch (training steps + validation pass), the test ``evaluate`` time and ``training_.precision``.
Rows are appended to ``results.csv`` as each run finishes (a rerun skips the rows there). Times are wall
times on a shared machine: compare them within one run of this script only.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from tsforecast import Forecaster, protocol_split
from tsforecast.bench import append_row, machine_description, read_rows
from tsforecast.models import AutoTimes
from tsforecast.precision import cpu_bf16_support

FIELDS = ["model", "arm", "setting", "precision_used", "seed", "lookback", "horizon", "epochs", "best_epoch", "val_mse",
          "mse", "mae", "n_windows", "epoch_s", "train_step_s", "val_s", "fit_s", "infer_s", "threads", "cpu_bf16",
          "machine"]


def runs(args) -> list[tuple]:
    """(model, arm, setting text, Forecaster kwargs, lookback) per arm, fp32 first within each pair."""
    autotimes = dict(llm_layers=args.llm_layers, train_stride=args.train_stride)
    out = [("itransformer", arm, f"precision={arm!r}",
            dict(model="itransformer", max_epochs=args.itransformer_epochs, precision=arm), 96)
           for arm in ("fp32", "bf16")]
    for dtype, arm in (("float32", "fp32"), ("auto", "bf16")):
        out.append(("autotimes", arm, f"llm_dtype={dtype!r}",
                    dict(model=AutoTimes(llm_dtype=dtype, **autotimes), max_epochs=args.max_epochs), args.lookback))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--lookback", type=int, default=192)
    parser.add_argument("--llm-layers", type=int, default=4)
    parser.add_argument("--train-stride", type=int, default=8)
    parser.add_argument("--max-epochs", type=int, default=2)
    parser.add_argument("--itransformer-epochs", type=int, default=1)
    parser.add_argument("--horizon", type=int, default=96)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.csv"
    done = {(row["model"], row["arm"], int(row["seed"])) for row in read_rows(results)}
    splits = {}
    for seed in args.seeds:
        for model, arm, setting, kwargs, lookback in runs(args):
            if (model, arm, seed) in done:
                continue
            split = splits.setdefault(lookback, protocol_split("ETTh1", lookback))
            forecaster = Forecaster(lookback=lookback, horizon=args.horizon, random_state=seed, freq="h",
                                    time_features="h", device="cpu", **kwargs)
            started = time.perf_counter()
            forecaster.fit(split.train, val_df=split.val)
            fit_s = time.perf_counter() - started
            started = time.perf_counter()
            scores = forecaster.evaluate(split.test)
            infer_s = time.perf_counter() - started
            result = forecaster.training_
            epoch_s, val_s = np.mean(result.epoch_seconds), np.mean(result.val_seconds)
            row = {"model": model, "arm": arm, "setting": setting, "precision_used": result.precision, "seed": seed,
                   "lookback": lookback, "horizon": args.horizon, "epochs": result.epochs,
                   "best_epoch": result.best_epoch, "val_mse": f"{min(result.val_loss):.4f}",
                   "mse": f"{scores['mse']:.4f}", "mae": f"{scores['mae']:.4f}", "n_windows": scores["n_windows"],
                   "epoch_s": f"{epoch_s:.1f}", "train_step_s": f"{epoch_s - val_s:.1f}", "val_s": f"{val_s:.1f}",
                   "fit_s": f"{fit_s:.1f}", "infer_s": f"{infer_s:.1f}", "threads": torch.get_num_threads(),
                   "cpu_bf16": cpu_bf16_support() or "", "machine": machine_description()}
            append_row(results, row, FIELDS)
            print(" ".join(f"{k}={row[k]}" for k in FIELDS[:-1]), flush=True)


if __name__ == "__main__":
    main()
