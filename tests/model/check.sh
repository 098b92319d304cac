#!/usr/bin/env bash
# Model-checks protocol.pml exhaustively with spin: assertions (no torn read, no lost version, no lease leak)
# and invalid end states (deadlock, including lost futex wake-ups), for these configurations:
#   R  versions  snapshots/reader  publisher deaths
configs=(
  "1   2         2                 1"   # in place: dirty marks, takeover, acquires waiting for the publish
  "2   2         2                 1"   # replicas with a death mid-update
  "2   3         1                 0"   # replica reuse once versions outnumber replicas
  "3   3         1                 0"   # a spare replica: one older version may stay pinned
)
set -euo pipefail
model=$(cd "$(dirname "$0")" && pwd)/protocol.pml
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
for config in "${configs[@]}"; do
  read -r r versions rounds crashes _ <<<"$config"
  spin -DR="$r" -DMAXV="$versions" -DROUNDS="$rounds" -DCRASHES="$crashes" -a "$model" >/dev/null
  cc -O2 -DSAFETY -DNOCLAIM -DCOLLAPSE -DMEMLIM=8000 -o pan pan.c
  ./pan -m100000 >out 2>&1 || true
  label="R=$r, $versions versions, $rounds snapshot(s) per reader, $crashes publisher death(s)"
  if ! grep -q "errors: 0" out || grep -q "Search not completed" out; then
    cat out
    echo "FAILED: $label"
    exit 1
  fi
  echo "$label: no torn read, no lost version, no deadlock, no lease leak ($(grep -o '[0-9.e+]* states, stored' out))"
done
