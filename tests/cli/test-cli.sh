#!/usr/bin/env bash
# The weightbus CLI end to end: the demo runs, every command answers a live broker in text and valid JSON,
# and bad input gets exit status 2 (usage) or 1 (a failed call) with a message.
set -uo pipefail
cli=$1
broker=$2
failures=0
passed=0
source "$(dirname "$0")/../helpers/broker.sh"
start_broker "$broker" "$cli" cli-test || exit 1
dir=$broker_dir

check() {  # check DESCRIPTION WANT_STATUS COMMAND...
  local what=$1 want=$2
  shift 2
  "$@" >"$dir/out" 2>"$dir/err"
  local got=$?
  if [ "$got" -ne "$want" ]; then
    echo "FAIL: $what: exit $got, expected $want"; cat "$dir/out" "$dir/err"; failures=$((failures + 1))
  else
    passed=$((passed + 1))
  fi
}

json_ok() { /usr/bin/python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin.read().splitlines() if l.strip()]' <"$dir/out"; }

sock=$WEIGHTBUS_SOCKET
check "demo" 0 "$cli" demo --versions 3 --interval-ms 10 --weightbusd "$broker"
# The publisher's line for a version comes before the reader's line for it, however fast the reader wakes.
check "a fast demo" 0 "$cli" demo --versions 200 --interval-ms 0 --weightbusd "$broker"
awk '$1 == "publisher:" && $3 == "version" { said[$4] = 1 }
     $1 == "reader:" && $2 == "version" && !($3 in said) { print "FAIL: the reader spoke first: " $0; bad = 1 }
     END { exit bad }' "$dir/out" || failures=$((failures + 1))

check "ls on an empty broker" 0 "$cli" --socket "$sock" ls
check "ls --json" 0 "$cli" --socket "$sock" ls --json
json_ok || { echo "FAIL: ls --json is not JSON"; failures=$((failures + 1)); }
check "clients --json" 0 "$cli" --socket "$sock" clients --json
json_ok || { echo "FAIL: clients --json is not JSON"; failures=$((failures + 1)); }
grep -q '"self": *true' "$dir/out" || { echo "FAIL: clients does not mark itself"; failures=$((failures + 1)); }
check "watch of a missing topic" 1 "$cli" --socket "$sock" watch no-such-topic --count 1
grep -q WB_E_NOT_FOUND "$dir/err" || { echo "FAIL: watch does not name WB_E_NOT_FOUND"; failures=$((failures + 1)); }
check "ls of a missing topic" 1 "$cli" --socket "$sock" ls no-such-topic
check "no broker" 1 "$cli" --socket "$dir/absent.sock" ls
grep -q WB_E_CONNECT "$dir/err" || { echo "FAIL: no WB_E_CONNECT message"; failures=$((failures + 1)); }
check "unknown command" 2 "$cli" bogus
check "unknown option" 2 "$cli" ls --bogus
check "watch without a topic" 2 "$cli" --socket "$sock" watch
check "bad --count" 2 "$cli" --socket "$sock" watch t --count -3
for cmd in ls watch clients demo; do check "$cmd --help" 0 "$cli" "$cmd" --help; done
check "broker --help" 0 "$broker" --help
check "broker bad flag" 2 "$broker" --max-topics zero
echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
