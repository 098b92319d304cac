# Sourced by the shell tests: start_broker WEIGHTBUSD CLI NAME [OPTIONS...] starts a private broker (with those
# weightbusd options) in a fresh temp dir ($broker_dir), exports WEIGHTBUS_SOCKET, stops it and removes the dir
# on exit (failing the test if the broker left shared memory behind), and returns once the broker answers the
# CLI (non-zero if it never does).
source "$(dirname "${BASH_SOURCE[0]}")/shm.sh"

stop_broker() {
  kill "$broker_pid" 2>/dev/null
  wait "$broker_pid" 2>/dev/null
  local status=$?
  rm -rf "$broker_dir"
  shm_clean "$broker_name" "$status" || exit 1
}

start_broker() {
  local weightbusd=$1 cli=$2
  broker_name=$3-$$
  broker_dir=$(mktemp -d)
  export WEIGHTBUS_SOCKET=$broker_dir/broker.sock
  "$weightbusd" --foreground --socket "$WEIGHTBUS_SOCKET" --name "$broker_name" --log-level warn "${@:4}" \
    2>"$broker_dir/broker.log" &
  broker_pid=$!
  trap stop_broker EXIT
  for _ in $(seq 200); do "$cli" ls >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "FAIL: the broker does not answer at $WEIGHTBUS_SOCKET:"
  cat "$broker_dir/broker.log"
  return 1
}
