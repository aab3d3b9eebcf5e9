"""Time-LLM prompt ids per training batch: the cached-head path (``prompt_ids``: the fixed head
tokenized once, only the statistics per call) against tokenizing every whole prompt.

    HF_HUB_OFFLINE=1 python benchmarks/scripts/timellm_prompt_speed.py --out benchmarks/results/llm/speed/prompt_ids_cpu.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from tsforecast.io import write_atomic
from tsforecast.models import Dims, TimeLLM


def median_ms(fn, repeats: int, calls: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - started) / calls * 1000)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--series", type=int, default=168, help="series per batch (24 windows x 7 channels)")
    parser.add_argument("--lookback", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    # one LLM layer: only the tokenizer and the prompt builder are timed
    network = TimeLLM(llm_layers=1).build(Dims(n_channels=7, lookback=args.lookback, horizon=96, n_time_features=0))
    torch.manual_seed(0)
    series = torch.randn(args.series, args.lookback)
    texts = network.prompt_texts(series)
    result = {
        "series": args.series, "lookback": args.lookback, "head_cached": network._head_ids is not None,
        "whole_prompts_ms": median_ms(lambda: network.tokenizer(texts, return_tensors="pt", padding=True), args.repeats, args.calls),
        "prompt_ids_ms": median_ms(lambda: network.prompt_ids(series), args.repeats, args.calls),
        "statistics_ms": median_ms(lambda: network.prompt_statistics(series), args.repeats, args.calls),
    }
    print(json.dumps(result, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(Path(args.out), json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
