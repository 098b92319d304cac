#!/usr/bin/env bash
# Every GPU test and benchmark of weightbus, run on a machine with a GPU, from the repository root:
#
#   bash tests/gpu/run.sh [BUILD_DIR [ONLY]]   BUILD_DIR defaults to build-gpu; ONLY, an extended regular
#                                              expression, runs only the tests whose names match it
#
# BUILD_DIR is a build folder made with the usual cmake commands on a build machine and carried here: this
# script builds nothing (GPU hosts lack cmocka, libuv and flatbuffers) and needs only the binaries in it,
# python3 and, for the PyTorch test, torch. Each program runs under a timeout and logs to BUILD_DIR/gpu-logs/;
# a table of results comes last. Exit status 0 when every program passed or skipped (MISS: it ran correctly but
# missed its performance target).
set -uo pipefail
cd "$(dirname "$0")/../.."
build=$(realpath "${1:-build-gpu}")
only=${2:-}
bin=$build/tests/gpu
if [ ! -x "$bin/gpu-exchange" ]; then
  echo "run.sh: $bin/gpu-exchange is missing: build with cmake first (see the top of this file)" >&2
  exit 2
fi
export LD_LIBRARY_PATH=$build/libclient${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export WEIGHTBUSD=$build/broker/weightbusd
logs=$build/gpu-logs
mkdir -p "$logs"
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
rows=()
failed=0

# run NAME TIMEOUT_S COMMAND...: status from the exit code (SKIP when the program says so), details from its
# "RESULT <test> ..." lines.
run() {
  local name=$1 limit=$2
  shift 2
  [[ -z $only || $name =~ $only ]] || return 0
  local log=$logs/$name.log start=$SECONDS status=PASS
  echo "== $name: $*"
  timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1
  local rc=$?
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    status=TIMEOUT
  elif [ $rc -eq 3 ]; then
    status=MISS  # ran fine, missed its performance target
  elif [ $rc -ne 0 ]; then
    status=FAIL
  elif grep -q '^SKIP' "$log"; then
    status=SKIP
  fi
  if [ $status != PASS ] && [ $status != SKIP ]; then
    failed=1
    tail -n 25 "$log" | sed 's/^/   | /'
  fi
  local details
  details=$(grep -E '^(RESULT|SKIP)' "$log" | sed -E 's/^RESULT [^ ]+ //' | paste -sd '|' -)
  rows+=("$(printf '%-34s %-7s %5ss  %s' "$name" "$status" $((SECONDS - start)) "$details")")
}

run cuda-absent 60 "$bin/test-cuda-absent"  # the no-driver path, forced, beside a GPU
x=$bin/gpu-exchange
run exchange-legacy-r1 600 "$x" --path legacy --replicas 1
run exchange-legacy-r2 600 "$x" --path legacy --replicas 2
run exchange-vmm-r1 600 "$x" --path vmm --replicas 1
run exchange-vmm-r2 600 "$x" --path vmm --replicas 2
run exchange-vmm-registered-r1 600 "$x" --path vmm-registered --replicas 1
run exchange-vmm-registered-r2 600 "$x" --path vmm-registered --replicas 2
# The GPU ordering's fallback (interprocess events instead of GPU words), as on a GPU without stream memory ops.
run exchange-vmm-r2-events 600 env WEIGHTBUS_GPU_ORDER=event "$x" --path vmm --replicas 2
# Differing CUDA_VISIBLE_DEVICES: on one GPU the ordinals agree but the UUID mapping still runs; on several,
# the two processes see the publisher's GPU under different ordinals.
run exchange-legacy-visible 600 "$x" --path legacy --replicas 2 --publisher-devices 0 --reader-devices unset
run exchange-vmm-visible 600 "$x" --path vmm --replicas 2 --publisher-devices unset --reader-devices 0
if [ "${gpus:-0}" -ge 2 ]; then
  run exchange-legacy-gpu1 600 "$x" --path legacy --replicas 2 --publisher-devices 1 --reader-devices unset
  run exchange-vmm-gpu1-as-0 600 "$x" --path vmm --replicas 2 --publisher-devices unset --reader-devices 1,0
fi
# Sharded models: 4 ranks publish torch.chunk shards, 2 and 4 readers copy vLLM tensor-parallel slices.
r=$bin/gpu-reshard
run reshard-vmm-n4-m2-kill 300 "$r" --ranks 4 --readers 2 --path vmm --kill 1
run reshard-vmm-n3-m4 300 "$r" --ranks 3 --readers 4 --path vmm
run reshard-legacy-n4-m2 300 "$r" --ranks 4 --readers 2 --path legacy
run reshard-vmm-n2-m2-host 300 "$r" --ranks 2 --readers 2 --path vmm --host 1  # host destinations beside GPU ones
# Plans armed ahead; GPU arms on (WEIGHTBUS_GPU_ARMS=on): the copies enqueued before each version exists, where
# the destinations are all on the GPU.
run reshard-vmm-n4-m2-kill-armed 300 env WEIGHTBUS_GPU_ARMS=on "$r" --ranks 4 --readers 2 --path vmm --kill 1 --armed 1
run reshard-vmm-n2-m2-host-armed 300 env WEIGHTBUS_GPU_ARMS=on "$r" --ranks 2 --readers 2 --path vmm --host 1 --armed 1
if [ "${gpus:-0}" -ge 2 ]; then
  run reshard-spread-n4-m2 300 "$r" --ranks 4 --readers 2 --path vmm --spread 1
fi
run load-checkpoint-cuda 120 bash tests/gpu/gpu-load-checkpoint.sh "$build"
run lifetimes 300 "$bin/gpu-lifetimes"
run broker-restart 300 "$bin/gpu-broker-restart"
run attach-resolve 300 "$bin/gpu-attach-resolve"
run latency 300 "$bin/gpu-latency"
run copy-bandwidth 600 "$bin/gpu-copy-bandwidth" --gib 16 --tensors 400
# Small tensors: the copy kernel (a few launches for every copy below 16 MiB) instead of a cuMemcpyAsync each.
# The host's per-target checks (~0.35 ms) precede a 1.4 ms copy: it reaches 73-79% of one contiguous copy, and
# one cuMemcpyAsync per tensor about 20%, so 60% tells the two apart with room for run-to-run spread (issue 7
# compares with torch._foreach_copy_: bench/).
run copy-bandwidth-1000 600 "$bin/gpu-copy-bandwidth" --gib 2 --tensors 1000 --target-pct 60
if [ "${gpus:-0}" -ge 2 ]; then
  run copy-bandwidth-peer 600 "$bin/gpu-copy-bandwidth" --gib 4 --tensors 400 --dst-device 1
fi
# The relay needs libnccl.so.2 (NCCL is loaded with dlopen): the system's, else the one PyTorch brings.
nccl_dir() {
  ldconfig -p 2>/dev/null | grep -q 'libnccl\.so\.2 ' && return 0
  local lib
  lib=$(python3 -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib"))' 2>/dev/null) ||
    lib=$(find /usr /opt /usr/local -name 'libnccl.so.2' -printf '%h\n' 2>/dev/null | head -n 1)
  echo "$lib"
}
if [ "${gpus:-0}" -ge 2 ] && [ -x "$bin/gpu-relay" ]; then
  nccl=$(nccl_dir)
  run relay 900 env ${nccl:+LD_LIBRARY_PATH=$nccl:$LD_LIBRARY_PATH} NCCL_NVLS_ENABLE=0 GPU_RELAY_LOGS="$logs" \
    WEIGHTBUS_CLI="$build/tools/weightbus/weightbus" "$bin/gpu-relay"
fi
if python3 -c 'import torch' >/dev/null 2>&1; then
  # What a stream held in cuStreamWaitValue64 (as a GPU arm's) does to the process's other streams: MISS while any
  # waits behind it, which keeps GPU arms opt-in (weightbus.h, "GPU arms").
  run stream-hold 120 python3 tests/gpu/stream_hold.py "$build"
  # A GPU arm's hold is bounded (WEIGHTBUS_GPU_ARMS=200): a device-wide wait in the reader's process
  # (torch.cuda.synchronize, a kernel's first launch) lasts at most about the hold, not until the publish.
  run arm-hold 120 python3 tests/gpu/arm_hold.py "$build"
  # The library's first uploads (a plan's descriptors, a GPU allocation's zeros) are done before another stream
  # uses them, however busy PyTorch's default (the legacy) stream is: libclient/cuda/driver.hpp, run_and_wait.
  run legacy-busy 120 python3 tests/gpu/legacy_busy.py "$build"
  run torch-interop 900 python3 tests/gpu/torch_interop.py "$build"
  # CuPy and JAX as DLPack consumers of snapshots: zero-copy, every dtype, stream-ordered, leases held while
  # their arrays live (SKIP, with the reason, for a consumer that is not installed).
  run dlpack-consumers 300 python3 tests/gpu/dlpack_consumers.py "$build"
  # A transformers Llama served from weightbus (load_module, then zero-copy) while a trainer publishes every
  # step: every sequence's first-token logits recomputed exactly from its version's saved weights.
  run transformers-server 400 python3 tests/gpu/transformers_server.py "$build"
  # FP8 e4m3/e5m2 (tensor, channel, block scales) and f32 -> bf16 conversions, by copy-into and fused slice
  # plans, bit for bit against PyTorch's conversion of the same sources (odd shapes, NaN, inf, subnormals).
  run fp8-exact 600 python3 tests/gpu/fp8_exact.py "$build"
  # The conversion kernels' own arithmetic (the reciprocal's division, the FP8 instruction) against the header's
  # definition for every bf16 and f16 input and every finite f32 (CuPy compiles them; SKIP without it).
  run fp8-exhaustive 300 python3 tests/gpu/fp8_exhaustive.py "$build"
  # The binding's tests that use torch, on this host's torch: sharded models (DTensor ranks, torch >= 2.4), the
  # engines' adapters (vLLM's and SGLang's shapes; inside vLLM where it is installed), snapshot_tensors, DLPack,
  # conversions into torch's FP8 tensors and load_module's FP8 weights with their scales.
  if python3 -c 'import pytest' >/dev/null 2>&1; then
    run python-torch 300 env WEIGHTBUS_LIBRARY="$build/libclient/libweightbus.so.0" python3 -m pytest -q \
      -p no:cacheprovider bindings/python/tests/test_sharded.py bindings/python/tests/test_engines.py \
      bindings/python/tests/test_snapshot_tensors.py bindings/python/tests/test_dlpack.py \
      bindings/python/tests/test_conversions.py bindings/python/tests/test_torch_helpers.py
  fi
else
  for name in stream-hold arm-hold torch-interop dlpack-consumers transformers-server fp8-exact fp8-exhaustive; do
    [[ -z $only || $name =~ $only ]] && rows+=("$(printf '%-34s %-7s %5ss  %s' $name SKIP 0 'no torch for python3')")
  done
fi

echo
echo "weightbus GPU tests on $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n 1 || echo 'an unknown GPU') (logs: $logs)"
printf '%-34s %-7s %6s  %s\n' test status time details
printf '%s\n' "${rows[@]}"
exit $failed
