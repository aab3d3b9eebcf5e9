#!/usr/bin/env bash
# Zero-shot transfer on the eight ETT pairs of the LLM-forecasting literature (h1->h2, h1->m2, h2->h1,
# h2->m2, m1->h2, m1->m2, m2->h2, m2->m1): fit on the source's training split, score each target's test
# split (scaled by the target's own training split). Resumable: rerun to finish an interrupted sweep.
# CPU budget (2-core machine shared with others): AR at every horizon, look-back 96; iTransformer with
# --max-epochs 3 (its default is 10), look-back 96; AutoTimes at H=96, look-back 192 (2 tokens of 96),
# 2 of SmolLM2's 30 blocks, every 8th training window, 1 epoch, pretrained LLM and the llm="none" arm.
set -euo pipefail
OUT=${OUT:-benchmarks/results/zero_shot}
TS="nice -n 19 env OMP_NUM_THREADS=1 ${PYTHON:-.venv/bin/python} -m tsforecast bench"
PAIRS=("ETTh1 ETTh2,ETTm2" "ETTh2 ETTh1,ETTm2" "ETTm1 ETTh2,ETTm2" "ETTm2 ETTh2,ETTm1")
for pair in "${PAIRS[@]}"; do
  set -- $pair
  $TS --models ar --train-on "$1" --datasets "$2" --horizons 96,192,336,720 --lookback 96 --out "$OUT"
done
for pair in "${PAIRS[@]}"; do
  set -- $pair
  $TS --models itransformer --train-on "$1" --datasets "$2" --horizons 96 --lookback 96 --max-epochs 3 --out "$OUT"
done
# llm="none" has no blocks to count: no llm_layers
for params in '{"llm_layers": 2, "train_stride": 8}' '{"llm": "none", "train_stride": 8}'; do
  for pair in "${PAIRS[@]}"; do
    set -- $pair
    $TS --models autotimes --params "$params" --train-on "$1" --datasets "$2" --horizons 96 --lookback 192 \
      --max-epochs 1 --out "$OUT"
  done
done
for pair in "${PAIRS[@]}"; do
  set -- $pair
  $TS --models itransformer --train-on "$1" --datasets "$2" --horizons 192,336,720 --lookback 96 --max-epochs 3 \
    --out "$OUT"
done
