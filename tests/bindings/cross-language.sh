#!/usr/bin/env bash
# A Rust publisher and a Go reader, then a Go publisher and a Rust reader, through one broker: each reader
# checks every version it leases byte for byte (the model is described in both programs). Exits non-zero on
# any mismatch, failure or timeout.
# usage: cross-language.sh WEIGHTBUSD WEIGHTBUS_CLI RUST_PROGRAM GO_PROGRAM
set -uo pipefail
weightbusd=$1
cli=$2
rust=$3
go=$4
versions=40
source "$(dirname "$0")/../helpers/broker.sh"
start_broker "$weightbusd" "$cli" cross-language || exit 1

# direction PUBLISHER READER TOPIC: the reader starts first, as a server waiting for its trainer would.
direction() {
  local publisher=$1 reader=$2 topic=$3
  timeout 60 "$reader" read "$topic" "$versions" &
  local reader_pid=$!
  timeout 60 "$publisher" publish "$topic" "$versions"
  local published=$?
  wait "$reader_pid"
  local read=$?
  if [ "$published" -ne 0 ] || [ "$read" -ne 0 ]; then
    echo "FAIL: $topic: publisher exit $published, reader exit $read"
    return 1
  fi
}

failures=0
direction "$rust" "$go" rust-to-go || failures=$((failures + 1))
direction "$go" "$rust" go-to-rust || failures=$((failures + 1))
[ "$failures" -eq 0 ] && echo "cross-language: Rust -> Go and Go -> Rust agree on every byte"
