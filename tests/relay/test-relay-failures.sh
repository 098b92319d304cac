#!/usr/bin/env bash
# weightbus relay when peers fail, TCP transport, three brokers standing in for nodes: a stopped sink (SIGSTOP)
# holds the source up no longer than --timeout, the other sink keeps receiving, and the stopped one catches up
# when it resumes; a killed sink is dropped at once; a killed source makes the sink say so and keep serving its
# last version, and a restarted source feeds it again.
set -uo pipefail
source "$(dirname "$0")/relay-test.sh"
start_node a && start_node b && start_node c || exit 1
port=$(free_port)
rv=(--topic policy --rendezvous 127.0.0.1:$port --world 3 --transport tcp --timeout 2000)
"$bin/relay-publisher" "$dir/a.sock" policy 1 1 0 || fail "the first version"
relay a source "${rv[@]}" --role source --rank 0 --bucket 64K
source_pid=$last_pid
relay b sink-b "${rv[@]}" --role sink --rank 1
b_pid=$last_pid
relay c sink-c "${rv[@]}" --role sink --rank 2
c_pid=$last_pid
"$bin/relay-publisher" "$dir/a.sock" policy 2 10 20 || fail "versions 2..10"
same a b 10
same a c 10

kill -STOP "$b_pid"
start=$SECONDS
"$bin/relay-publisher" "$dir/a.sock" policy 11 20 20 || fail "versions 11..20"
same a c 20
[ $((SECONDS - start)) -lt 15 ] && passed=$((passed + 1)) || fail "the stopped sink held the source up for $((SECONDS - start)) s"
wait_log "$dir/source.err" "dropping the group" 60
kill -CONT "$b_pid"
same a b 20

kill -9 "$b_pid"
"$bin/relay-publisher" "$dir/a.sock" policy 21 30 20 || fail "versions 21..30"
same a c 30
wait_log "$dir/source.err" "rank 1 is gone" 60

kill -9 "$source_pid"
wait_log "$dir/sink-c.err" "lost the source at 127.0.0.1:$port" 60
wait_log "$dir/sink-c.err" "serving version 30 and reconnecting" 60
same a c 30
kill -0 "$c_pid" 2>/dev/null && passed=$((passed + 1)) || fail "the sink exited when the source died"
relay a source2 "${rv[@]}" --role source --rank 0 --bucket 64K
"$bin/relay-publisher" "$dir/a.sock" policy 31 35 50 || fail "versions 31..35"
same a c 35
finish
