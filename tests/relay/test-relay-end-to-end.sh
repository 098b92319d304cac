#!/usr/bin/env bash
# weightbus relay end to end on one host, TCP transport: three brokers of different names stand in for three
# nodes. A trainer publishes 100 versions on node a; the source relays them to sink b (there from the start)
# and sink c (joining after version 40: it first gets the latest in full); both end byte-identical to a, with
# the same version numbers and metadata, and buckets far smaller than the tensors.
set -uo pipefail
source "$(dirname "$0")/relay-test.sh"
start_node a && start_node b && start_node c || exit 1
port=$(free_port)
rv=(--topic policy --rendezvous 127.0.0.1:$port --world 3 --transport tcp --timeout 3000)

"$bin/relay-publisher" "$dir/a.sock" policy 1 1 0 || fail "the first version"
relay a source "${rv[@]}" --role source --rank 0 --bucket 4K
relay b sink-b "${rv[@]}" --role sink --rank 1
wait_log "$dir/source.out" "relayed version 1 " 60
same a b 1
"$bin/relay-publisher" "$dir/a.sock" policy 2 40 20 || fail "versions 2..40"
same a b 40
relay c sink-c "${rv[@]}" --role sink --rank 2
wait_log "$dir/source.err" "rank 2 joined, holding version 0" 60
# Version 41 alone, relayed before the rest: a source that is slower than the trainer (ThreadSanitizer on a
# loaded machine) relays only the latest and would fold 41 into a later version's changes.
"$bin/relay-publisher" "$dir/a.sock" policy 41 41 0 || fail "version 41"
wait_log "$dir/source.out" "relayed version 41 " 60
"$bin/relay-publisher" "$dir/a.sock" policy 42 100 10 || fail "versions 42..100"
same a b 100
same a c 100
grep -q "by catch-up" "$dir/source.out" && passed=$((passed + 1)) || fail "the late joiner got no catch-up"
grep -q "to 2 sink(s) by broadcast" "$dir/source.out" && passed=$((passed + 1)) || fail "no broadcast to both sinks"
check "ls on node c" 0 "$cli" --socket "$dir/c.sock" info policy --json
expect_out '"latest":100'
# Each relayed version sent only what changed: version 41 rewrites one tensor (t5, 32 KiB).
grep -q "relayed version 41 to 2 sink(s) by broadcast: 1 tensors, 32768 bytes" "$dir/source.out" && passed=$((passed + 1)) ||
  { fail "version 41 did not send only its changed tensor:"; grep "version 41 " "$dir/source.out"; }
kill -TERM "${pids[@]:3}"
for p in "${pids[@]:3}"; do wait "$p"; s=$?; [ $s -eq 0 ] && passed=$((passed + 1)) || fail "a relay exited $s on SIGTERM"; done
finish
