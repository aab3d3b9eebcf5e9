"""Pretrain the shipped zero-shot adapter ``tsforecast/pretrained_weights/autotimes-smollm2/`` (issue 14 item 4).

One global AutoTimes (SmolLM2-135M, first 8 blocks frozen; token 8 steps, context 192 = 24 tokens)
trained on one long panel: every channel of the protocol TRAIN splits of ETTh1, ETTh2, ETTm1, ETTm2
and Weather, plus KernelSynth-style synthetic series (:mod:`tsforecast.data.synthetic`); early
stopping on the protocol VAL splits (each channel's first ``lookback + --val-windows`` rows: a full
validation pass would cost more than an epoch on a CPU). No test split is ever read. Timestamps are
unused (``timestamps=False``), so every series is re-stamped on one artificial hourly calendar.

Stages (resumable: a finished stage is skipped when its output exists in ``--work-dir``):

1. ``--measure``: time a few training steps and a validation batch, print the epoch/validation
   seconds each ``--train-stride`` would cost (pick stride and epochs to fit the budget);
2. train (``Forecaster.fit``), save the fitted forecaster to ``--work-dir/forecaster``;
3. export ``adapter.safetensors`` (the network's ``trainable_state_dict()``) + ``config.json``
   atomically to ``--adapter-dir``;
4. ``--finetune-check``: fine-tune on ETTh1's first 3,000 rows with the shipped fine-tune defaults and
   compare with the zero-shot forecast on that frame's validation split.

Example (the committed run: benchmarks/results/pretrained/README.md)::

    OMP_NUM_THREADS=2 nohup .venv/bin/python benchmarks/scripts/pretrain_autotimes.py --threads 2 \\
        --train-stride 160 --max-epochs 3 > benchmarks/results/pretrained/pretrain.log 2>&1 &
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATASETS = ("ETTh1", "ETTh2", "ETTm1", "ETTm2", "Weather")
LOOKBACK, HORIZON, TOKEN_LEN, MIN_CONTEXT_TOKENS = 192, 8, 8, 2
NAME = "autotimes-smollm2"
CALENDAR_START = "2000-01-01"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")),
                   help="torch threads (set OMP_NUM_THREADS to the same)")
    p.add_argument("--nice", type=int, default=10, help="os.nice increment (0: none); the machine is shared")
    p.add_argument("--n-synthetic", type=int, default=1500)
    p.add_argument("--synthetic-length", type=int, default=512)
    p.add_argument("--synthetic-seed", type=int, default=0)
    p.add_argument("--val-windows", type=int, default=64, help="validation windows per VAL-split channel")
    p.add_argument("--train-stride", type=int, default=160)
    p.add_argument("--max-epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=128, help="windows (one channel each) per step")
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--patience", type=int, default=2)
    p.add_argument("--llm-layers", type=int, default=8)
    p.add_argument("--budget-minutes", type=float, default=45.0, help="stated wall budget (recorded)")
    p.add_argument("--work-dir", type=Path, default=None,
                   help="resume state (default: the tsforecast cache folder / pretrain-autotimes-smollm2)")
    p.add_argument("--adapter-dir", type=Path, default=ROOT / "tsforecast/pretrained_weights" / NAME)
    p.add_argument("--results-dir", type=Path, default=ROOT / "benchmarks/results/pretrained")
    p.add_argument("--measure", action="store_true", help="only time training steps / validation, then exit")
    p.add_argument("--finetune-check", action="store_true", help="only run stage 4 (needs the adapter)")
    p.add_argument("--ft-frame", choices=["first", "last"], default="first",
                   help="--finetune-check on ETTh1's first 3,000 rows (inside the pretraining's training split) or "
                        "its last 3,000 (inside the protocol test split: never seen by the adapter; nothing is chosen "
                        "on this check)")
    p.add_argument("--ft-epochs", type=int, default=1)
    p.add_argument("--ft-stride", type=int, default=4)
    p.add_argument("--ft-lr", type=float, default=3e-4)
    p.add_argument("--ft-batch", type=int, default=64)
    return p.parse_args(argv)


def llm_dtype() -> str:
    """bf16 autocast where the CPU has bf16 matrix units (AVX512-BF16 or AMX-BF16), else fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "float32"
    return "bfloat16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "float32"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def restamp(values, uid: str):
    """One series on the artificial hourly calendar (timestamps are unused by the model)."""
    import pandas as pd

    return pd.DataFrame({"unique_id": uid, "ds": pd.date_range(CALENDAR_START, periods=len(values), freq="h"),
                         "y": values})


