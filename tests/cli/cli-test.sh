# Sourced by the CLI tests of the safetensors tools, with their arguments and a broker name:
#   source "$(dirname "$0")/cli-test.sh" CLI WEIGHTBUSD NAME [WEIGHTBUSD OPTIONS...]
# starts a private broker (helpers/broker.sh) and defines what they all use: $cli, $here (this folder), $dir
# (the broker's temp dir, removed at exit), $fixture (the safetensors writer), w (runs the CLI) and the
# counted assertions of helpers/check.sh.
cli=$1
here=$(dirname "${BASH_SOURCE[0]}")
fixture="/usr/bin/python3 $here/safetensors_fixture.py"
source "$here/../helpers/broker.sh"
start_broker "$2" "$cli" "$3" "${@:4}" || exit 1
dir=$broker_dir
source "$here/../helpers/check.sh"
w() { "$cli" "$@"; }

# hold_lease TOPIC: a process (lease_holder.py) leases the latest version of TOPIC until $dir/stop exists, its
# pid in $holder; counts a pass once it holds the lease. In the sanitizer builds the library needs its runtime
# (ASan or TSan) loaded first, which python3 does not do by itself; python's own allocations are not what the
# leak checker is for.
hold_lease() {
  local library sanitizer
  library=$(ldd "$cli" | awk '/libweightbus/ {print $3}')
  sanitizer=$(ldd "$library" | awk '/libasan|libtsan/ {print $3}')
  LD_PRELOAD=$sanitizer ASAN_OPTIONS=detect_leaks=0 /usr/bin/python3 "$here/lease_holder.py" "$library" "$1" \
    "$dir/ready" "$dir/stop" &
  holder=$!
  for _ in $(seq 200); do [ -e "$dir/ready" ] && break; sleep 0.05; done
  [ -e "$dir/ready" ] && passed=$((passed + 1)) || fail "the lease holder did not take its lease"
}
