"""Peak CPU memory of one AutoTimes training step (forward + backward) at the default settings and
batch, measured with a few LLM layers in fresh processes and extrapolated linearly to all layers.

    HF_HUB_OFFLINE=1 python benchmarks/scripts/autotimes_memory.py --out benchmarks/results/llm/speed/autotimes_memory_cpu.json
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path


def one_step(layers: int, batch: int, lookback: int, channels: int) -> float:
    """Peak resident memory (MB) of this process after one training step."""
    import torch

    from tsforecast.models import AutoTimes, Dims

    torch.manual_seed(0)
    network = AutoTimes(llm_layers=layers).build(Dims(channels, lookback, 96, 0))
    x, y = torch.randn(batch, lookback, channels), torch.randn(batch, 96, channels)
    network.training_loss(x, None, y, None).backward()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", default="2,6", help="LLM layer counts to measure (one fresh process each)")
    parser.add_argument("--total-layers", type=int, default=30, help="extrapolate to this many layers")
    parser.add_argument("--lookback", type=int, default=672)
    parser.add_argument("--channels", type=int, default=7)
    parser.add_argument("--step", type=int, help=argparse.SUPPRESS)  # internal: run one measurement
    parser.add_argument("--out")
    args = parser.parse_args()
    from tsforecast.models import AutoTimes

    batch = AutoTimes.training_defaults["batch_size"]
    if args.step is not None:
        print(one_step(args.step, batch, args.lookback, args.channels))
        return
    peaks = {}
    for layers in [int(n) for n in args.layers.split(",")]:
        out = subprocess.run([sys.executable, __file__, "--step", str(layers), "--lookback", str(args.lookback),
                              "--channels", str(args.channels)], capture_output=True, text=True, check=True)
        peaks[layers] = float(out.stdout.strip().splitlines()[-1])
    (low, peak_low), (high, peak_high) = min(peaks.items()), max(peaks.items())
    per_layer = (peak_high - peak_low) / (high - low)
    result = {"batch_windows": batch, "channels": args.channels, "lookback": args.lookback, "dtype": "float32",
              "peak_mb_by_layers": peaks, "mb_per_layer": round(per_layer, 1),
              f"extrapolated_peak_mb_{args.total_layers}_layers": round(peak_low + per_layer * (args.total_layers - low))}
    print(json.dumps(result, indent=1))
    if args.out:
        from tsforecast.io import write_atomic

        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(Path(args.out), json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
