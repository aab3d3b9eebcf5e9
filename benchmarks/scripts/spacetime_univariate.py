"""SpaceTime in its paper's setting: univariate OT, lookback 336, the LTSF splits (Informer's 12/4/4
months for ETT), StandardScaler fitted on the train split of OT, MSE/MAE on the scaled OT series over
every test window. ``tsforecast bench`` runs every channel (multivariate protocol), hence this script.

    python benchmarks/scripts/spacetime_univariate.py --dataset ETTh1 --horizons 24,48,168,336,720 \
        --out benchmarks/results/ssm/spacetime_univariate.csv [--max-epochs 50]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from tsforecast import Forecaster, SpaceTime, protocol_split
from tsforecast.bench import git_commit
from tsforecast.io import write_atomic
from tsforecast.data.datasets import dataset_info


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="ETTh1")
    parser.add_argument("--horizons", default="24,48,168,336,720")
    parser.add_argument("--lookback", type=int, default=336)
    parser.add_argument("--max-epochs", type=int)
    parser.add_argument("--patience", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out = Path(args.out)
    info = dataset_info(args.dataset)
    split = protocol_split(info.name, args.lookback)
    train, val, test = (part[["OT"]] for part in (split.train, split.val, split.test))
    rows = pd.read_csv(out).to_dict("records") if out.is_file() else []
    done = {(r["dataset"], r["horizon"], r["lookback"], r["seed"]) for r in rows}
    for horizon in [int(h) for h in args.horizons.split(",")]:
        if (info.name, horizon, args.lookback, args.seed) in done:
            continue
        training = {k: v for k, v in (("max_epochs", args.max_epochs), ("patience", args.patience)) if v is not None}
        forecaster = Forecaster(model=SpaceTime(), lookback=args.lookback, horizon=horizon, freq=info.freq,
                                random_state=args.seed, **training)
        forecaster.fit(train, val_df=val)
        started = time.perf_counter()
        scores = forecaster.evaluate(test)
        rows.append({"model": "spacetime", "dataset": info.name, "target": "OT", "horizon": horizon,
                     "lookback": args.lookback, "seed": args.seed, "mse": scores["mse"], "mae": scores["mae"],
                     "n_test_windows": scores["n_windows"], "epochs": forecaster.n_epochs_,
                     "best_epoch": forecaster.training_.best_epoch, "train_seconds": forecaster.fit_seconds_,
                     "epoch_seconds": sum(forecaster.training_.epoch_seconds) / forecaster.n_epochs_,
                     "predict_seconds": time.perf_counter() - started, "device": str(forecaster.device_),
                     "training": json.dumps({k: v for k, v in vars(forecaster._training_config(SpaceTime())).items()}),
                     "git_commit": git_commit()})
        print(rows[-1], flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out, pd.DataFrame(rows).to_csv(index=False, float_format="%.6g"))


if __name__ == "__main__":
    main()
