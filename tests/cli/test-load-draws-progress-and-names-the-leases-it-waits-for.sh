#!/usr/bin/env bash
# weightbus load on a terminal draws the progress bar `checkpoint` draws (and none into a pipe or with --json);
# a load into a topic of one replica that a reader's lease holds says who holds it while it waits
# ("waiting for pid N (NAME) holding version V") and goes on once the lease is released; rm refused by a lease
# names its holder in its hint.
set -uo pipefail
source "$(dirname "$0")/cli-test.sh" "$1" "$2" load-wait-test
$fixture model "$dir/model.safetensors" 1

# A terminal on stderr: util-linux's script(1) runs the load on a pseudo-terminal and records what it drew.
script -qec "$(printf '%q ' "$cli" load "$dir/model.safetensors" --topic policy --replicas 1)" "$dir/tty.out" \
  >/dev/null 2>&1 </dev/null
grep -q "load \[#*" "$dir/tty.out" && grep -q "100%" "$dir/tty.out" && passed=$((passed + 1)) ||
  { fail "no progress bar on a terminal:"; cat -v "$dir/tty.out"; }
check "load into a pipe" 0 w load "$dir/model.safetensors" --topic policy --replicas 1
grep -q "load \[" "$dir/err" && fail "a progress bar went into a pipe" || passed=$((passed + 1))
script -qec "$(printf '%q ' "$cli" load "$dir/model.safetensors" --topic policy --replicas 1 --json)" \
  "$dir/tty-json.out" >/dev/null 2>&1 </dev/null
grep -q "load \[" "$dir/tty-json.out" && fail "a progress bar with --json" || passed=$((passed + 1))

# A reader holds version 3 of the one-replica topic: the next load waits for it and names it.
hold_lease policy
check "rm of a leased topic" 1 w rm policy
expect_err "WB_E_BUSY"
expect_err "hint: leased by pid $holder (python3) holding version 3"
w load "$dir/model.safetensors" --topic policy --replicas 1 >"$dir/load.out" 2>"$dir/load.err" &
loader=$!
for _ in $(seq 200); do grep -q "waiting for" "$dir/load.err" && break; sleep 0.05; done
grep -qF "weightbus: load: waiting for pid $holder (python3) holding version 3 of 'policy'" "$dir/load.err" &&
  passed=$((passed + 1)) || { fail "load does not name the lease it waits for:"; cat "$dir/load.err"; }
touch "$dir/stop"
wait $holder
wait $loader && passed=$((passed + 1)) || { fail "load exited $? once the lease was released"; cat "$dir/load.err"; }
grep -q "as version 4" "$dir/load.out" && passed=$((passed + 1)) || { fail "no version 4:"; cat "$dir/load.out"; }
check "rm once no lease is held" 0 w rm policy
finish
