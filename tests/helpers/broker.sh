# Sourced by the shell tests: start_broker WEIGHTBUSD CLI NAME starts a private broker in a fresh temp dir
# ($broker_dir), exports WEIGHTBUS_SOCKET, stops it and removes the dir on exit, and returns once the broker
# answers the CLI (non-zero if it never does).
start_broker() {
  local weightbusd=$1 cli=$2 name=$3
  broker_dir=$(mktemp -d)
  export WEIGHTBUS_SOCKET=$broker_dir/broker.sock
  "$weightbusd" --foreground --socket "$WEIGHTBUS_SOCKET" --name "$name-$$" --log-level warn 2>"$broker_dir/broker.log" &
  broker_pid=$!
  trap 'kill $broker_pid 2>/dev/null; wait $broker_pid 2>/dev/null; rm -rf "$broker_dir"' EXIT
  for _ in $(seq 200); do "$cli" ls >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "FAIL: the broker does not answer at $WEIGHTBUS_SOCKET:"
  cat "$broker_dir/broker.log"
  return 1
}
