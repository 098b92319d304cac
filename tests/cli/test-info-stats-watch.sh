#!/usr/bin/env bash
# weightbus info, stats and watch on a live broker: info of a topic and of one tensor (text and JSON), stats
# showing the broker's use and counters and a held lease's lag and hold time, watch printing a version as it is
# published; and their errors.
set -uo pipefail
source "$(dirname "$0")/cli-test.sh" "$1" "$2" info-test
library=$(ldd "$cli" | awk '/libweightbus/ {print $3}')
# In the sanitizer builds the library needs its sanitizer runtime (ASan or TSan) loaded first, which python3
# does not do by itself; python's own allocations are not what the leak checker is for.
sanitizer=$(ldd "$library" | awk '/libasan|libtsan/ {print $3}')

$fixture model "$dir/model.safetensors" 1
check "load" 0 w load "$dir/model.safetensors" --topic policy

check "info" 0 w info policy
expect_out "metadata   {\"format\":\"pt\""
expect_out "model.lm_head.weight"
check "info --json" 0 w info policy --json
expect_json "topic" 'd["topic"]["latest"] == 1 and d["topic"]["tensor_count"] == 18 and d["topic"]["replicas"] == 2'
expect_json "tensors with addresses" 'all(t["address"] > 0 for t in d["tensors"]) and d["tensors"][4]["name"] == "positions"'
check "info of one tensor" 0 w info policy/ids --json
expect_json "one tensor" 'len(d["tensors"]) == 1 and d["tensors"][0]["shape"] == [7] and d["tensors"][0]["dtype"] == "i32"'
check "info of one tensor, text" 0 w info policy/model.norm.weight
expect_out "model.norm.weight"

# A reader holding version 1 while version 2 is published: lag 1, and a hold time that grows.
python_done=$dir/stop
LD_PRELOAD=$sanitizer ASAN_OPTIONS=detect_leaks=0 /usr/bin/python3 "$here/lease_holder.py" "$library" policy "$dir/ready" \
  "$python_done" &
holder=$!
for _ in $(seq 200); do [ -e "$dir/ready" ] && break; sleep 0.05; done
[ -e "$dir/ready" ] && passed=$((passed + 1)) || fail "the lease holder did not take its lease"
check "load version 2" 0 w load "$dir/model.safetensors" --topic policy
sleep 0.1
check "stats --json" 0 w stats --json
expect_json "one lease, lag 1" 'len(d["leases"]) == 1 and d["leases"][0]["version"] == 1 and d["leases"][0]["lag"] == 1'
expect_json "held at least 100 ms" 'd["leases"][0]["held_ns"] >= 100000000 and d["leases"][0]["client"] == "python3"'
expect_json "topic summary" 'd["topics"][0]["leases"] == 1 and d["topics"][0]["max_lag"] == 1 and d["topics"][0]["version_bytes"] * 2 == d["topics"][0]["bytes"]'
expect_json "the broker" 'd["broker"]["publishes"] == 2 and d["broker"]["clients"] == 2 and d["broker"]["most_leases_held"] == 1 and d["broker"]["topics"] == 1 and d["broker"]["version"] == "0.1.0" and d["broker"]["adoptions"] == 0'
check "stats policy" 0 w stats policy
expect_out "LONGEST HOLD"
expect_out "2 versions published"
expect_out "python3"
touch "$python_done"
wait $holder
check "stats with no lease" 0 w stats
expect_out "no leases held"

# watch sees a version published while it waits.
w watch policy --since 2 --count 1 --timeout-ms 20000 --json >"$dir/watch.out" 2>"$dir/watch.err" &
watcher=$!
check "load version 3" 0 w load "$dir/model.safetensors" --topic policy
wait $watcher && passed=$((passed + 1)) || { fail "watch exited $?"; cat "$dir/watch.err"; }
grep -q '"version":3' "$dir/watch.out" && grep -q '"metadata":"{\\"format\\":\\"pt\\"' "$dir/watch.out" &&
  passed=$((passed + 1)) || { fail "watch did not print version 3:"; cat "$dir/watch.out"; }

# Errors.
check "info without a topic" 2 w info
expect_err "missing TOPIC[/NAME]"
check "info of a missing topic" 1 w info absent
expect_err "WB_E_NOT_FOUND"
check "info of a missing tensor" 1 w info policy/absent
expect_err "topic 'policy' has no tensor or view named 'absent'"
check "stats of a missing topic" 1 w stats absent
expect_err "no topic 'absent'"
check "stats with two topics" 2 w stats a b
check "stats --bogus" 2 w stats --bogus
check "no broker" 1 w --socket "$dir/absent.sock" stats
expect_err "WB_E_CONNECT"
for cmd in info stats; do
  check "$cmd --help" 0 w "$cmd" --help
  expect_out "examples:"
done
check "global help lists every command" 0 w --help
for cmd in ls info watch clients stats load checkpoint map diagnose demo; do expect_out "  $cmd "; done
finish
