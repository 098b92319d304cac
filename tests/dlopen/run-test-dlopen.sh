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

dir=$(mktemp -d)
export WEIGHTBUS_SOCKET=$dir/broker.sock
"$weightbusd" --foreground --socket "$WEIGHTBUS_SOCKET" --name "dlopen-$$" --log-level warn &
broker=$!
trap 'kill $broker 2>/dev/null; wait $broker 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 200); do "$cli" ls >/dev/null 2>&1 && break; sleep 0.05; done

LD_LIBRARY_PATH=$library_dir "$program"
