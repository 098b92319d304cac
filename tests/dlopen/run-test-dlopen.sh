#!/usr/bin/env bash
# test-dlopen must not depend on libweightbus at link time, and must work against a broker once it loads the
# library by its SONAME from LIBRARY_DIR.
# usage: run-test-dlopen.sh TEST_DLOPEN WEIGHTBUSD WEIGHTBUS_CLI LIBRARY_DIR
set -uo pipefail
program=$1
weightbusd=$2
cli=$3
library_dir=$4

if readelf -d "$program" | grep NEEDED | grep -q libweightbus; then
  echo "FAIL: $program links libweightbus: $(readelf -d "$program" | grep NEEDED | grep libweightbus)"
  exit 1
fi

source "$(dirname "$0")/../helpers/broker.sh"
start_broker "$weightbusd" "$cli" dlopen || exit 1

LD_LIBRARY_PATH=$library_dir "$program"
