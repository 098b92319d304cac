#!/usr/bin/env bash
# Every benchmark of weightbus, from the repository root:
#
#   bash bench/run.sh [BUILD_DIR]        BUILD_DIR defaults to build (a CMake build with tests on)
#
# CPU parts run anywhere: notify latency (weightbus wait and notify fd against a raw shared futex and an HTTP
# POST to a local server), attach cost and registry scale, publishes per second with 1/4/16 readers. GPU parts
# run where nvidia-smi finds a GPU: publish -> GPU-visible latency, full-model update (peers' IPC-over-HTTP path, weightbus flip and copy-into,
# raw D2D), resharding (N trainer ranks to M server ranks with plans, against one contiguous copy and peers'
# gather-then-slice), attach + resolve of CUDA tensors and warm starts (a new server process taking a model
# resident in the broker zero-copy or by copy-into, against safetensors' load_file of the same files). CSV files
# go to bench/results/, PNG plots too when python3-matplotlib is there (else: python3 bench/report.py
# bench/results on a machine that has it), and a table with the ratios comes last. `bash dev.sh bench`
# installs what is needed, builds and runs this.
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(realpath "${1:-build}")
out=bench/results
mkdir -p "$out"
export WEIGHTBUSD=$build/broker/weightbusd
export LD_LIBRARY_PATH=$build/libclient${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
python=${PYTHON:-python3}
machine="$(nproc) CPUs, $(uname -r)"
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 || true)
echo "machine: $machine${gpu:+, $gpu}" | tee "$out/machine.txt"

echo "== notify latency"
"$build/bench/notify-latency" --iterations 10000 | tee "$out/notify.csv"
"$python" bench/http_notify.py --iterations 2000 | tee -a "$out/notify.csv"
echo "== attach cost and registry scale (host tensors)"
"$build/bench/attach-cost" --max 100000 | tee "$out/attach.csv"
echo "== publishes per second"
"$build/bench/publish-scale" --seconds 3 | tee "$out/scale.csv"

if [ -n "$gpu" ]; then
  echo "== attach + resolve of CUDA tensors"
  echo "tensors,owned_cold_ms,owned_warm_ms,registered_cold_ms,registered_warm_ms" > "$out/attach-gpu.csv"
  for n in 100 1000 10000; do
    "$build/tests/gpu/gpu-attach-resolve" --tensors $n | tee /dev/stderr | sed -nE \
      's/.*tensors=([0-9]+) owned_cold_ms=([0-9.]+) owned_warm_ms=([0-9.]+) registered_cold_ms=([0-9.]+) registered_warm_ms=([0-9.]+).*/\1,\2,\3,\4,\5/p' \
      >> "$out/attach-gpu.csv"
  done
  echo "== publish -> GPU-visible (the GPU word, interprocess events, host ordering, GPU arms; the floor)"
  "$build/tests/gpu/gpu-latency" | tee /dev/stderr | sed -nE 's/^RESULT latency-targets [A-Z]+ (.*)/\1/p' |
    tr ' ' '\n' | awk -F= 'BEGIN { printf "gpu_visible_p50_us,publisher_delay_us,event_gpu_visible_p50_us,event_publisher_delay_us,armed_gpu_visible_p50_us,floor_gpu_visible_p50_us\n" }
      { v[NR] = $2 } END { if (NR) printf "%s,%s,%s,%s,%s,%s\n", v[1], v[2], v[3], v[4], v[5], v[6] }' > "$out/gpu-latency.csv" || true
  echo "== full-model update"
  "$python" bench/model_update.py "$build" --iterations 5 --out "$out/model-update.csv"
  echo "== resharding: 4 trainer ranks (FSDP shards) to 2 server ranks (vLLM tensor parallelism)"
  "$python" bench/reshard.py "$build" --iterations 5 --out "$out/reshard.csv" || [ $? -eq 3 ]
  echo "== warm start: a server taking a resident 16 GB model from weightbus, against safetensors from disk"
  "$python" bench/warm_start.py "$build" --iterations 3 --out "$out/warm-start.csv" || [ $? -eq 3 ]
  echo "== FP8 on the way: copy-into and plans converting the 16 GB model to e4m3 with block scales, against torch"
  "$python" bench/fp8_convert.py "$build" --iterations 10 --out "$out/fp8-convert.csv" || [ $? -eq 3 ]
fi
"$python" bench/report.py "$out"
