"""Does the LLM help? AutoTimes (or Time-LLM) on ETTh1 with the pretrained SmolLM2 against the four ablation
backbones (``random:``, ``none``, ``attention``, ``transformer``; tsforecast.llm.backbone), at a budget
identical for every arm.

    OMP_NUM_THREADS=1 python benchmarks/scripts/llm_ablation.py \
        --out benchmarks/results/llm/ablation_cpu [--seeds 0 1 2 --lookback 192 --llm-layers 4 \
        --train-stride 8 --max-epochs 2 --horizons 96 192 336 720]

Protocol split of ETTh1 (``protocol_split("ETTh1", lookback)``), one model per arm and seed (next-token
training on tokens of 96 steps, the model's defaults otherwise), test MSE/MAE on the scaled data at each
of ``--horizons`` from the one fit (AutoTimes forecasts every horizon by rolling out its next-token
model, as in the paper). Appends one row per arm, seed and horizon to ``results.csv`` as soon as it is
scored (a rerun skips the rows there). ``fit_s`` is the whole ``fit`` (training and validation passes),
the same on every horizon row of a fit; ``infer_s`` the test ``evaluate`` at that horizon; both are wall
times on a shared machine: compare them within one run of this script only.

``--model timellm`` (for a GPU: on the 2-core CPU one training step of 16 windows at look-back 512 with 4
blocks takes about 22 s) fits one Time-LLM per horizon (it forecasts its horizon directly), e.g.

    python benchmarks/scripts/llm_ablation.py --model timellm --device cuda --lookback 512 --llm-layers 0 \
        --train-stride 1 --max-epochs 10 --horizons 96 --seeds 0 1 2 --out benchmarks/results/llm/ablation_timellm

(``--llm-layers 0``: every block of the LLM; ``--max-epochs 0``: the model's own training defaults.)
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from tsforecast import Forecaster, protocol_split
from tsforecast.bench import append_row, machine_description, read_rows
from tsforecast.llm import DEFAULT_LLM, parameter_counts
from tsforecast.models import AutoTimes, TimeLLM
from tsforecast.precision import llm_precision

FIELDS = ["arm", "llm", "llm_layers", "seed", "horizon", "lookback", "train_stride", "max_epochs", "epochs", "best_epoch",
          "mse", "mae", "n_windows", "val_mse", "trainable", "frozen_blocks", "word_embeddings", "fit_s", "infer_s",
          "llm_dtype", "threads", "machine"]


def arms(llm_layers: int) -> dict[str, tuple[str, int | None]]:
    """Arm name -> (llm, llm_layers): the pretrained LLM and its random twin use the same blocks; the
    other three replace them (one layer or none, the LLM's width)."""
    return {"pretrained": (DEFAULT_LLM, llm_layers), "random": (f"random:{DEFAULT_LLM}", llm_layers),
            "none": ("none", None), "attention": ("attention", None), "transformer": ("transformer", None)}


def table(path: Path) -> str:
    """Per arm: test MSE per horizon (mean +- std over seeds), the 4-horizon average, the best validation
    MSE, parameter counts and seconds (mean over seeds; inference at H=96)."""
    import pandas as pd

    rows = pd.read_csv(path)
    horizons = sorted(rows.horizon.unique())
    names = {"pretrained": "SmolLM2 blocks (pretrained)", "random": "same blocks, random weights", "none": "none",
             "attention": "one attention layer", "transformer": "one Transformer block"}
    lines = ["| backbone | seeds | " + " | ".join(f"H={h}" for h in horizons) + " | average | best val MSE | "
             "trainable | frozen blocks | fit s | test s (H=96) |", "|---" * (len(horizons) + 8) + "|"]
    for arm in [a for a in names if a in set(rows.arm)]:
        part = rows[rows.arm == arm]
        cells = [names[arm], str(part.seed.nunique())]
        for h in horizons:
            mse = part[part.horizon == h].mse
            cell = f"{mse.mean():.3f} ± {mse.std(ddof=1):.3f}" if len(mse) > 1 else f"{mse.mean():.3f}"
            cells.append(cell if len(mse) == part.seed.nunique() else f"{cell} (seed{'s' * (len(mse) > 1)} "
                         f"{', '.join(map(str, sorted(part[part.horizon == h].seed)))})")
        complete = part.groupby("seed").horizon.nunique().eq(len(horizons))  # seeds scored at every horizon
        average = part[part.seed.isin(complete[complete].index)].groupby("seed").mse.mean()
        note = "" if complete.all() else f" (seed{'s' * (len(average) > 1)} {', '.join(map(str, average.index))})"
        cells.append(f"{average.mean():.3f}{note}" if len(average) else "")
        first = part.drop_duplicates("seed")
        cells += [f"{first.val_mse.mean():.3f}", f"{int(first.trainable.iloc[0]):,}",
                  f"{int(first.frozen_blocks.iloc[0]):,}", f"{first.fit_s.mean():.0f}",
                  f"{part[part.horizon == horizons[0]].infer_s.mean():.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--model", choices=["autotimes", "timellm"], default="autotimes")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--lookback", type=int, default=192)
    parser.add_argument("--llm-layers", type=int, default=4)
    parser.add_argument("--train-stride", type=int, default=8)
    parser.add_argument("--max-epochs", type=int, default=2)
    parser.add_argument("--horizons", type=int, nargs="+", default=[96])
    parser.add_argument("--arms", nargs="+", default=None, help="a subset of the arms (default: all five)")
    parser.add_argument("--table", action="store_true", help="print the markdown table of OUT/results.csv and exit")
    args = parser.parse_args()
    if args.table:
        print(table(Path(args.out) / "results.csv"))
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.csv"
    done = {(row["arm"], int(row["seed"]), int(row.get("horizon") or 96)) for row in read_rows(results)}
    split = protocol_split("ETTh1", args.lookback)
    arm_specs = arms(args.llm_layers)
    for seed in args.seeds:
        for arm in args.arms or arm_specs:
            todo = [horizon for horizon in args.horizons if (arm, seed, horizon) not in done]
            if not todo:
                continue
            llm, layers = arm_specs[arm]
            layers = layers or None  # --llm-layers 0: all of the LLM's blocks
            model = AutoTimes if args.model == "autotimes" else TimeLLM
            spec = model(llm=llm, llm_layers=layers, train_stride=args.train_stride)
            # AutoTimes: one next-token model rolled out to every horizon; Time-LLM: one fit per horizon
            fits = [(96, todo)] if args.model == "autotimes" else [(h, [h]) for h in todo]
            for fit_horizon, scored in fits:
                score_fit(args, spec, arm, llm, layers, seed, fit_horizon, scored, split, results)


def score_fit(args, spec, arm, llm, layers, seed, fit_horizon, todo, split, results) -> None:
    """Fit one arm at one seed and append its test rows at the horizons ``todo``."""
    training_args = {} if args.max_epochs == 0 else {"max_epochs": args.max_epochs}
    forecaster = Forecaster(model=spec, lookback=args.lookback, horizon=fit_horizon, random_state=seed,
                            device=args.device, **training_args)
    forecaster.fit(split.train, val_df=split.val)
    counts = parameter_counts(forecaster.network_)
    training = forecaster.training_
    for horizon in todo:
        started = time.perf_counter()
        scores = forecaster.evaluate(split.test, horizon=horizon)
        infer_s = time.perf_counter() - started
        row = {"arm": arm, "llm": llm, "llm_layers": layers, "seed": seed, "horizon": horizon,
               "lookback": args.lookback, "train_stride": args.train_stride, "max_epochs": args.max_epochs,
               "epochs": training.epochs, "best_epoch": training.best_epoch, "mse": f"{scores['mse']:.4f}",
               "mae": f"{scores['mae']:.4f}", "n_windows": scores["n_windows"],
               "val_mse": f"{min(training.val_loss):.4f}", "trainable": counts["trainable"],
               "frozen_blocks": counts["frozen_blocks"], "word_embeddings": counts["word_embeddings"],
               "fit_s": f"{forecaster.fit_seconds_:.1f}", "infer_s": f"{infer_s:.1f}",
               "llm_dtype": llm_precision(torch.device(forecaster.device_), spec.llm_dtype),
               "threads": torch.get_num_threads(), "machine": machine_description()}
        append_row(results, row, FIELDS)
        print(row, flush=True)


if __name__ == "__main__":
    main()
