"""Where iTransformer's time goes on ETTh1 96->96 (d_model 256, batch 32, 2 epochs), and how it compares.

    .venv/bin/python benchmarks/scripts/speed_itransformer.py --out benchmarks/results/speed_itransformer

Measures, on one machine, one after the other:

1. ``tsforecast bench`` end to end in a fresh process (interpreter start, imports, data, fit with a
   validation pass per epoch, the whole test set): the figure to set against the reference
   implementation's 47 s for the same 2-epoch run (measured on this machine kind, see the issue);
2. our training epoch (the shared loop: steps only, and with its validation pass);
3. a plain PyTorch loop training the same network on the same windows (all windows materialized as
   tensors up front, ``randperm`` batches, Adam, MSE): the framework must add nothing to it;
4. test inference: ``Forecaster.evaluate`` (index-gathered windows, batch 1024, errors accumulated on
   device) against a loop in the reference's style (a per-item ``Dataset`` + ``DataLoader`` at batch
   32, predictions copied out as numpy, metrics at the end). The reference-style loop is our
   re-implementation of that pattern, not Time-Series-Library itself (not installable here).

Results go to ``OUT/speed.json`` and ``OUT/speed.md``. Run it on a quiet machine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tsforecast import Forecaster, protocol_split
from tsforecast.bench import machine_description
from tsforecast.data.timefeatures import time_features
from tsforecast.data.windows import Windows
from tsforecast.training import TrainingConfig, default_eval_batch_size, train

LOOKBACK = HORIZON = 96
LABEL_LEN = 48
EPOCHS = 2
BATCH = 32
REFERENCE = {"epoch_seconds": "13-14", "run_seconds": 47}


def bench_wall_seconds() -> float:
    """`tsforecast bench` for the 2-epoch run, in a fresh interpreter, timed from outside."""
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "tsforecast", "bench", "--models", "itransformer", "--datasets", "ETTh1",
                        "--horizons", str(HORIZON), "--max-epochs", str(EPOCHS), "--out", out], check=True,
                       capture_output=True)
        return time.perf_counter() - started


def plain_loop_epoch(network: torch.nn.Module, optimizer, tensors: tuple) -> float:
    """One epoch of the most direct PyTorch loop over pre-built window tensors; returns its seconds."""
    inputs, input_marks, targets, target_marks = tensors
    network.train()
    started = time.perf_counter()
    order = torch.randperm(len(inputs))
    for begin in range(0, len(order), BATCH):
        idx = order[begin:begin + BATCH]
        loss = torch.nn.functional.mse_loss(network(inputs[idx], input_marks[idx], target_marks[idx]), targets[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - started


def window_tensors(values: np.ndarray, marks: np.ndarray) -> tuple:
    """Every training window materialized up front (what a plain loop would do)."""
    series, stamps = torch.as_tensor(values, dtype=torch.float32), torch.as_tensor(marks)
    x = series.unfold(0, LOOKBACK + HORIZON, 1).transpose(1, 2)  # (N, L + H, C)
    m = stamps.unfold(0, LOOKBACK + HORIZON, 1).transpose(1, 2)
    return (x[:, :LOOKBACK].contiguous(), m[:, :LOOKBACK].contiguous(), x[:, LOOKBACK:].contiguous(),
            m[:, LOOKBACK:].contiguous())


def shared_loop_epoch(network: torch.nn.Module, windows: Windows) -> float:
    """One epoch of the package's training loop (steps only: no validation set)."""
    config = TrainingConfig(max_epochs=1, batch_size=BATCH, learning_rate=1e-4, patience=1)
    return train(network, windows, None, config, torch.Generator().manual_seed(0)).epoch_seconds[0]


def matmul_gflops() -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    started = time.perf_counter()
    for _ in range(5):
        a @ b
    return 5 * 2 * 2048 ** 3 / (time.perf_counter() - started) / 1e9


class ReferenceStyleDataset(torch.utils.data.Dataset):
    """Per-item slicing as the reference's dataset classes do (seq_x, seq_y with the label part, marks)."""

    def __init__(self, values: np.ndarray, marks: np.ndarray):
        self.values, self.marks = values.astype(np.float32), marks.astype(np.float32)

    def __len__(self):
        return len(self.values) - LOOKBACK - HORIZON + 1

    def __getitem__(self, i):
        s_end = i + LOOKBACK
        r_begin, r_end = s_end - LABEL_LEN, s_end + HORIZON
        return self.values[i:s_end], self.values[r_begin:r_end], self.marks[i:s_end], self.marks[r_begin:r_end]


