#!/usr/bin/env bash
# weightbus load and checkpoint: load then checkpoint reproduces a file byte for byte, single and sharded (and
# back); every malformed file is refused with its own message before anything is published; usage and
# runtime errors of both commands.
set -uo pipefail
source "$(dirname "$0")/cli-test.sh" "$1" "$2" load-test

$fixture model "$dir/model.safetensors" 1

# A single file: load, checkpoint, identical bytes.
check "load" 0 w load "$dir/model.safetensors" --topic policy
expect_out "loaded 18 tensors"
check "checkpoint" 0 w checkpoint policy --out "$dir/single" --json
expect_json "a new file is created" 'd["files"][0]["action"] == "created" and d["version"] == 1'
cmp "$dir/model.safetensors" "$dir/single/model.safetensors" && passed=$((passed + 1)) ||
  fail "load -> checkpoint of one file is not byte-identical"
check "load --json" 0 w load "$dir/single" --topic copy --replicas 1 --json
expect_json "load --json" 'd["tensors"] == 18 and d["version"] == 1 and d["device"] == "cpu"'

# Sharded: 8000 data bytes per file at most; the index then round-trips through load and checkpoint too.
check "sharded checkpoint" 0 w checkpoint policy --out "$dir/single" --shard-size 8000 --json
expect_json "several shards" 'len(d["files"]) > 2 and d["removed"] == ["model.safetensors"]'
[ ! -e "$dir/single/model.safetensors" ] && [ -e "$dir/single/model.safetensors.index.json" ] &&
  passed=$((passed + 1)) || fail "the single file was not replaced by shards and an index"
check "load the index" 0 w load "$dir/single/model.safetensors.index.json" --topic sharded
check "checkpoint what was loaded from shards" 0 w checkpoint sharded --out "$dir/sharded" --shard-size 8000
for f in "$dir"/single/*; do
  cmp "$f" "$dir/sharded/$(basename "$f")" && passed=$((passed + 1)) || fail "$(basename "$f") differs after a round trip"
done
check "back to one file" 0 w checkpoint sharded --out "$dir/sharded" --json
expect_json "shards and index removed" 'len(d["removed"]) > 3 and len(d["files"]) == 1'
[ "$(ls "$dir/sharded")" = "model.safetensors" ] && passed=$((passed + 1)) || fail "left over: $(ls "$dir/sharded")"
cmp "$dir/model.safetensors" "$dir/sharded/model.safetensors" && passed=$((passed + 1)) ||
  fail "shards -> one file is not the original"

# Malformed files: each refused with the message of the rule it breaks, and nothing published.
$fixture malformed "$dir/bad"
cases=0
while IFS=$'\t' read -r file message; do
  check "malformed $(basename "$file")" 1 w load "$file" --topic bad
  expect_err "$message"
  cases=$((cases + 1))
done <"$dir/bad/cases.tsv"
[ "$cases" -ge 20 ] && passed=$((passed + 1)) || fail "only $cases malformed cases"
check "nothing was published" 1 w ls bad
expect_err "WB_E_NOT_FOUND"

# Usage errors (2) and failures (1).
check "load without --topic" 2 w load "$dir/model.safetensors"
expect_err "missing --topic TOPIC"
check "load without PATH" 2 w load --topic x
check "load --device gpu" 2 w load "$dir/model.safetensors" --topic x --device gpu
expect_err "--device must be cpu or cuda:N"
check "load --replicas 9" 2 w load "$dir/model.safetensors" --topic x --replicas 9
check "load of a missing file" 1 w load "$dir/absent.safetensors" --topic x
expect_err "No such file or directory"
check "load of a folder without a checkpoint" 1 w load "$dir/bad" --topic x
expect_err "neither model.safetensors.index.json nor model.safetensors"
check "load with other replicas than the topic's" 1 w load "$dir/model.safetensors" --topic policy --replicas 3
expect_err "WB_E_INVAL"
check "checkpoint without --out" 2 w checkpoint policy
expect_err "missing --out DIR"
check "checkpoint without a topic" 2 w checkpoint --out "$dir/x"
check "checkpoint --block-size 0" 2 w checkpoint policy --out "$dir/x" --block-size 0
check "checkpoint --shard-size x" 2 w checkpoint policy --out "$dir/x" --shard-size x
check "checkpoint of a missing topic" 1 w checkpoint absent --out "$dir/x"
expect_err "WB_E_NOT_FOUND"
check "checkpoint of a version not published" 1 w checkpoint policy --out "$dir/x" --version 99
expect_err "lease version 99"
check "checkpoint into a folder that cannot be made" 1 w checkpoint policy --out "$dir/no/such/dir"
expect_err "create $dir/no/such/dir"
check "no broker" 1 w --socket "$dir/absent.sock" checkpoint policy --out "$dir/x"
expect_err "WB_E_CONNECT"
for cmd in load checkpoint; do
  check "$cmd --help" 0 w "$cmd" --help
  expect_out "examples:"
done
finish
