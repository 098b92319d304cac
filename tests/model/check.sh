#!/usr/bin/env bash
# Model-checks protocol.pml exhaustively with spin: assertions (no torn read, no lost version, no lease leak)
# and invalid end states (deadlock, including lost futex wake-ups), for these configurations (then commit.pml,
# a sharded version's commit, and arms.pml, GPU arms, below):
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
# verify LABEL CLAIM: compiles the pan spin made and searches every state; prints LABEL: CLAIM, or the search's
# report and FAILED (exit 1) on an error or an incomplete search.
verify() {
  cc -O2 -DSAFETY -DNOCLAIM -DCOLLAPSE -DMEMLIM=8000 -o pan pan.c
  ./pan -m100000 >out 2>&1 || true
  if ! grep -q "errors: 0" out || grep -q "Search not completed" out; then
    cat out
    echo "FAILED: $1"
    exit 1
  fi
  echo "$1: $2 ($(grep -o '[0-9.e+]* states, stored' out))"
}
for config in "${configs[@]}"; do
  read -r r versions rounds crashes arm _ <<<"$config"
  defines=(-DR="$r" -DMAXV="$versions" -DROUNDS="$rounds" -DCRASHES="$crashes")
  if [[ $arm == 1 ]]; then defines+=(-DARM); fi
  spin "${defines[@]}" -a "$model" >/dev/null
  label="R=$r, $versions versions, $rounds snapshot(s) per reader, $crashes publisher death(s)"
  if [[ $arm == 1 ]]; then label+=", a reader arming"; fi
  verify "$label" "no torn read, no lost version, no deadlock, no lease leak"
done
# The commit of a sharded topic's version (commit.pml): versions, and the records its ring keeps.
for config in "5 2" "4 3"; do
  read -r versions ring _ <<<"$config"
  spin -DMAXV="$versions" -DRING="$ring" -a "$(dirname "$model")/commit.pml" >/dev/null
  verify "sharded commit, $versions versions, a ring of $ring records, a rank's death" \
    "each version committed once, in order, with its record, none left"
done
# GPU arms (arms.pml): slot generations armed in turn while a publisher claims them.
for gens in 3 4; do
  spin -DGENS="$gens" -a "$(dirname "$model")/arms.pml" >/dev/null
  verify "GPU arms, $gens generations of a slot" \
    "copies only of a claimed, published version under the lease, every wait passes"
done
