#!/usr/bin/env bash
# weightbus relay refuses bad input with a specific message and exit status, never a hang: usage errors (2),
# no source at the rendezvous within --timeout, a port taken, and sinks the source refuses (3), NCCL absent (1).
set -uo pipefail
source "$(dirname "$0")/relay-test.sh"
start_node a && start_node b || exit 1
port=$(free_port)
r() { "$cli" --socket "$dir/b.sock" relay "$@"; }
ok=(--topic policy --rendezvous 127.0.0.1:$port --world 2 --transport tcp --timeout 1000)

check "--help" 0 r --help
expect_out "weightbus relay --topic policy --role source"
check "no options" 2 r
expect_err "missing --topic"
check "no role" 2 r --topic p
expect_err "missing --role"
check "bad role" 2 r --topic p --role relay
expect_err "--role must be source or sink, not 'relay'"
check "no rendezvous" 2 r --topic p --role sink
expect_err "missing --rendezvous"
for bad in host host: :1 host:0 host:70000 host:x; do
  check "rendezvous $bad" 2 r --topic p --role sink --rendezvous "$bad" --rank 1 --world 2
  expect_err "--rendezvous '$bad'"
done
check "no world" 2 r --topic p --role sink --rendezvous h:1 --rank 1
expect_err "missing --world"
check "world 1" 2 r --topic p --role sink --rendezvous h:1 --rank 1 --world 1
expect_err "--world must be between 2 and 1024"
check "no rank" 2 r --topic p --role sink --rendezvous h:1 --world 2
expect_err "missing --rank"
check "source not rank 0" 2 r --topic p --role source --rendezvous h:1 --rank 1 --world 2
expect_err "the source is rank 0, not 1"
check "sink rank 0" 2 r --topic p --role sink --rendezvous h:1 --rank 0 --world 2
expect_err "a sink's --rank must be between 1 and 1"
check "sink rank = world" 2 r --topic p --role sink --rendezvous h:1 --rank 2 --world 2
check "bucket on a sink" 2 r --topic p --role sink --rendezvous h:1 --rank 1 --world 2 --bucket 1M
expect_err "--bucket is the source's option"
for bad in 0 -5 12Q M 2T; do
  check "bucket $bad" 2 r --topic p --role source --rendezvous h:1 --rank 0 --world 2 --bucket "$bad"
  expect_err "--bucket"
done
check "bad transport" 2 r --topic p --role source --rendezvous h:1 --rank 0 --world 2 --transport udp
expect_err "--transport must be nccl or tcp, not 'udp'"
check "bad timeout" 2 r --topic p --role source --rendezvous h:1 --rank 0 --world 2 --timeout 0
check "stray word" 2 r --topic p --role source --rendezvous h:1 --rank 0 --world 2 extra
check "long topic" 2 r --topic "$(printf 'x%.0s' $(seq 300))" --role source --rendezvous h:1 --rank 0 --world 2

start=$SECONDS
check "no source" 3 r "${ok[@]}" --role sink --rank 1
expect_err "no relay source answers at 127.0.0.1:$port"
[ $((SECONDS - start)) -lt 10 ] && passed=$((passed + 1)) || fail "the sink waited $((SECONDS - start)) s for a 1 s timeout"
check "unresolvable host" 3 r --topic p --role sink --rendezvous no-such-host.invalid:1 --rank 1 --world 2 --transport tcp --timeout 500
expect_err "cannot resolve 'no-such-host.invalid'"

"$bin/relay-publisher" "$dir/a.sock" policy 1 1 0 || fail "the first version"
relay a source --topic policy --rendezvous 127.0.0.1:$port --world 3 --transport tcp --timeout 1000 --role source --rank 0
wait_log "$dir/source.err" "listening at" 60
check "port taken" 3 "$cli" --socket "$dir/a.sock" relay --topic policy --rendezvous 127.0.0.1:$port --world 3 --transport tcp --role source --rank 0
expect_err "cannot listen on 127.0.0.1:$port"
check "sink of another world" 3 r "${ok[@]}" --role sink --rank 1
expect_err "the source refused this sink: the sink says --world 2, the source 3"
check "sink of another topic" 3 r --topic other --rendezvous 127.0.0.1:$port --world 3 --transport tcp --timeout 1000 --role sink --rank 1
expect_err "the sink asks for topic 'other', the source relays 'policy'"
check "sink of another transport" 3 r --topic policy --rendezvous 127.0.0.1:$port --world 3 --transport nccl --timeout 1000 --role sink --rank 1
expect_err "the sink uses --transport nccl, the source tcp"
relay b sink --topic policy --rendezvous 127.0.0.1:$port --world 3 --transport tcp --timeout 1000 --role sink --rank 1
wait_log "$dir/sink.err" "joined the source" 60
check "rank taken" 3 "$cli" --socket "$dir/b.sock" relay --topic policy --rendezvous 127.0.0.1:$port --world 3 --transport tcp --timeout 1000 --role sink --rank 1
expect_err "rank 1 is already connected"

# NCCL needs libcuda and libnccl.so.2, loaded only now: a clear error where either is missing. A build without
# cuda.h or nccl.h has no NCCL transport ($WB_RELAY_NCCL is 0, set by ctest) and says so.
nccl=("$cli" --socket "$dir/a.sock" relay --topic policy --rendezvous 127.0.0.1:$(free_port) --world 2 --role source --rank 0 --timeout 500)
if [ "${WB_RELAY_NCCL:?set by ctest}" = 1 ]; then
  WEIGHTBUS_LIBCUDA=/nonexistent/libcuda.so.1 check "nccl without libcuda" 1 "${nccl[@]}"
  expect_err "--transport nccl needs the CUDA driver: cannot load /nonexistent/libcuda.so.1"
else
  check "nccl in a build without it" 1 "${nccl[@]}"
  expect_err "this weightbus was built without cuda.h and nccl.h: --transport nccl is unavailable"
fi
finish
