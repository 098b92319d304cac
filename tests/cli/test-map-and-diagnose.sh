#!/usr/bin/env bash
# weightbus map and diagnose: the shipped Llama and Qwen2 specs turn vLLM's fused qkv_proj and gate_up_proj
# into Hugging Face's names as views that share their parent's storage (their addresses, from info --json,
# lie inside the parent's at the computed offsets) and see the parent's bytes; diagnose lists the names on one
# side only; every spec, config and expression error is refused with its message.
set -uo pipefail
source "$(dirname "$0")/cli-test.sh" "$1" "$2" map-test
specs=$here/../../tools/specs

# heads 4, kv heads 2, hidden 32 (head_dim 8), intermediate 48: qkv_proj has 64 rows, gate_up_proj 96.
$fixture fused "$dir/fused.safetensors"
$fixture hf "$dir/hf.safetensors"
cat >"$dir/config.json" <<'JSON'
{"architectures": ["LlamaForCausalLM"], "hidden_size": 32, "num_attention_heads": 4, "num_key_value_heads": 2,
 "intermediate_size": 48, "rms_norm_eps": 1e-05, "rope_scaling": {"factor": 8}}
JSON
check "load the fused model" 0 w load "$dir/fused.safetensors" --topic fused

check "diagnose before mapping" 0 w diagnose fused --against "$dir/hf.safetensors" --json
expect_json "fused names only in the topic" 'len(d["only_in_topic"]) == 4 and all("qkv" in n or "gate_up" in n for n in d["only_in_topic"])'
expect_json "split names only in the checkpoint" 'len(d["only_in_checkpoint"]) == 11 and "lm_head.weight" in d["only_in_checkpoint"]'
expect_json "common names differ in shape" 'len(d["mismatched"]) == 5'

check "map with the Llama spec" 0 w map --spec "$specs/llama.json" fused --config "$dir/config.json" --json
cp "$dir/out" "$dir/map.json"
expect_json "ten views" 'len(d["views"]) == 10'
expect_json "q, k, v rows" '[(v["first_row"], v["rows"]) for v in d["views"][:3]] == [(0, 32), (32, 16), (48, 16)]'
expect_json "k_proj offset" 'd["views"][1]["byte_offset"] == 32 * 32 * 4'
check "map again (same views)" 0 w map --spec "$specs/llama.json" fused --config "$dir/config.json"
expect_out "10 views on topic 'fused'"

# Shared storage: each view's address is its parent's plus its offset, in one leased version.
check "info --json" 0 w info fused --json
/usr/bin/python3 - "$dir/out" "$dir/map.json" <<'PY' && passed=$((passed + 1)) || fail "views do not share their parent's storage"
import json, sys
info = {t["name"]: t for t in json.load(open(sys.argv[1]))["tensors"]}
for v in json.load(open(sys.argv[2]))["views"]:
    view, parent = info[v["name"]], info[v["parent"]]
    assert view["view"] and not parent["view"], v
    assert parent["address"] != 0 and view["address"] == parent["address"] + v["byte_offset"], (v, view, parent)
    assert view["shape"] == [v["rows"], parent["shape"][1]] and view["strides"] == parent["strides"], v
PY
# And the bytes seen through a view are the parent's rows (the fixture numbers elements consecutively).
check "checkpoint of views" 0 w checkpoint fused --out "$dir/ckpt"
cmp "$dir/ckpt/model.safetensors" "$dir/fused.safetensors" && passed=$((passed + 1)) || fail "views were written as tensors"
check "info of one view" 0 w info fused/model.layers.1.self_attn.v_proj.weight --json
expect_json "one view" 'len(d["tensors"]) == 1 and d["tensors"][0]["shape"] == [16, 32] and d["tensors"][0]["view"]'

check "diagnose after mapping" 0 w diagnose fused --against "$dir/hf.safetensors"
expect_out "only in $dir/hf.safetensors (1):"
expect_out "lm_head.weight"

# The Qwen2 spec with values from --set (its q/k/v bias rule matches nothing here; the others do).
check "load for qwen2" 0 w load "$dir/fused.safetensors" --topic qwen
check "map with the Qwen2 spec and --set" 0 w map --spec "$specs/qwen2.json" qwen --set num_attention_heads=4 \
  --set num_key_value_heads=2 --set hidden_size=32 --set intermediate_size=48 --json
expect_json "ten views" 'len(d["views"]) == 10'
check "--set wins over the config" 1 w map --spec "$specs/qwen2.json" qwen --config "$dir/config.json" --set num_key_value_heads=4
expect_err "rows [64, 96) fall outside parent 'model.layers.0.self_attn.qkv_proj.weight' of 64 rows"
echo '{"views": [{"parent": "model.layers.{l}.mlp.down_proj.weight", "split": [{"name": "d.{l}", "rows": "hidden_size - 1"}]}]}' >"$dir/short.json"
check "views that leave rows out" 1 w map --spec "$dir/short.json" fused --config "$dir/config.json"
expect_err "the views of 'model.layers.0.mlp.down_proj.weight' cover 31 of its 32 rows"

