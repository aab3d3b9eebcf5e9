#!/usr/bin/env bash
# Run `tsforecast bench` jobs side by side on one machine (a GPU box has many cores and an idle GPU
# while one small model trains), each into its own folder, then merge them into one results folder.
#
#   bash benchmarks/scripts/parallel_sweep.sh OUT SECONDS "MODELS|DATASETS|HORIZONS" ...
#
# Each job is resumable (a rerun skips finished runs); SECONDS bounds every job so the merge always
# happens (an interrupted job loses only its run in progress). Parts live in OUT/parts/.
set -u
out=$1; seconds=$2; shift 2
mkdir -p "$out/parts"
python=${PYTHON:-python}
for job in "$@"; do
  IFS='|' read -r models datasets horizons <<<"$job"
  part="$out/parts/${models//,/+}_${datasets//,/+}_${horizons//,/+}"
  OMP_NUM_THREADS=1 timeout "$seconds" "$python" -m tsforecast bench --models "$models" --datasets "$datasets" \
    --horizons "$horizons" --out "$part" >"$part.log" 2>&1 &
done
wait
parts=()
for part in "$out"/parts/*/; do [ -f "$part/results.csv" ] && parts+=("$part"); done
[ ${#parts[@]} -gt 0 ] && "$python" -m tsforecast report --out "$out" --merge "${parts[@]}"
