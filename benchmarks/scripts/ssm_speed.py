"""Training and inference speed of the SSM models (and any other registered model, e.g. itransformer)
on one dataset: the time of ``--steps`` training steps (forward, backward, Adam) at the reference batch
size, extrapolated to one epoch of the protocol's training windows, and the time to forecast every test
window. Networks are built with each family's ``reference_config`` for the dataset and horizon.

    python benchmarks/scripts/ssm_speed.py --models smamba,spacetime[,itransformer] --dataset ETTh1 \
        --horizon 96 [--device cpu] [--steps 20] [--out speed.csv]
"""
from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

from tsforecast.bench import PROTOCOL_TIME_FEATURES
from tsforecast.data.datasets import dataset_info
from tsforecast.data.splits import protocol_split
from tsforecast.data.timefeatures import feature_names, time_features
from tsforecast.data.windows import Windows
from tsforecast.forecaster import DEFAULT_TRAINING
from tsforecast.models.base import Dims
from tsforecast.models.registry import build_spec, get_model_class
from tsforecast.rollout import autoregressive_forecast


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(model, dataset, horizon, lookback, device, steps):
    info = dataset_info(dataset)
    split = protocol_split(info.name, lookback)
    reference = get_model_class(model).reference_config(info.name, horizon)
    spec = build_spec(model, reference.get("params", {}))
    training = {**DEFAULT_TRAINING, **spec.training_defaults, **reference.get("training", {})}
    marks = spec.uses_time_features
    n_marks = len(feature_names(PROTOCOL_TIME_FEATURES)) if marks else 0
    torch.manual_seed(0)
    network = spec.build(Dims(split.train.shape[1], lookback, horizon, n_marks)).to(device)

    def windows(frame, output_len):
        mean, std = split.train.to_numpy().mean(0), split.train.to_numpy().std(0)
        values = torch.as_tensor((frame.to_numpy() - mean) / std, dtype=torch.float32, device=device)
        mark = torch.as_tensor(time_features(frame.index, PROTOCOL_TIME_FEATURES), device=device) if marks else None
        return Windows(values, mark, lookback, output_len)

    train = windows(split.train, network.output_len)
    optimizer = torch.optim.Adam(network.parameters(), lr=training["learning_rate"])
    loss_fn = getattr(network, "training_loss", None)
    batches = train.batches(training["batch_size"], shuffle=True, generator=torch.Generator().manual_seed(0))
    network.train()
    timings = []
    for step, batch in zip(range(steps + 3), batches):
        _sync(device)
        started = time.perf_counter()
        loss = loss_fn(batch.x, batch.x_mark, batch.y, batch.y_mark) if loss_fn else \
            torch.nn.functional.mse_loss(network(batch.x, batch.x_mark, batch.y_mark), batch.y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        _sync(device)
        if step >= 3:  # warm-up steps excluded
            timings.append(time.perf_counter() - started)
    step_seconds = sum(timings) / len(timings)
    network.eval()
    test = windows(split.test, horizon)
    _sync(device)
    started = time.perf_counter()
    with torch.no_grad():
        for batch in test.batches(1024):
            autoregressive_forecast(network, batch.x, batch.x_mark, batch.y_mark, horizon)
    _sync(device)
    return {"model": model, "dataset": info.name, "horizon": horizon, "device": str(device),
            "threads": torch.get_num_threads(), "parameters": sum(p.numel() for p in network.parameters()),
            "batch_size": training["batch_size"], "train_step_ms": round(step_seconds * 1e3, 1),
            "train_epoch_s": round(step_seconds * train.n_batches(training["batch_size"]), 1),
            "test_windows": len(test), "inference_s": round(time.perf_counter() - started, 2)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="smamba,spacetime")
    parser.add_argument("--dataset", default="ETTh1")
    parser.add_argument("--horizon", type=int, default=96)
    parser.add_argument("--lookback", type=int, default=96)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out")
    args = parser.parse_args()
    rows = []
    for model in args.models.split(","):
        rows.append(measure(model.strip(), args.dataset, args.horizon, args.lookback, torch.device(args.device), args.steps))
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    if args.out:
        table.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
