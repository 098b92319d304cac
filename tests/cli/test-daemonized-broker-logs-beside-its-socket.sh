#!/usr/bin/env bash
# A daemonized weightbusd logs to its socket's path + .log, even as the first broker on a machine (it creates
# the socket's directory, 0700, before opening the log); a start that fails says so on the terminal with the
# log's path, and the log says why; a directory it cannot create is named at once. `weightbusd --help` names
# the log the same way.
set -uo pipefail
cli=$1
weightbusd=$2
dir=$(mktemp -d)
source "$(dirname "$0")/../helpers/check.sh"
source "$(dirname "$0")/../helpers/shm.sh"
unset WEIGHTBUS_SOCKET WEIGHTBUS_NAME
export XDG_RUNTIME_DIR=$dir/run  # a fresh machine's: no weightbus/ in it yet
mkdir -m 700 "$XDG_RUNTIME_DIR"
name=daemon-$$
log=$XDG_RUNTIME_DIR/weightbus/$name.sock.log
finish_daemon() {
  "$cli" --name "$name" stop >/dev/null 2>&1
  local status=$?
  rm -rf "$dir"
  shm_clean "$name" "$status" || exit 1
}
trap finish_daemon EXIT

check "the first broker daemonizes" 0 "$weightbusd" --name "$name"
[ "$(stat -c %a "$XDG_RUNTIME_DIR/weightbus")" = 700 ] && passed=$((passed + 1)) ||
  fail "the socket's directory is not 0700: $(stat -c %a "$XDG_RUNTIME_DIR/weightbus" 2>&1)"
grep -qF "listening on $XDG_RUNTIME_DIR/weightbus/$name.sock" "$log" && passed=$((passed + 1)) ||
  { fail "$log lacks the start:"; cat "$log"; }
check "it answers" 0 "$cli" --name "$name" ls

check "a second broker of the name fails" 1 "$weightbusd" --name "$name"
expect_err "weightbusd: the broker failed to start; see its log $log"
grep -qF "a broker already listens at $XDG_RUNTIME_DIR/weightbus/$name.sock" "$log" && passed=$((passed + 1)) ||
  { fail "$log lacks why the second broker failed:"; cat "$log"; }

check "a directory that cannot be made" 1 "$weightbusd" --name "$name" --socket /proc/no-such-dir/b.sock
expect_err "weightbusd: creating /proc/no-such-dir"

check "--help" 0 "$weightbusd" --help
expect_out "the socket's path + .log"
finish
