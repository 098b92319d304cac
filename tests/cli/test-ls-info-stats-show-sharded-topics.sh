#!/usr/bin/env bash
# ls, info and stats of a sharded topic (two ranks, version 1 committed, version 2 published by rank 0 only):
# ls says "sharded 2 ranks"; info lists the logical tensors, each rank, each tensor's shards per rank (region,
# shape, replicated) and the layout as complete; stats shows each rank's published version and lag and that version 2 waits for rank 1.
set -uo pipefail
source "$(dirname "$0")/cli-test.sh" "$1" "$2" sharded-cli-test
library=$(ldd "$cli" | awk '/libweightbus/ {print $3}')
sanitizer=$(ldd "$library" | awk '/libasan|libtsan/ {print $3}')

LD_PRELOAD=$sanitizer ASAN_OPTIONS=detect_leaks=0 WEIGHTBUS_LIBRARY=$library \
  PYTHONPATH="$here/../../bindings/python" /usr/bin/python3 "$here/sharded_ranks.py" llama "$dir/ready" "$dir/stop" &
ranks=$!
for _ in $(seq 200); do [ -e "$dir/ready" ] && break; sleep 0.05; done
[ -e "$dir/ready" ] && passed=$((passed + 1)) || fail "the ranks did not publish"

check "ls" 0 w ls
expect_out "sharded 2 ranks"
check "ls --json" 0 w ls --json
expect_json "ranks" 'd["topics"][0]["ranks"] == 2 and d["topics"][0]["layout_complete"] and d["topics"][0]["latest"] == 1'
check "ls of the topic" 0 w ls llama
expect_out "norm"

check "info" 0 w info llama
expect_out "2, layout complete"
expect_out "version 2 waits for rank(s) 1"
expect_out "[2:4, 0:2]"
expect_out "[0:2] replicated"
check "info --json" 0 w info llama --json
expect_json "ranks in detail" '[r["published"] for r in d["topic"]["ranks_detail"]] == [2, 1] and d["topic"]["waits_for"].startswith("version 2 waits for rank(s) 1")'
expect_json "shards per rank" '[(s["rank"], s["offset"], s["shape"], s["replicated"]) for s in d["tensors"][0]["shards"]] == [(0, [0, 0], [2, 2], False), (1, [2, 0], [2, 2], False)] and d["tensors"][0]["address"] == 0'
expect_json "replicated shards" '[(s["rank"], s["replicated"]) for s in d["tensors"][1]["shards"]] == [(0, True), (1, True)] and d["tensors"][1]["shape"] == [2]'

check "stats" 0 w stats llama
expect_out "LAST PUBLISH"
expect_out "model 'llama': version 2 waits for rank(s) 1"
check "stats --json" 0 w stats --json
expect_json "rank lag" '[(r["rank"], r["published"], r["lag"]) for r in d["topics"][0]["ranks"]] == [(0, 2, 0), (1, 1, 1)]'

touch "$dir/stop"
wait $ranks && passed=$((passed + 1)) || fail "the ranks' process exited $?"
check "stats once the publishers left" 0 w stats --json
expect_json "version 2 still waits for rank 1, which has no publisher" '"1 (no publisher, last published 1" in d["topics"][0]["waits_for"]'
finish
