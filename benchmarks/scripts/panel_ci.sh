#!/usr/bin/env bash
# A global channel-independent model on ETTh1's 7 and Weather's 21 channels treated as a panel of univariate
# series (`--channels-as-series`), next to the multivariate protocol run of the same model, code and machine
# (issue 12). Both arms go to one results folder per model (rows record `layout`: wide / channels_as_series;
# the resume key differs, so each arm resumes on its own). Resumable: rerun to finish an interrupted sweep.
# CPU budget (2-core machine shared with others): AR (closed form) at every horizon on both datasets;
# iTransformer on ETTh1 at every horizon with --max-epochs 2 for BOTH arms (the reference's 10 epochs,
# patience 3, would take ~22+ epochs of ~50 s each for the panel arm alone: more than this session had).
set -euo pipefail
OUT=${OUT:-benchmarks/results/panel_ci}
TS="nice env OMP_NUM_THREADS=1 ${PYTHON:-.venv/bin/python} -m tsforecast bench"
for layout in "" "--channels-as-series"; do
  $TS --models ar --datasets ETTh1,Weather --horizons 96,192,336,720 --lookback 96 --seeds 0 $layout --out "$OUT/ar"
done
for layout in "" "--channels-as-series"; do
  $TS --models itransformer --datasets ETTh1 --horizons 96,192,336,720 --lookback 96 --seeds 0 --max-epochs 2 \
    $layout --out "$OUT/itransformer_e2"
done
${PYTHON:-.venv/bin/python} benchmarks/scripts/panel_ci_table.py --out "$OUT"
