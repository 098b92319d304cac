#!/usr/bin/env bash
# Regenerates the seed corpus tests/fuzz/corpus/<harness>/ with make-corpus from a fuzz build (or any build
# folder configured with -DWB_FUZZ=ON): bash tests/fuzz/make-corpus.sh build-fuzz
# Inputs named found-* are findings of the fuzzers, kept as regression seeds: they are not regenerated.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: make-corpus.sh BUILD_DIR}
mkdir -p "$here/corpus"
"$build/tests/fuzz/make-corpus" "$here/corpus"
