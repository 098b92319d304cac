# Sourced by the relay's shell tests with their arguments (CLI WEIGHTBUSD BINDIR): brokers of different names
# standing in for nodes, relay processes, a free loopback port, and the counted assertions of
# helpers/check.sh. At exit the brokers are stopped cleanly (the test fails if one leaves shared memory
# behind), everything else started is killed, and every temp dir is removed.
cli=$1
weightbusd=$2
bin=$3
dir=$(mktemp -d)
pids=()          # every process started, brokers first
broker_pids=()   # the brokers' pids and names
broker_names=()
source "$(dirname "${BASH_SOURCE[0]}")/../helpers/check.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../helpers/shm.sh"

stop_all() {
  local p i leaked=0
  for p in "${pids[@]}"; do
    if [[ " ${broker_pids[*]} " == *" $p "* ]]; then kill -TERM "$p"; else kill -9 "$p"; fi 2>/dev/null
  done
  for i in "${!broker_pids[@]}"; do
    wait "${broker_pids[$i]}" 2>/dev/null
    shm_clean "${broker_names[$i]}" $? || leaked=1
  done
  wait 2>/dev/null
  rm -rf "$dir"
  [ $leaked -eq 0 ] || exit 1
}
trap stop_all EXIT

# start_node NAME: a broker named NAME-$$ at $dir/NAME.sock
start_node() {
  "$weightbusd" --foreground --socket "$dir/$1.sock" --name "$1-$$" --log-level warn 2>"$dir/$1.log" &
  pids+=($!)
  broker_pids+=($!)
  broker_names+=("$1-$$")
  for _ in $(seq 200); do "$cli" --socket "$dir/$1.sock" ls >/dev/null 2>&1 && return 0; sleep 0.05; done
  fail "broker $1 does not answer"
  return 1
}

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# relay NODE LOG ARGS...: a relay process on NODE's broker in the background, its pid in $last_pid
relay() {
  local node=$1 log=$2
  shift 2
  "$cli" --socket "$dir/$node.sock" relay "$@" >"$dir/$log.out" 2>"$dir/$log.err" &
  last_pid=$!
  pids+=($last_pid)
}

# wait_log FILE TEXT SECONDS: until FILE contains TEXT, at most SECONDS of wall time. The callers give 60 s: what
# they wait for comes within a second on an idle machine, but a relay started under ThreadSanitizer on two
# cores shared with builds once took over 10 s to listen.
wait_log() {
  local deadline=$((SECONDS + $3))
  while [ $SECONDS -lt $deadline ]; do grep -qF -- "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  grep -qF -- "$2" "$1" 2>/dev/null && return 0
  fail "$1 lacks '$2' after $3 s:"
  cat "$1"
  return 1
}

same() {  # same NODE_A NODE_B VERSION: the topic is equal in both brokers at VERSION (0: A's latest)
  check "node $2 equals node $1 at version ${3:-latest}" 0 "$bin/relay-compare" "$dir/$1.sock" "$dir/$2.sock" policy "$3" 20000
}