def build_panels(args):
    """(train long frame, validation long frame, data summary)."""
    import numpy as np
    import pandas as pd

    from tsforecast import protocol_split
    from tsforecast.data.synthetic import kernel_synth

    train, val, summary = [], [], {"datasets": {}, "synthetic": {}}
    for name in DATASETS:
        split = protocol_split(name, LOOKBACK)
        n_val = min(len(split.val), LOOKBACK + args.val_windows + HORIZON - 1)
        for column in split.train.columns:
            uid = f"{name}/{column}"
            train.append(restamp(split.train[column].to_numpy(np.float64), uid))
            val.append(restamp(split.val[column].to_numpy(np.float64)[:n_val], uid))
        summary["datasets"][name] = {"split": "protocol train (val: first rows of protocol val)",
                                     "channels": split.train.shape[1], "train_rows": len(split.train),
                                     "val_rows_used": n_val}
    t0 = time.perf_counter()
    synth = kernel_synth(args.n_synthetic, args.synthetic_length, seed=args.synthetic_seed)
    for i, row in enumerate(synth):
        train.append(restamp(row.astype(np.float64), f"synthetic/{i}"))
    summary["synthetic"] = {"generator": "tsforecast.data.synthetic.kernel_synth", "n_series": args.n_synthetic,
                            "length": args.synthetic_length, "seed": args.synthetic_seed,
                            "seconds": round(time.perf_counter() - t0, 1)}
    return pd.concat(train, ignore_index=True), pd.concat(val, ignore_index=True), summary


def make_spec(args, train_stride: int):
    from tsforecast.models.autotimes import AutoTimes

    return AutoTimes(llm_layers=args.llm_layers, token_len=TOKEN_LEN, mlp_hidden_layers=2, mlp_hidden_dim=256,
                     timestamps=False, rollout="sliding", llm_dtype=llm_dtype(), train_stride=train_stride)