# Errors.
check "map without --spec" 2 w map fused
expect_err "missing --spec FILE"
check "map without a topic" 2 w map --spec "$specs/llama.json"
check "map with a bad --set" 2 w map --spec "$specs/llama.json" fused --set heads
expect_err "--set needs NAME=INTEGER, not 'heads'"
check "map with a missing value" 1 w map --spec "$specs/llama.json" fused
expect_err "unknown value 'num_attention_heads'"
check "map of a missing topic" 1 w map --spec "$specs/llama.json" absent --config "$dir/config.json"
expect_err "WB_E_NOT_FOUND"
check "map with a missing spec" 1 w map --spec "$dir/none.json" fused
expect_err "No such file or directory"
echo '{"views": [' >"$dir/bad.json"
check "a spec that is not JSON" 1 w map --spec "$dir/bad.json" fused
expect_err "the spec is not valid JSON"
echo '{"views": []}' >"$dir/bad.json"
check "a spec without views" 1 w map --spec "$dir/bad.json" fused
expect_err "the spec has no \"views\" list"
echo '{"views": [{"parent": "x.{i}", "split": [{"name": "y.{j}", "rows": 1}]}]}' >"$dir/bad.json"
check "an unbound placeholder" 1 w map --spec "$dir/bad.json" fused
expect_err "'{j}' does not appear in the parent pattern"
echo '{"views": [{"parent": "x.{i", "split": [{"name": "y", "rows": 1}]}]}' >"$dir/bad.json"
check "a stray brace" 1 w map --spec "$dir/bad.json" fused
expect_err "has a brace that is not a {name} placeholder"
echo '{"views": [{"parent": "x", "split": [{"name": "y"}]}]}' >"$dir/bad.json"
check "a part without rows" 1 w map --spec "$dir/bad.json" fused
expect_err "views[0].split[0] has no \"rows\""
echo '{"views": [{"parent": "nothing.{i}", "split": [{"name": "y.{i}", "rows": 1}]}]}' >"$dir/bad.json"
check "a spec that matches nothing" 1 w map --spec "$dir/bad.json" fused
expect_err "no tensor of the topic matches a parent pattern"
for rows in '"hidden_size / 0"' '"hidden_size / 5"' '"(hidden_size"' '"hidden_size $ 2"' '"9223372036854775807 * 2"'; do
  echo '{"views": [{"parent": "model.layers.{l}.mlp.down_proj.weight", "split": [{"name": "d.{l}", "rows": '"$rows"'}]}]}' >"$dir/bad.json"
  check "rows $rows" 1 w map --spec "$dir/bad.json" fused --config "$dir/config.json"
done
expect_err "overflows 64 bits"
echo '{"views": [{"parent": "model.layers.{l}.mlp.down_proj.weight", "split": [{"name": "d.{l}", "rows": "hidden_size / 0"}]}]}' >"$dir/bad.json"
check "division by zero" 1 w map --spec "$dir/bad.json" fused --config "$dir/config.json"
expect_err "division by zero"
echo '{"views": [{"parent": "model.layers.{l}.mlp.down_proj.weight", "split": [{"name": "d.{l}", "rows": "hidden_size / 5"}]}]}' >"$dir/bad.json"
check "inexact division" 1 w map --spec "$dir/bad.json" fused --config "$dir/config.json"
expect_err "32 is not a multiple of 5"
echo '{"views": [{"parent": "model.layers.{l}.mlp.down_proj.weight", "split": [{"name": "d.{l}", "rows": "(l + 1"}]}]}' >"$dir/bad.json"
check "a syntax error" 1 w map --spec "$dir/bad.json" fused
expect_err "expected ')'"
echo '{"views": [{"parent": "model.layers.{l}.mlp.down_proj.weight", "split": [{"name": "d.{l}", "rows": 40}]}]}' >"$dir/bad.json"
check "rows outside the parent" 1 w map --spec "$dir/bad.json" fused
expect_err "rows [0, 40) fall outside parent 'model.layers.0.mlp.down_proj.weight' of 32 rows"
check "diagnose without --against" 2 w diagnose fused
expect_err "missing --against PATH"
check "diagnose against a malformed file" 1 w diagnose fused --against "$dir/bad.json"
expect_err "the index has no \"weight_map\" object"
check "diagnose of a missing topic" 1 w diagnose absent --against "$dir/hf.safetensors"
for cmd in map diagnose; do
  check "$cmd --help" 0 w "$cmd" --help
  expect_out "examples:"
done
finish
