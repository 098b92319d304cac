#!/usr/bin/env bash
# Runs each libFuzzer harness of BUILD (configured with -DWB_FUZZ=ON) for SECONDS (default 30) from its seed
# corpus tests/fuzz/corpus/<harness>/. New inputs go to a scratch folder, not into the corpus; a finding
# stops the run with the fuzzer's report, and its input is saved as BUILD/fuzz-artifacts/<harness>-crash-*.
# A fixed seed makes a run replay the same mutations (CI does not fail by luck); tests/README.md has the
# command for runs with random seeds.
#   bash tests/fuzz/run.sh build-fuzz          the CI run
#   bash tests/fuzz/run.sh build-fuzz 3600     a long run
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: run.sh BUILD_DIR [SECONDS]}
seconds=${2:-30}
mkdir -p "$build/fuzz-artifacts"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for harness in fuzz-broker-messages fuzz-segment-header fuzz-peer-checks; do
  mkdir -p "$scratch/$harness"
  log="$scratch/$harness.log"
  echo "fuzz: $harness for ${seconds} s"
  if ! "$build/tests/fuzz/$harness" -seed=1 -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$build/fuzz-artifacts/$harness-" "$scratch/$harness" "$here/corpus/$harness" >"$log" 2>&1; then
    cat "$log"
    echo "fuzz: $harness found a problem; its input is in $build/fuzz-artifacts/" >&2
    exit 1
  fi
  grep -E "^Done|stat::peak_rss_mb" "$log" || true
done