def measure(args, train_df, val_df) -> None:
    """Seconds per training step and per validation batch at ``--batch-size`` (random windows: the cost does
    not depend on the values), and what an epoch and a validation pass would cost per stride."""
    import torch

    from tsforecast.models.base import Dims

    spec = make_spec(args, 1)
    network = spec.build(Dims(n_channels=1, lookback=LOOKBACK, horizon=HORIZON, n_time_features=0))
    optimizer = torch.optim.Adam([p for p in network.parameters() if p.requires_grad], lr=1e-3)
    x = torch.randn(args.batch_size, LOOKBACK, 1)
    y = torch.randn(args.batch_size, HORIZON, 1)
    network.train()
    times = []
    for _ in range(4):
        t0 = time.perf_counter()
        loss = network.training_loss(x, None, y, None)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - t0)
    step = sorted(times[1:])[1]  # the median after a warm-up step
    network.eval()
    xv = torch.randn(256, LOOKBACK, 1)
    with torch.no_grad():
        network(xv)
        t0 = time.perf_counter()
        network(xv)
        val_batch = time.perf_counter() - t0
    n_train = sum(max(n - LOOKBACK - HORIZON + 1, 0) for n in train_df.groupby("unique_id").size())
    n_val = sum(max(n - LOOKBACK - HORIZON + 1, 0) for n in val_df.groupby("unique_id").size())
    val_s = n_val / 256 * val_batch
    print(f"llm_dtype={llm_dtype()} threads={torch.get_num_threads()} batch={args.batch_size}: "
          f"{step:.2f} s/step; validation {val_batch:.2f} s per 256 windows; "
          f"{n_train} training windows, {n_val} validation windows ({val_s:.0f} s per pass)", flush=True)
    for stride in (4, 8, 16, 24, 32, 48, 64):
        steps = -(-(-(-n_train // stride)) // args.batch_size)
        print(f"  stride {stride:3d}: {steps} steps/epoch, {steps * step / 60:.1f} min/epoch "
              f"(+{val_s / 60:.1f} min validation)", flush=True)


def train(args, train_df, val_df, forecaster_dir: Path):
    from tsforecast import Forecaster

    f = Forecaster(model=make_spec(args, args.train_stride), lookback=LOOKBACK, horizon=HORIZON,
                   batch_size=args.batch_size, learning_rate=args.learning_rate, max_epochs=args.max_epochs,
                   patience=args.patience, lr_schedule="cosine", random_state=0, verbose=1,
                   # only the conformal calibration reads it here (val_df is given): the synthetic series have
                   # no validation rows, so fit scores the windows of the last validation_fraction of each;
                   # at the default 0.1 that was 66,000 windows (~10 min), at horizon / length one each
                   validation_fraction=HORIZON / args.synthetic_length)
    t0 = time.perf_counter()
    f.fit(train_df, val_df=val_df)
    seconds = time.perf_counter() - t0
    tr = f.training_
    print(f"trained in {seconds:.0f} s: epochs {tr.epochs}, best {tr.best_epoch}, train {tr.train_loss}, "
          f"val {tr.val_loss}, epoch seconds {tr.epoch_seconds}", flush=True)
    f.save(forecaster_dir)
    return f, seconds


def export(args, forecaster, summary: dict, seconds: float) -> None:
    """adapter.safetensors + config.json into ``--adapter-dir``, atomically (temp folder, then rename)."""
    from safetensors.torch import save_file

    network = forecaster.network_
    tr = forecaster.training_
    state = {k: v.detach().cpu().contiguous() for k, v in network.trainable_state_dict().items()}
    spec = forecaster.model_.get_params(deep=False)
    spec["lora_target_modules"] = list(spec["lora_target_modules"])
    spec["train_stride"] = 1  # a fine-tune's own stride is in "fine_tune"; the spec is the architecture
    config = {
        "name": NAME,
        "spec": spec,
        "lookback": LOOKBACK,
        # a new adapter reads its whole look-back until its own context is chosen on validation
        # (benchmarks/scripts/pretrained_context.py), then written here by hand, as for the shipped one
        "context": LOOKBACK,
        "horizon": HORIZON,
        "min_context_tokens": MIN_CONTEXT_TOKENS,
        "fine_tune": {"learning_rate": args.ft_lr, "max_epochs": args.ft_epochs, "batch_size": args.ft_batch,
                      "train_stride": args.ft_stride, "patience": 1},
        "backbone": network.backbone_reference,
        "training": {
            "data": summary,
            "never_used": "any test split",
            "windows": tr.n_windows, "batch_size": tr.batch_size, "steps": tr.steps,
            "train_stride": args.train_stride, "learning_rate": args.learning_rate, "lr_schedule": "cosine",
            "max_epochs": args.max_epochs, "patience": args.patience, "epochs": tr.epochs,
            "best_epoch": tr.best_epoch, "train_loss": [round(v, 5) for v in tr.train_loss],
            "val_loss": [round(v, 5) for v in tr.val_loss],
            "best_val_loss": round(min(tr.val_loss), 5) if tr.val_loss else None,
            "epoch_seconds": [round(v, 1) for v in tr.epoch_seconds], "seconds": round(seconds, 1),
            "budget_minutes": args.budget_minutes, "machine": f"{cpu_name()}, {os.cpu_count()} cores (shared)",
            "threads": args.threads, "llm_dtype": llm_dtype(),
            "command": "benchmarks/scripts/pretrain_autotimes.py " + " ".join(sys.argv[1:]),
        },
    }
    target = args.adapter_dir
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        save_file(state, str(tmp / "adapter.safetensors"))
        (tmp / "config.json").write_text(json.dumps(config, indent=2, default=str) + "\n")
        for path, mode in ((tmp, 0o755), (tmp / "adapter.safetensors", 0o644), (tmp / "config.json", 0o644)):
            path.chmod(mode)  # mkdtemp makes 0700: the shipped files must be readable by everyone
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / "training.json").write_text(json.dumps(config["training"], indent=2, default=str) + "\n")
    print(f"wrote {target} ({(target / 'adapter.safetensors').stat().st_size / 1e6:.1f} MB)", flush=True)


def finetune_check(args) -> dict:
    """Fine-tune on ETTh1's first 3,000 rows (7 channels, hourly; its own 70/10/20 split) from the adapter
    with the shipped fine-tune settings; compare its validation MSE (scaled) with the zero-shot forecast's.
    The zero-shot score loads the adapter back into the same fitted forecaster, so both use the same scaler
    and windows (AutoTimes normalizes every window, so the scaler changes no forecast beyond rounding)."""
    import torch
    from safetensors.torch import load_file

    from tsforecast import load_dataset, protocol_split
    from tsforecast.pretrained import pretrained

    data = load_dataset("ETTh1")
    frame = data.iloc[:3000] if args.ft_frame == "first" else data.iloc[-3000:]
    split = protocol_split(frame, LOOKBACK)  # ratio scheme: 70 / 10 / 20
    f = pretrained(path=args.adapter_dir).set_params(random_state=0)
    # the zero-shot API scales each frame on its own rows, so its scaled MSE is in other units than the fitted
    # forecaster's (scaled on the training rows): compare in the data's units
    api_zero = f.evaluate(split.val, units="original")
    t0 = time.perf_counter()
    f.fit(split.train, val_df=split.val)
    seconds = time.perf_counter() - t0
    tuned_val = f.evaluate(split.val)["mse"]
    tuned = f.evaluate(split.val, units="original")
    tuned_state = {k: v.clone() for k, v in f.network_.trainable_state_dict().items()}
    f.network_.load_state_dict(load_file(str(args.adapter_dir / "adapter.safetensors")), strict=False)
    zero_val = f.evaluate(split.val)["mse"]
    zero = f.evaluate(split.val, units="original")
    f.network_.load_state_dict(tuned_state, strict=False)
    ft = json.loads((args.adapter_dir / "config.json").read_text())["fine_tune"]
    rows = "0..2999" if args.ft_frame == "first" else f"{len(data) - 3000}..{len(data) - 1}"
    result = {"frame": f"ETTh1 rows {rows} (7 channels, hourly), protocol_split ratio 70/10/20, look-back 192",
              "zero_shot_context": f._zero_shot_context() if hasattr(f, "_zero_shot_context") else None,
              "fine_tune": ft, "fit_seconds": round(seconds, 1), "threads": torch.get_num_threads(),
              "val_mse_zero_shot": round(float(zero_val), 4), "val_mse_fine_tuned": round(float(tuned_val), 4),
              "val_original_units": {name: {k: round(float(m[k]), 4) for k in ("mae", "rmse", "mase")}
                                     for name, m in (("zero_shot", zero), ("zero_shot_api", api_zero),
                                                     ("fine_tuned", tuned))},
              "epochs": f.training_.epochs, "steps": f.training_.steps, "windows": f.training_.n_windows,
              "batch_size": f.training_.batch_size,
              "beats_zero_shot": bool(tuned_val < zero_val and tuned["mae"] < api_zero["mae"])}
    print(json.dumps(result, indent=2), flush=True)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    name = "finetune_check.json" if args.ft_frame == "first" else "finetune_check_last.json"
    (args.results_dir / name).write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.work_dir is None:
        from tsforecast.llm.backbone import cache_dir

        args.work_dir = cache_dir() / f"pretrain-{NAME}"
    if args.nice:
        os.nice(args.nice)
    import torch

    torch.set_num_threads(args.threads)
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {cpu_name()}, {os.cpu_count()} cores, threads {args.threads}, "
          f"llm_dtype {llm_dtype()}, budget {args.budget_minutes} min", flush=True)
    if args.finetune_check:
        finetune_check(args)
        return
    t0 = time.perf_counter()
    train_df, val_df, summary = build_panels(args)
    print(f"panel: {train_df['unique_id'].nunique()} training series, {len(train_df)} rows; validation "
          f"{val_df['unique_id'].nunique()} series, {len(val_df)} rows ({time.perf_counter() - t0:.0f} s)", flush=True)
    if args.measure:
        measure(args, train_df, val_df)
        return
    forecaster_dir = args.work_dir / "forecaster"
    if (forecaster_dir / "config.json").is_file():  # resume: training finished in an earlier run
        from tsforecast import Forecaster

        forecaster = Forecaster.load(forecaster_dir)
        seconds = json.loads((args.work_dir / "seconds.json").read_text())["seconds"]
        print(f"resumed: loaded the trained forecaster from {forecaster_dir}", flush=True)
    else:
        forecaster, seconds = train(args, train_df, val_df, forecaster_dir)
        (args.work_dir / "seconds.json").write_text(json.dumps({"seconds": seconds}))
    export(args, forecaster, summary, seconds)


if __name__ == "__main__":
    main()
