"""AutoTimes on ETTh1: sliding vs KV-cached rollout (accuracy and speed); per-iteration train/inference time of
AutoTimes and Time-LLM on the same LLM and batch.

One AutoTimes model is fitted on the protocol's ETTh1 split (lookback 672, the bench's settings), then
scored at every horizon with both rollouts (the same weights), and timed per iteration:

    python benchmarks/scripts/llm_speed.py --out benchmarks/results/llm/speed [--max-epochs N --train-stride S]

Writes ``speed.json`` and ``speed.md`` into ``--out``. Figures are for the default LLM
(SmolLM2-135M-Instruct, Q4_1 GGUF de-quantised to fp32, bf16 autocast on CUDA).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from tsforecast import Forecaster, protocol_split
from tsforecast.bench import machine_description
from tsforecast.data.windows import Windows
from tsforecast.models import AutoTimes, Dims, TimeLLM


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_per_call(fn, device, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return (time.perf_counter() - started) / repeats


def iteration_times(network, device, batch, repeats: int) -> dict:
    """Seconds per training step (forward, backward, Adam) and per inference forward, one batch."""
    optimizer = torch.optim.Adam([p for p in network.parameters() if p.requires_grad], lr=1e-6)
    loss_fn = getattr(network, "training_loss", None)

    def train_step():
        network.train()
        if loss_fn is not None:
            loss = loss_fn(batch.x, batch.x_mark, batch.y, batch.y_mark)
        else:
            loss = torch.nn.functional.mse_loss(network(batch.x, batch.x_mark, batch.y_mark), batch.y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    @torch.no_grad()
    def infer():
        network.eval()
        network(batch.x, batch.x_mark, batch.y_mark)

    state = {k: v.clone() for k, v in network.state_dict().items()}
    train_s = time_per_call(train_step, device, repeats)
    network.load_state_dict(state)  # the timing steps must not change the model scored elsewhere
    network.eval()
    return {"train_s_per_iter": train_s, "infer_s_per_iter": time_per_call(infer, device, repeats),
            "batch_windows": len(batch.x), "series_per_batch": batch.x.shape[0] * batch.x.shape[2]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-epochs", type=int, default=None)
    parser.add_argument("--train-stride", type=int, default=1)
    parser.add_argument("--llm-layers", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--timing-batch", type=int, default=32, help="batch of the per-iteration timings")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--llm", default=None, help="another LLM (default: SmolLM2-135M-Instruct)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    split = protocol_split("ETTh1", 672)
    training = {k: v for k, v in {"max_epochs": args.max_epochs, "batch_size": args.batch_size}.items() if v is not None}
    spec = AutoTimes(llm_layers=args.llm_layers, train_stride=args.train_stride)
    if args.llm:
        spec.set_params(llm=args.llm)
    forecaster = Forecaster(model=spec, lookback=672, horizon=96, random_state=0, freq="h", time_features="h",
                            device=args.device, verbose=1, **training)
    forecaster.fit(split.train, val_df=split.val)
    report = {"machine": machine_description(), "device": str(forecaster.device_), "torch": torch.__version__,
              "llm": forecaster.network_.backbone_reference, "settings": {**spec.get_params(), **training},
              "fit_seconds": forecaster.fit_seconds_, "epochs": forecaster.training_.epochs,
              "best_epoch": forecaster.training_.best_epoch, "val_loss": forecaster.training_.val_loss,
              "epoch_seconds": forecaster.training_.epoch_seconds, "rollouts": {}}
    network = forecaster.network_
    for mode in ("sliding", "kv_cache"):
        network.rollout_mode = mode
        rows = {}
        for horizon in (96, 192, 336, 720):
            _sync(forecaster.device_)
            started = time.perf_counter()
            scores = forecaster.evaluate(split.test, horizon=horizon, batch_size=256)
            _sync(forecaster.device_)
            rows[horizon] = {**scores, "seconds": time.perf_counter() - started}
            print(mode, horizon, rows[horizon], flush=True)
        report["rollouts"][mode] = rows
    # per-iteration timings on one batch: training step, one forward, and a 720-step rollout per mode
    series = forecaster._prepare(split.test.to_numpy(), split.test.index, future_steps=720)
    windows = Windows(series.values, series.marks, 672, 96, mark_horizon=720 + 96)
    batch = windows.gather(windows.starts[:args.timing_batch])
    report["autotimes_iteration"] = iteration_times(network, forecaster.device_, batch, args.repeats)
    for mode in ("sliding", "kv_cache"):
        network.rollout_mode = mode
        report["autotimes_iteration"][f"rollout720_{mode}_s"] = time_per_call(
            lambda: network.rollout(batch.x, batch.x_mark, batch.y_mark, 720), forecaster.device_, args.repeats)
    # Time-LLM on the same backbone and batch size (its own look-back 512 and H=96; weights untrained:
    # the cost of an iteration does not depend on them)
    timellm = TimeLLM(llm_layers=args.llm_layers, **({"llm": args.llm, "d_ff": 8} if args.llm else {}))
    timellm_net = timellm.build(Dims(n_channels=7, lookback=512, horizon=96, n_time_features=0)).to(forecaster.device_)
    values = torch.as_tensor(forecaster.scaler_.transform(split.test.to_numpy()), dtype=torch.float32,
                             device=forecaster.device_)
    timellm_windows = Windows(values, None, 512, 96)
    report["timellm_iteration"] = iteration_times(
        timellm_net, forecaster.device_, timellm_windows.gather(timellm_windows.starts[:args.timing_batch]), args.repeats)
    (out / "speed.json").write_text(json.dumps(report, indent=2, default=str))
    lines = [f"# AutoTimes rollouts and speed ({report['device']}; {report['machine']})", "",
             f"LLM: {report['llm']}", f"settings: {json.dumps(report['settings'], default=str)}",
             f"fit: {report['fit_seconds']:.1f} s, {report['epochs']} epochs (best {report['best_epoch']})", "",
             "| rollout | H | MSE | MAE | test windows | scoring s |", "|---|---|---|---|---|---|"]
    for mode, rows in report["rollouts"].items():
        for horizon, row in rows.items():
            lines.append(f"| {mode} | {horizon} | {row['mse']:.4f} | {row['mae']:.4f} | {row['n_windows']} | {row['seconds']:.1f} |")
        lines.append(f"| {mode} | avg | {sum(r['mse'] for r in rows.values()) / 4:.4f} | "
                     f"{sum(r['mae'] for r in rows.values()) / 4:.4f} | | |")
    lines += ["", "Per iteration (one batch of windows x 7 channels):", "", "```",
              json.dumps({k: v for k, v in report.items() if k.endswith("_iteration")}, indent=2), "```"]
    (out / "speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
