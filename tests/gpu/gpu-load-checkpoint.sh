#!/usr/bin/env bash
# weightbus load --device cuda:0 then checkpoint, on a GPU host: the tensors live on the GPU (info says cuda),
# and the checkpoint copied back from it is the loaded file byte for byte. Run by run.sh:
#   bash tests/gpu/gpu-load-checkpoint.sh BUILD_DIR
# Needs python3 (no numpy) to write the file. Prints SKIP without a GPU.
set -uo pipefail
build=$1
cli=$build/tools/weightbus/weightbus
here=$(dirname "$0")
if ! nvidia-smi -L >/dev/null 2>&1; then echo "SKIP: no CUDA device"; exit 0; fi
source "$here/../helpers/broker.sh"
start_broker "$build/broker/weightbusd" "$cli" gpu-load || exit 1
dir=$broker_dir
python3 - "$dir/model.safetensors" <<'PY'
import json, struct, sys
tensors = [("a", [1024, 1024]), ("b", [7]), ("c", [3, 5, 2])]
head, data, at = {"__metadata__": {"format": "pt"}}, b"", 0
for k, (name, shape) in enumerate(tensors):
    n = 1
    for d in shape:
        n *= d
    raw = struct.pack("<%df" % n, *[float(k * 1000 + i % 977) for i in range(n)])
    head[name] = {"dtype": "F32", "shape": shape, "data_offsets": [at, at + len(raw)]}
    data += raw
    at += len(raw)
text = json.dumps(head, separators=(",", ":"))
text += " " * ((8 - len(text) % 8) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(text)) + text.encode() + data)
PY
"$cli" load "$dir/model.safetensors" --topic gpu --device cuda:0 || { echo "FAIL: load --device cuda:0"; exit 1; }
"$cli" info gpu/a --json | grep -q '"device":"cuda"' || { echo "FAIL: the tensor is not on the GPU"; exit 1; }
"$cli" checkpoint gpu --out "$dir/out" || { echo "FAIL: checkpoint of a CUDA topic"; exit 1; }
cmp "$dir/model.safetensors" "$dir/out/model.safetensors" || { echo "FAIL: the checkpoint differs"; exit 1; }
echo "RESULT load-checkpoint-cuda load --device cuda:0 -> checkpoint byte-identical"
