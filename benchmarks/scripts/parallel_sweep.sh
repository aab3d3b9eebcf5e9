#!/usr/bin/env bash
# Several `tsforecast bench` sweeps into one results folder, each run a Ray task (`--backend ray`): on this
# machine's cores, or on a cluster with BENCH_ARGS="--address auto". The jobs run one after another; the runs
# inside each run side by side, as many as the declared resources allow (BENCH_ARGS="--gpus-per-run 0.25":
# four runs share a GPU). Needs pip install "tsforecast[distributed]".
#
#   bash benchmarks/scripts/parallel_sweep.sh OUT SECONDS "MODELS|DATASETS|HORIZONS" ...
#
# Resumable like any bench (a rerun skips finished runs and retries failed ones, see OUT/failures.csv);
# SECONDS bounds each job: it is then interrupted (SIGINT: finished runs are saved, Ray is stopped).
set -u
out=$1; seconds=$2; shift 2
tsforecast=${TSFORECAST:-tsforecast}
status=0
for job in "$@"; do
  IFS='|' read -r models datasets horizons <<<"$job"
  # shellcheck disable=SC2086  # BENCH_ARGS holds several options
  timeout -s INT "$seconds" "$tsforecast" bench --backend ray --models "$models" --datasets "$datasets" \
    --horizons "$horizons" --out "$out" ${BENCH_ARGS:-} || status=$?
done
exit $status
