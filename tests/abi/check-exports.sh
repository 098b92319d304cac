#!/usr/bin/env bash
# The shared library exports only wb_* functions, and its SONAME carries the ABI major.
set -euo pipefail
lib=$1
major=$2
bad=$(nm -D --defined-only "$lib" | awk '$2 != "A" && $3 !~ /^wb_/ {print $3}')
if [ -n "$bad" ]; then
  echo "symbols exported outside wb_*: $bad"
  exit 1
fi
soname=$(readelf -d "$lib" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ "$soname" = "libweightbus.so.$major" ] || { echo "SONAME is '$soname', expected libweightbus.so.$major"; exit 1; }
echo "exports: $(nm -D --defined-only "$lib" | grep -c ' T wb_') wb_* functions, SONAME $soname"
