#!/usr/bin/env bash
# Runs the plain ctest suite (the model check excluded: it is pure computation and takes minutes) RUNS
# times in a row with busy loops beside it, to find tests that depend on timing: a test that passes only on
# an idle machine fails here. Each run's result is printed; the exit status is the number of failed runs.
#   bash tests/under-load.sh BUILD_DIR [RUNS=10] [LOOPS_PER_CORE=2]
set -uo pipefail
build=${1:?usage: bash tests/under-load.sh BUILD_DIR [RUNS] [LOOPS_PER_CORE]}
runs=${2:-10}
per_core=${3:-2}
cores=$(nproc)
loops=()
stop_loops() { [ ${#loops[@]} -gt 0 ] && kill "${loops[@]}" 2>/dev/null; wait 2>/dev/null; }
trap stop_loops EXIT
for _ in $(seq $((cores * per_core))); do
  bash -c 'while :; do :; done' &
  loops+=($!)
done
echo "under-load: ${#loops[@]} busy loops on $cores cores; $runs runs of the plain suite in $build"
failed=0
for run in $(seq "$runs"); do
  log=$(mktemp)
  start=$SECONDS
  if ctest --test-dir "$build" -E protocol-model-check -j "$cores" --output-on-failure >"$log" 2>&1; then
    echo "under-load: run $run passed ($((SECONDS - start)) s)"
  else
    failed=$((failed + 1))
    echo "under-load: run $run FAILED ($((SECONDS - start)) s):"
    grep -E '^\s+[0-9]+ - ' "$log" | sed 's/^/under-load:   /'
    cp "$log" "$build/under-load-run-$run.log"
    echo "under-load:   full output in $build/under-load-run-$run.log"
  fi
  rm -f "$log"
done
echo "under-load: $((runs - failed)) of $runs runs passed"
exit "$failed"
