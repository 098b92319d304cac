#!/usr/bin/env bash
# Options of weightbus and weightbusd (getopt_long): before, between or after the other words, "--name value"
# or "--name=value", short names (-l, -h, -V); every mistake exits 2 with a message naming the option and where
# to read more ("weightbus: unknown option --foo; see weightbus ls --help").
set -uo pipefail
source "$(dirname "$0")/cli-test.sh" "$1" "$2" options-test
broker=$2
$fixture model "$dir/model.safetensors" 1
check "options before and after, with =" 0 w --json load --topic=policy "$dir/model.safetensors" --replicas=1
expect_json "loaded" 'd["topic"] == "policy" and d["version"] == 1'
check "-l with a global option after it" 0 w ls -l policy --socket "$WEIGHTBUS_SOCKET"
expect_out "model.norm.weight"
check "words after -- are not options" 1 w info -- --json
expect_err "WB_E_NOT_FOUND"
check "help COMMAND" 0 w help watch
expect_out "usage: weightbus watch TOPIC"
check "-V" 0 w -V
expect_out "weightbus 0.1.0"
check "checkpoint -V (its --version is a version number)" 0 w checkpoint -V

check "unknown option" 2 w ls --bogus
expect_err "weightbus: unknown option --bogus; see weightbus ls --help"
expect_err "usage: weightbus ls [-l] [TOPIC] [--json]"
check "unknown option with a value" 2 w ls --bogus=1
expect_err "weightbus: unknown option --bogus; see weightbus ls --help"
check "unknown short option" 2 w ls -x
expect_err "weightbus: unknown option -x; see weightbus ls --help"
check "another command's option" 2 w ls --topic policy
expect_err "unknown option --topic; see weightbus ls --help"
check "a flag given a value" 2 w ls --json=yes
expect_err "weightbus: --json takes no value; see weightbus ls --help"
check "a missing value" 2 w watch policy --count
expect_err "weightbus: --count needs a value; see weightbus watch --help"
check "a bad integer" 2 w watch policy --count many
expect_err "weightbus: --count needs an integer, not 'many'; see weightbus watch --help"
check "checkpoint --version without its value" 2 w checkpoint policy --out "$dir/c" --version
expect_err "--version needs a value; see weightbus checkpoint --help"
check "unknown command" 2 w bogus
expect_err "weightbus: unknown command 'bogus'; see weightbus --help"
check "no command" 2 w --json
expect_err "weightbus: missing command; see weightbus --help"
check "an extra argument" 2 w rm a b
expect_err "weightbus: unexpected argument 'b'; see weightbus rm --help"

check "weightbusd unknown option" 2 "$broker" --bogus
expect_err "weightbusd: unknown option --bogus; see weightbusd --help"
check "weightbusd flag given a value" 2 "$broker" --foreground=1
expect_err "weightbusd: --foreground takes no value; see weightbusd --help"
check "weightbusd missing value" 2 "$broker" --max-topics
expect_err "weightbusd: --max-topics needs a value; see weightbusd --help"
check "weightbusd bad count" 2 "$broker" --max-topics=0
expect_err "weightbusd: --max-topics 0 is not a whole number in 1..65534; see weightbusd --help"
check "weightbusd argument" 2 "$broker" stray
expect_err "weightbusd: unexpected argument 'stray'; see weightbusd --help"
check "weightbusd -h" 0 "$broker" -h
expect_out "usage: weightbusd [options]"
finish
