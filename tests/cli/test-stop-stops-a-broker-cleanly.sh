#!/usr/bin/env bash
# `weightbus stop` asks the broker listening on a socket (of our uid) for its pid, sends it SIGTERM and returns
# once it has exited: the socket and the segment are gone. It refuses clearly when nobody listens, says so
# when the broker does not answer within the timeout, and takes --json like every command.
set -uo pipefail
cli=$1
weightbusd=$2
dir=$(mktemp -d)
source "$(dirname "$0")/../helpers/check.sh"
source "$(dirname "$0")/../helpers/shm.sh"
unset WEIGHTBUS_SOCKET WEIGHTBUS_NAME
export XDG_RUNTIME_DIR=$dir/run
mkdir -m 700 "$XDG_RUNTIME_DIR"
sock=$dir/fg.sock
fg=fg-$$
daemon=daemon-$$
broker=
# After a failure half-way: whatever still runs is stopped, and what it leaves removed.
clean_up() {
  "$cli" --name "$daemon" stop >/dev/null 2>&1
  kill -9 $broker 2>/dev/null
  wait
  shm_clean "$fg" 1
  shm_clean "$daemon" 1
  rm -rf "$dir"
}
trap clean_up EXIT

# Waits at most 30 s for our child $1 to exit and returns its status. One that does not is described (its state
# and signal masks: a stop signal left pending shows there) with the broker's log, killed, and counted as a
# failure (status 124), so that a hang is a diagnosis rather than the test's timeout.
wait_exit() {
  local pid=$1 state
  for _ in $(seq 600); do
    state=$(sed -n 's/^State:\t\(.\).*/\1/p' "/proc/$pid/status" 2>/dev/null)
    if [ -z "$state" ] || [ "$state" = Z ]; then
      wait "$pid"
      return
    fi
    sleep 0.05
  done
  state=$(grep -E '^(State|SigPnd|ShdPnd|SigBlk|SigCgt)' "/proc/$pid/status" | tr '\t\n' '  ')
  fail "pid $pid has not exited after 30 s: $state"
  tail -5 "$dir/fg.log"
  kill -9 "$pid"
  wait "$pid"
  return 124
}

check "nobody listens" 1 "$cli" --socket "$dir/none.sock" stop
expect_err "weightbus: stop: no broker listens at $dir/none.sock (connect): No such file or directory"
check "nobody listens, --json" 1 "$cli" --socket "$dir/none.sock" stop --json
expect_err "no broker listens at $dir/none.sock"
check "a stray argument" 2 "$cli" stop now
check "a bad timeout" 2 "$cli" stop --timeout-ms 0
expect_err "--timeout-ms must be between 1 and 86400000"

# A broker of ours in the foreground: the pid stop names is its pid, and its exit is a clean one.
start_fg() {
  "$weightbusd" --foreground --socket "$sock" --name "$fg" --log-level warn 2>>"$dir/fg.log" &
  broker=$!
  for _ in $(seq 200); do "$cli" --socket "$sock" ls >/dev/null 2>&1 && return 0; sleep 0.05; done
  fail "the broker does not answer"
}
start_fg
check "stop --json" 0 "$cli" --socket "$sock" stop --json
expect_json "the broker's pid and socket" "d['pid'] == $broker and d['socket'] == '$sock' and d['stopped'] is True"
wait_exit "$broker"  # at once: stop returned once the broker had exited
check "it exited cleanly" 0 shm_clean "$fg" $?
[ -e "$sock" ] && fail "the socket is still there" || passed=$((passed + 1))

# A broker that cannot answer (stopped): stop says so after the timeout, signals nothing, and the broker runs on.
start_fg
kill -STOP "$broker"
check "a broker that does not answer in time" 1 "$cli" --socket "$sock" stop --timeout-ms 300
expect_err "attach to the broker at $sock: WB_E_TIMEOUT"
kill -CONT "$broker"
"$cli" --socket "$sock" ls >/dev/null && passed=$((passed + 1)) || fail "the broker was signalled"
check "then stop stops it" 0 "$cli" --socket "$sock" stop
wait_exit "$broker"
check "then it exits cleanly" 0 shm_clean "$fg" $?

# A stop the moment the socket appears (a supervisor, a test fixture): the signal waits, blocked, in the
# broker's signalfd, and the broker stops cleanly every time instead of dying of it.
for round in $(seq 20); do
  started=$SECONDS
  rm -f "$sock"
  "$weightbusd" --foreground --socket "$sock" --name "$fg" --log-level warn 2>>"$dir/fg.log" &
  broker=$!
  until [ -S "$sock" ] || ! kill -0 "$broker" 2>/dev/null || [ $SECONDS -gt $((started + 30)) ]; do :; done
  kill -TERM "$broker"
  wait_exit "$broker"
  status=$?
  shm_clean "$fg" $status || status=1
  [ $status -eq 0 ] || { fail "round $round: SIGTERM as the socket appeared: exit status $status"; break; }
done
[ "${status:-1}" -eq 0 ] && passed=$((passed + 1))

# A daemonized broker, found by --name in the default path.
check "a daemonized broker" 0 "$weightbusd" --name "$daemon"
check "stop --name" 0 "$cli" --name "$daemon" stop
expect_out "stopped the broker at $XDG_RUNTIME_DIR/weightbus/$daemon.sock (pid "
check "no segment left" 0 shm_clean "$daemon" 0
check "stopped already" 1 "$cli" --name "$daemon" stop
expect_err "no broker listens at $XDG_RUNTIME_DIR/weightbus/$daemon.sock"

# A broker of another uid (as root, the tests act as 65534) is not ours to stop: nothing is signalled.
if [ "$(id -u)" = 0 ] && [ -x /usr/bin/setpriv ]; then
  theirs=$dir/theirs
  chmod 711 "$dir"  # for 65534 to reach its directory in ours
  mkdir -m 700 "$theirs" && chown 65534:65534 "$theirs"
  /usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups \
    "$weightbusd" --foreground --socket "$theirs/b.sock" --name "$fg" --log-level warn 2>>"$dir/theirs.log" &
  broker=$!
  for _ in $(seq 200); do [ -S "$theirs/b.sock" ] && break; sleep 0.05; done
  check "a broker of another uid" 1 "$cli" --socket "$theirs/b.sock" stop
  expect_err "runs as uid 65534, not as uid 0: it is not your broker; nothing was signalled"
  kill -0 "$broker" && passed=$((passed + 1)) || fail "the broker of uid 65534 was signalled"
  kill "$broker"
  wait_exit "$broker"
else
  echo "skipped: a broker of another uid (needs root and setpriv)"
fi
finish
