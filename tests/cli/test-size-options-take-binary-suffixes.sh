#!/usr/bin/env bash
# Every size option takes a byte count with an optional K, M, G or T suffix (powers of 1024), through one
# parser: checkpoint --shard-size and --block-size, relay --bucket, weightbusd --max-bytes-per-client; a bad
# count or suffix is refused with a message naming the option and what is wrong, and exit status 2.
set -uo pipefail
source "$(dirname "$0")/cli-test.sh" "$1" "$2" size-test --max-bytes-per-client 64M
broker=$2
$fixture model "$dir/model.safetensors" 1
check "load under a 64M per-client limit" 0 w load "$dir/model.safetensors" --topic policy

check "checkpoint --shard-size 1K --block-size 4K" 0 w checkpoint policy --out "$dir/ckpt" --shard-size 1K \
  --block-size 4K --json
expect_json "sharded at 1 KiB" 'len(d["files"]) > 1'
check "checkpoint --block-size 1M" 0 w checkpoint policy --out "$dir/ckpt2" --block-size 1M
for bad in 10X 4KB K -1 0 "" 99999999999999999999 2G; do
  check "--block-size '$bad'" 2 w checkpoint policy --out "$dir/ckpt3" --block-size "$bad"
  expect_err "weightbus: --block-size: '$bad'"
done
expect_err "is 2147483648 bytes, more than 1073741824"
check "--shard-size 1Q" 2 w checkpoint policy --out "$dir/ckpt3" --shard-size 1Q
expect_err "--shard-size: '1Q' has an unknown size suffix 'Q' (K, M, G or T: powers of 1024)"
check "relay --bucket 3T" 2 w relay --topic p --role source --rendezvous h:1 --rank 0 --world 2 --bucket 3T
expect_err "--bucket: '3T' is 3298534883328 bytes, more than 1099511627776"

for good in 4096 10K 1M 4G 1T; do
  check "weightbusd --max-bytes-per-client $good" 0 "$broker" --max-bytes-per-client "$good" --version
done
check "weightbusd --max-bytes-per-client 2P" 2 "$broker" --max-bytes-per-client 2P
expect_err "weightbusd: --max-bytes-per-client '2P' has an unknown size suffix 'P'"
check "weightbusd --max-bytes-per-client 0" 2 "$broker" --max-bytes-per-client 0
expect_err "'0' is 0 bytes, less than 1"
check "weightbusd --max-bytes-per-client 20000000T" 2 "$broker" --max-bytes-per-client 20000000T
expect_err "is too large for 64 bits"
finish
