"""Loop vs parallel (vs fused, where mamba-ssm's CUDA kernels import) selective scan: forward+backward
time of ``tsforecast.layers.mamba.selective_scan`` at the shapes S-Mamba meets (tokens = variates +
4 calendar features) and at temporal-Mamba lengths.

    python benchmarks/scripts/scan_speed.py [--device cpu|cuda] [--repeats 20] [--out scan_speed.csv]
"""
from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

from tsforecast.layers.mamba import fused_selective_scan, selective_scan

# (label, batch, length, channels, state)
SHAPES = [("ETTh1 tokens", 32, 11, 256, 2), ("ETTm1 tokens", 32, 11, 128, 2), ("Weather tokens", 32, 25, 512, 2),
          ("temporal L=96", 32, 96, 128, 16), ("ECL-like 325 tokens", 16, 325, 512, 2)]


def time_scan(method, shape, device, repeats):
    _, batch, length, channels, state = shape
    g = torch.Generator(device="cpu").manual_seed(0)
    make = lambda *s: torch.randn(*s, generator=g).to(device)  # noqa: E731
    u, B, C = make(batch, length, channels), make(batch, length, state), make(batch, length, state)
    delta = torch.nn.functional.softplus(make(batch, length, channels))
    A, D = -torch.exp(make(channels, state)), make(channels)
    leaves = [t.requires_grad_() for t in (u, delta, A, B, C, D)]

    def step():
        selective_scan(*leaves, method=method).square().sum().backward()

    for _ in range(3):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / repeats * 1e3


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out")
    args = parser.parse_args()
    device = torch.device(args.device)
    methods = ["loop", "parallel"] + (["fused"] if device.type == "cuda" and fused_selective_scan() else [])
    rows = []
    for shape in SHAPES:
        row = {"shape": shape[0], "B,L,D,N": ",".join(map(str, shape[1:])), "device": str(device),
               "threads": torch.get_num_threads()}
        for method in methods:
            row[f"{method} ms"] = round(time_scan(method, shape, device, args.repeats), 3)
        rows.append(row)
        print(row, flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    if args.out:
        table.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
