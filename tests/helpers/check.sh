# Sourced by the CLI shell tests: assertions that count passes and failures instead of stopping at the first.
#   check DESCRIPTION WANT_STATUS COMMAND...   runs COMMAND, stdout in $dir/out, stderr in $dir/err
#   expect_err TEXT / expect_out TEXT          the last check's stderr / stdout contains TEXT
#   json EXPR                                  evaluates a Python expression over the last stdout's JSON (`d`)
#   expect_json DESCRIPTION EXPR               that expression is true
#   finish                                     prints the counts; the exit status says whether all passed
# Needs $dir (a scratch folder).
failures=0
passed=0

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

check() {
  local what=$1 want=$2
  shift 2
  "$@" >"$dir/out" 2>"$dir/err"
  local got=$?
  if [ "$got" -ne "$want" ]; then
    fail "$what: exit $got, expected $want"
    cat "$dir/out" "$dir/err"
  else
    passed=$((passed + 1))
  fi
}

expect_err() { grep -qF -- "$1" "$dir/err" && passed=$((passed + 1)) || { fail "stderr lacks '$1':"; cat "$dir/err"; }; }
expect_out() { grep -qF -- "$1" "$dir/out" && passed=$((passed + 1)) || { fail "stdout lacks '$1':"; cat "$dir/out"; }; }

json() { /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$dir/out" "$1"; }

expect_json() {
  local got
  got=$(json "$2" 2>&1)
  [ "$got" = "True" ] && passed=$((passed + 1)) || { fail "$1: $2 is $got in:"; cat "$dir/out"; }
}

finish() {
  echo "$passed passed, $failures failed"
  [ "$failures" -eq 0 ]
}
