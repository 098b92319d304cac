#!/usr/bin/env bash
# What a stop does with the topics: weightbusd --on-stop keep leaves the segment on SIGTERM, and the next broker
# of the name adopts it with its versions; `weightbus stop --remove` removes it whatever --on-stop says, and
# `stop --keep` keeps it whatever --on-stop says. A bad --on-stop, and --keep with --remove, are refused.
set -uo pipefail
cli=$1
weightbusd=$2
dir=$(mktemp -d)
source "$(dirname "$0")/../helpers/check.sh"
source "$(dirname "$0")/../helpers/shm.sh"
unset WEIGHTBUS_SOCKET WEIGHTBUS_NAME
sock=$dir/b.sock
name=keep-$$
segment=/dev/shm/weightbus-$(id -u)-$name
broker=
clean_up() {
  kill -9 $broker 2>/dev/null
  wait
  shm_clean "$name" 1
  rm -rf "$dir"
}
trap clean_up EXIT

start() {  # start [WEIGHTBUSD OPTIONS...]: a foreground broker of $name at $sock, answering
  "$weightbusd" --foreground --socket "$sock" --name "$name" "$@" 2>>"$dir/broker.log" &
  broker=$!
  for _ in $(seq 200); do "$cli" --socket "$sock" ls >/dev/null 2>&1 && return 0; sleep 0.05; done
  fail "the broker does not answer"
}
latest() {  # latest EXPECTED: the topic's latest version, as the running broker serves it
  check "the topic is there" 0 "$cli" --socket "$sock" info policy --json
  expect_json "latest version $1" "d['topic']['latest'] == $1"
}

check "a bad --on-stop" 2 "$weightbusd" --foreground --socket "$sock" --on-stop maybe
expect_err "weightbusd: --on-stop 'maybe' is not keep or remove"
check "--keep with --remove" 2 "$cli" --socket "$sock" stop --keep --remove
expect_err "stop: --keep and --remove exclude each other"

/usr/bin/python3 "$(dirname "$0")/safetensors_fixture.py" model "$dir/model.safetensors" 1
start --on-stop keep
check "load" 0 "$cli" --socket "$sock" load "$dir/model.safetensors" --topic policy
latest 1

# SIGTERM to a broker of --on-stop keep: the segment stays, and the next broker adopts it.
check "stop (SIGTERM, --on-stop keep)" 0 "$cli" --socket "$sock" stop
wait "$broker"
[ -e "$segment" ] && passed=$((passed + 1)) || fail "--on-stop keep removed the segment"
grep -qF "stays, with every topic, for the next broker named $name" "$dir/broker.log" && passed=$((passed + 1)) ||
  { fail "the log does not say the segment stays:"; cat "$dir/broker.log"; }
start
grep -qF "adopted segment /weightbus-$(id -u)-$name" "$dir/broker.log" && passed=$((passed + 1)) ||
  { fail "the next broker did not adopt the segment:"; cat "$dir/broker.log"; }
latest 1

# stop --keep on a broker of the default --on-stop (remove): kept all the same.
check "stop --keep" 0 "$cli" --socket "$sock" stop --keep
wait "$broker"
[ -e "$segment" ] && passed=$((passed + 1)) || fail "stop --keep removed the segment"
start --on-stop keep
latest 1

# stop --remove on a broker of --on-stop keep: removed, the exit a clean one.
check "stop --remove" 0 "$cli" --socket "$sock" stop --remove
wait "$broker"
check "nothing left in /dev/shm" 0 shm_clean "$name" $?
[ -e "$sock" ] && fail "the socket is still there" || passed=$((passed + 1))
start
check "the topic is gone with the segment" 1 "$cli" --socket "$sock" info policy
check "stop (SIGTERM, the default --on-stop remove)" 0 "$cli" --socket "$sock" stop
wait "$broker"
check "nothing left in /dev/shm" 0 shm_clean "$name" $?
finish
