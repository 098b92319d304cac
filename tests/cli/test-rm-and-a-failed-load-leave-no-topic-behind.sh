#!/usr/bin/env bash
# weightbus rm removes an unused topic with its shared memory, and refuses one a reader leases or that does not
# exist; a load that fails after creating its topic removes it again, while a topic that existed before the
# failed load keeps its versions.
set -uo pipefail
# 30 tensor entries: one load of the 18-tensor model fits, a second does not.
source "$(dirname "$0")/cli-test.sh" "$1" "$2" rm-test --max-tensors 30 --max-tensors-per-client 30
allocations() { ls /dev/shm | grep -c "^weightbus-$(id -u)-$broker_name\.a"; }

$fixture model "$dir/model.safetensors" 1
check "load" 0 w load "$dir/model.safetensors" --topic policy
check "a load that runs out of tensor entries" 1 w load "$dir/model.safetensors" --topic second
expect_err "WB_E_NOSPC"
check "the failed load left no topic" 1 w ls second
expect_err "WB_E_NOT_FOUND"
check "only policy is listed" 0 w ls --json
expect_json "one topic" '[t["name"] for t in d["topics"]] == ["policy"]'
check "a failed load into an existing topic" 1 w load "$dir/model.safetensors" --topic policy --replicas 3
check "the existing topic keeps its version" 0 w ls policy --json
expect_json "version 1" 'd["topics"][0]["latest"] == 1'
[ "$(allocations)" = 1 ] && passed=$((passed + 1)) || fail "expected one allocation, found $(allocations)"

# A reader's lease: refused, naming the leases.
hold_lease policy
check "rm of a leased topic" 1 w rm policy
expect_err "WB_E_BUSY"
expect_err "1 lease(s)"
touch "$dir/stop"
wait "$holder"

check "rm" 0 w rm policy
expect_out "removed topic 'policy'"
check "ls after rm" 0 w ls --json
expect_json "no topic" 'd["topics"] == []'
[ "$(allocations)" = 0 ] && passed=$((passed + 1)) || fail "rm left $(allocations) allocation(s) in /dev/shm"
check "rm again" 1 w rm policy
expect_err "WB_E_NOT_FOUND"
check "rm --json" 1 w rm absent --json
check "rm without TOPIC" 2 w rm
expect_err "TOPIC"
check "rm of two topics" 2 w rm a b
check "rm of an empty name" 1 w rm ""
expect_err "WB_E_NAME_TOO_LONG"
check "rm --help" 0 w rm --help
expect_out "examples:"
finish
