#!/usr/bin/env bash
# Model-checks protocol.pml exhaustively with spin: assertions (no torn read, no lost version, no lease leak)
# and invalid end states (deadlock, including lost futex wake-ups), for these configurations (then commit.pml,
# a sharded version's commit, below):
#   R  versions  snapshots/reader  publisher deaths  a reader that arms (wb_plan_arm)
configs=(
  "1   2         2                 1                 0"   # in place: dirty marks, takeover, acquires waiting
  "2   2         2                 1                 0"   # replicas with a death mid-update
  "2   3         1                 0                 0"   # replica reuse once versions outnumber replicas
  "3   3         1                 0                 0"   # a spare replica: one older version may stay pinned
  "1   2         2                 1                 1"   # arms of the version being written in place
  "2   3         1                 0                 1"   # arms pinning a replica once they fall behind
)
set -euo pipefail
model=$(cd "$(dirname "$0")" && pwd)/protocol.pml
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
for config in "${configs[@]}"; do
  read -r r versions rounds crashes arm _ <<<"$config"
  defines=(-DR="$r" -DMAXV="$versions" -DROUNDS="$rounds" -DCRASHES="$crashes")
  if [[ $arm == 1 ]]; then defines+=(-DARM); fi
  spin "${defines[@]}" -a "$model" >/dev/null
  cc -O2 -DSAFETY -DNOCLAIM -DCOLLAPSE -DMEMLIM=8000 -o pan pan.c
  ./pan -m100000 >out 2>&1 || true
  label="R=$r, $versions versions, $rounds snapshot(s) per reader, $crashes publisher death(s)"
  if [[ $arm == 1 ]]; then label+=", a reader arming"; fi
  if ! grep -q "errors: 0" out || grep -q "Search not completed" out; then
    cat out
    echo "FAILED: $label"
    exit 1
  fi
  echo "$label: no torn read, no lost version, no deadlock, no lease leak ($(grep -o '[0-9.e+]* states, stored' out))"
done
# The commit of a sharded topic's version (commit.pml): versions, and the records its ring keeps.
for config in "5 2" "4 3"; do
  read -r versions ring _ <<<"$config"
  spin -DMAXV="$versions" -DRING="$ring" -a "$(dirname "$model")/commit.pml" >/dev/null
  cc -O2 -DSAFETY -DNOCLAIM -DCOLLAPSE -DMEMLIM=8000 -o pan pan.c
  ./pan -m100000 >out 2>&1 || true
  label="sharded commit, $versions versions, a ring of $ring records, a rank's death"
  if ! grep -q "errors: 0" out || grep -q "Search not completed" out; then
    cat out
    echo "FAILED: $label"
    exit 1
  fi
  echo "$label: each version committed once, in order, with its record, none left ($(grep -o '[0-9.e+]* states, stored' out))"
done
