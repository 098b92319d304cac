#!/usr/bin/env bash
# watch exits 3 (not 1, not 0) when its timeout passes without a new version, and its --json prints a version's
# whole metadata, past the 200 characters of a text line, with JSON metadata also as a JSON value; diagnose
# --exit-code exits 3 when a topic and a checkpoint differ in any way and 0 when they do not.
set -uo pipefail
source "$(dirname "$0")/cli-test.sh" "$1" "$2" watch-exit-test

# One f32 tensor whose file's __metadata__ holds 300 characters of note.
/usr/bin/python3 - "$dir/long.safetensors" <<'PY'
import json, struct, sys
meta = {"step": "7", "note": "n" * 300}
head = json.dumps({"__metadata__": meta, "x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}},
                  separators=(",", ":")).encode()
head += b" " * (-len(head) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(head)) + head + b"\0\0\0\0")
PY
check "load" 0 w load "$dir/long.safetensors" --topic long
check "watch times out" 3 w watch long --timeout-ms 200
expect_err "no version after 1 within 200 ms"
check "watch of a missing topic is a failure" 1 w watch absent --timeout-ms 200
check "watch --json, whole metadata" 0 w watch long --since 0 --count 1 --timeout-ms 5000 --json
expect_json "all 300 characters" 'len(d["metadata"]) == d["metadata_bytes"] and "n" * 300 in d["metadata"] and not d["metadata_truncated"]'
expect_json "as JSON" 'd["metadata_json"] == {"step": "7", "note": "n" * 300}'
check "watch text is cut" 0 w watch long --since 0 --count 1 --timeout-ms 5000
expect_out "... ("

$fixture model "$dir/model.safetensors" 1
check "load the model" 0 w load "$dir/model.safetensors" --topic model
check "diagnose, no difference" 0 w diagnose model --against "$dir/model.safetensors" --exit-code
expect_out "0 of them differ), 0 only in the topic, 0 only in the checkpoint"
check "diagnose, differences, --exit-code" 3 w diagnose long --against "$dir/model.safetensors" --exit-code
check "diagnose --json --exit-code" 3 w diagnose long --against "$dir/model.safetensors" --exit-code --json
expect_json "differences listed" 'd["only_in_topic"] == ["x"]'
check "diagnose, differences, no --exit-code" 0 w diagnose long --against "$dir/model.safetensors"
finish