@torch.no_grad()
def reference_style_test_seconds(network: torch.nn.Module, values: np.ndarray, marks: np.ndarray) -> tuple[float, float]:
    loader = torch.utils.data.DataLoader(ReferenceStyleDataset(values, marks), batch_size=BATCH, shuffle=False,
                                         num_workers=0, drop_last=False)
    network.eval()
    started = time.perf_counter()
    preds, trues = [], []
    for batch_x, batch_y, batch_x_mark, batch_y_mark in loader:
        dec_inp = torch.cat([batch_y[:, :LABEL_LEN], torch.zeros_like(batch_y[:, -HORIZON:])], dim=1)  # as the reference builds it
        assert dec_inp.shape[1] == LABEL_LEN + HORIZON
        outputs = network(batch_x, batch_x_mark, batch_y_mark[:, -HORIZON:])
        preds.append(outputs[:, -HORIZON:].numpy())
        trues.append(batch_y[:, -HORIZON:].numpy())
    mse = float(np.mean((np.concatenate(preds) - np.concatenate(trues)) ** 2))
    return time.perf_counter() - started, mse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    results = {"machine": machine_description(), "torch": torch.__version__, "python": platform.python_version(),
               "omp_num_threads": os.environ.get("OMP_NUM_THREADS", ""), "reference": REFERENCE}
    results["bench_wall_seconds"] = bench_wall_seconds()

    split = protocol_split("ETTh1", LOOKBACK)
    forecaster = Forecaster(model="itransformer", lookback=LOOKBACK, horizon=HORIZON, max_epochs=EPOCHS, patience=EPOCHS,
                            random_state=0, device="cpu", time_features="h", freq="h").fit(split.train, val_df=split.val)
    training = forecaster.training_
    results["ours_epoch_seconds"] = training.epoch_seconds
    results["ours_epoch_train_only_seconds"] = [e - v for e, v in zip(training.epoch_seconds, training.val_seconds)]
    results["ours_val_seconds"] = training.val_seconds
    started = time.perf_counter()
    results["ours_test_mse"] = forecaster.evaluate(split.test)["mse"]
    results["ours_test_seconds"] = time.perf_counter() - started

    scaled_test = forecaster.scaler_.transform(split.test.to_numpy())
    test_marks = time_features(split.test.index, "h")
    results["reference_style_test_seconds"], results["reference_style_test_mse"] = reference_style_test_seconds(
        forecaster.network_, scaled_test, test_marks)

    # The shared loop and a plain loop on the same network and windows, epochs interleaved (A B A B A B)
    # so that drifts of the machine hit both alike; medians reported.
    scaled_train = forecaster.scaler_.transform(split.train.to_numpy())
    train_marks = time_features(split.train.index, "h")
    windows = Windows(torch.as_tensor(scaled_train, dtype=torch.float32), torch.as_tensor(train_marks), LOOKBACK, HORIZON)
    tensors = window_tensors(scaled_train, train_marks)
    torch.manual_seed(0)
    shared_net, plain_net = forecaster.model_.build(forecaster.dims_), forecaster.model_.build(forecaster.dims_)
    plain_optimizer = torch.optim.Adam(plain_net.parameters(), lr=1e-4)
    results["shared_loop_epoch_seconds"], results["plain_loop_epoch_seconds"] = [], []
    for _ in range(3):
        results["shared_loop_epoch_seconds"].append(shared_loop_epoch(shared_net, windows))
        results["plain_loop_epoch_seconds"].append(plain_loop_epoch(plain_net, plain_optimizer, tensors))

    # How close to the machine's limit is inference? FLOPs of one forward pass per window vs matmul peak.
    from torch.utils.flop_counter import FlopCounterMode

    batch = next(Windows(windows.values, windows.marks, LOOKBACK, HORIZON).batches(64))
    forecaster.network_.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        forecaster.network_(batch.x, batch.x_mark, batch.y_mark)
    results["forward_gflop_per_window"] = counter.get_total_flops() / 64 / 1e9
    results["matmul_gflops"] = matmul_gflops()
    results["test_floor_seconds"] = (results["forward_gflop_per_window"] * len(split.test.iloc[LOOKBACK + HORIZON - 1:])
                                     / results["matmul_gflops"])

    (out / "speed.json").write_text(json.dumps(results, indent=2) + "\n")
    shared = float(np.median(results["shared_loop_epoch_seconds"]))
    plain = float(np.median(results["plain_loop_epoch_seconds"]))
    lines = [
        "# iTransformer speed, ETTh1 96->96, d_model 256, batch 32, 2 epochs", "",
        f"Machine: {results['machine']}; torch {results['torch']}; nothing else running. Command: "
        "`.venv/bin/python benchmarks/scripts/speed_itransformer.py --out benchmarks/results/speed_itransformer`.", "",
        "| what | ours | comparison | ratio |", "|---|---|---|---|",
        f"| `tsforecast bench` end to end (fresh process, 2 epochs, validation each epoch, full test) | "
        f"{results['bench_wall_seconds']:.1f} s | reference run 47 s (issue) | {47 / results['bench_wall_seconds']:.2f}x faster |",
        f"| training epoch, steps only (median of 3, interleaved) | {shared:.2f} s | plain PyTorch loop, same network "
        f"{plain:.2f} s; reference 13-14 s (issue) | {shared / plain:.3f} (ours / plain) |",
        f"| epochs of the fit inside `bench` (steps + validation) | "
        f"{', '.join(f'{s:.2f}' for s in results['ours_epoch_seconds'])} s | of which validation (2,785 windows, batch {default_eval_batch_size('cpu')}) "
        f"{', '.join(f'{s:.2f}' for s in results['ours_val_seconds'])} s | |",
        f"| test set (2,785 windows, batch {default_eval_batch_size('cpu')}) | {results['ours_test_seconds']:.2f} s | reference-style loop (batch 32, "
        f"per-item Dataset) {results['reference_style_test_seconds']:.2f} s | "
        f"{results['reference_style_test_seconds'] / results['ours_test_seconds']:.2f}x faster |",
        f"| test-set floor: {results['forward_gflop_per_window'] * 1e3:.1f} MFLOP per window at the {results['matmul_gflops']:.0f} "
        f"GFLOP/s matmul peak | {results['test_floor_seconds']:.2f} s | | ours at "
        f"{results['test_floor_seconds'] / results['ours_test_seconds']:.0%} of peak |",
        "", f"Test MSE after 2 epochs: ours {results['ours_test_mse']:.4f}, reference-style loop on the same network "
        f"{results['reference_style_test_mse']:.4f} (must agree: same network, same windows).",
    ]
    (out / "speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
