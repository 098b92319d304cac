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
