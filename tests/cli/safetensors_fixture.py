#!/usr/bin/python3
"""Writes the safetensors files the CLI tests need, by hand (numpy only; no safetensors package here).

  safetensors_fixture.py model PATH [SEED]   a small model of many dtypes, written the way the Rust
                                             `safetensors` crate writes (compact JSON, __metadata__ first,
                                             tensors in the order of their bytes, header padded with spaces
                                             to a multiple of 8)
  safetensors_fixture.py fused PATH          a two-layer Llama-like model in vLLM's fused layout
                                             (qkv_proj, gate_up_proj), F32, every element distinct
  safetensors_fixture.py hf PATH             the names of the same model in Hugging Face's layout
  safetensors_fixture.py malformed DIR       one file per broken rule, and DIR/cases.tsv: FILE<TAB>MESSAGE
  safetensors_fixture.py poke PATH OFFSET    adds 1 to the byte at OFFSET (a small training step)
  safetensors_fixture.py journal PATH OFFSET LENGTH MODE
                                             writes PATH.wbjournal by hand, as a crash would leave it, setting
                                             LENGTH bytes at OFFSET to 0xab; MODE: complete (also writes
                                             PATH.expected, the file once replayed), incomplete (no trailer),
                                             bad-checksum, wrong-size (for a file of another size)
"""
import json
import os
import struct
import sys

import numpy as np


def header_json(entries, metadata):
    head = {}
    if metadata is not None:
        head["__metadata__"] = metadata
    for name, dtype, shape, begin, end in entries:
        head[name] = {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}
    return json.dumps(head, separators=(",", ":"), ensure_ascii=False)


def write_raw(path, header_text, data=b"", length=None):
    raw = header_text.encode("utf-8") if isinstance(header_text, str) else header_text
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw) if length is None else length))
        f.write(raw)
        f.write(data)


def write_tensors(path, tensors, metadata=None):
    """tensors: [(name, dtype name, shape, bytes)], laid out back to back in this order."""
    entries, data, at = [], b"", 0
    for name, dtype, shape, raw in tensors:
        entries.append((name, dtype, list(shape), at, at + len(raw)))
        data += raw
        at += len(raw)
    text = header_json(entries, metadata)
    text += " " * ((8 - len(text.encode("utf-8")) % 8) % 8)
    write_raw(path, text, data)


def model(path, seed):
    rng = np.random.default_rng(seed)
    t = [
        ("model.embed_tokens.weight", "BF16", (64, 32), rng.integers(0, 2**16, (64, 32), dtype=np.uint16)),
        ("model.layers.0.self_attn.q_proj.weight", "F32", (32, 32), rng.standard_normal((32, 32), dtype=np.float32)),
        ("model.layers.0.mlp.gate.bias", "F16", (32,), rng.standard_normal(32).astype(np.float16)),
        ("model.norm.weight", "F64", (32,), rng.standard_normal(32)),
        ("positions", "I64", (3, 5), rng.integers(-1000, 1000, (3, 5), dtype=np.int64)),
        ("ids", "I32", (7,), rng.integers(-9, 9, 7, dtype=np.int32)),
        ("small", "I16", (2, 2), rng.integers(-9, 9, (2, 2), dtype=np.int16)),
        ("mask", "BOOL", (5,), rng.integers(0, 2, 5, dtype=np.uint8)),
        ("bytes", "U8", (3,), rng.integers(0, 255, 3, dtype=np.uint8)),
        ("signed.bytes", "I8", (3,), rng.integers(-9, 9, 3, dtype=np.int8)),
        ("fp8.e4m3", "F8_E4M3", (4, 4), rng.integers(0, 255, (4, 4), dtype=np.uint8)),
        ("fp8.e5m2", "F8_E5M2", (4,), rng.integers(0, 255, 4, dtype=np.uint8)),
        ("u16", "U16", (3,), rng.integers(0, 9, 3, dtype=np.uint16)),
        ("u32", "U32", (3,), rng.integers(0, 9, 3, dtype=np.uint32)),
        ("u64", "U64", (3,), rng.integers(0, 9, 3, dtype=np.uint64)),
        ("scalar", "F32", (), np.array(1.5, dtype=np.float32)),
        ("empty", "F32", (0, 4), np.zeros((0, 4), dtype=np.float32)),
        ("model.lm_head.weight", "F32", (64, 64), rng.standard_normal((64, 64), dtype=np.float32)),
    ]
    write_tensors(path, [(n, d, s, a.tobytes()) for n, d, s, a in t], {"format": "pt", "note": "ünïcode \"q\""})


# heads 4, kv heads 2, head_dim 8 (hidden 32), intermediate 48, 2 layers
FUSED = dict(num_attention_heads=4, num_key_value_heads=2, hidden_size=32, intermediate_size=48, layers=2)


def fused_tensors():
    c = FUSED
    hd = c["hidden_size"] // c["num_attention_heads"]
    qkv_rows = (c["num_attention_heads"] + 2 * c["num_key_value_heads"]) * hd
    shapes = [("model.embed_tokens.weight", (64, c["hidden_size"]))]
    for l in range(c["layers"]):
        p = "model.layers.%d." % l
        shapes += [
            (p + "self_attn.qkv_proj.weight", (qkv_rows, c["hidden_size"])),
            (p + "self_attn.o_proj.weight", (c["hidden_size"], c["hidden_size"])),
            (p + "mlp.gate_up_proj.weight", (2 * c["intermediate_size"], c["hidden_size"])),
            (p + "mlp.down_proj.weight", (c["hidden_size"], c["intermediate_size"])),
        ]
    out, start = [], 0
    for name, shape in shapes:
        n = int(np.prod(shape))
        out.append((name, "F32", shape, np.arange(start, start + n, dtype=np.float32).tobytes()))
        start += n
    return out


def hf_names():
    names = []
    for name, _, _, _ in fused_tensors():
        if "qkv_proj" in name:
            names += [name.replace("qkv_proj", x) for x in ("q_proj", "k_proj", "v_proj")]
        elif "gate_up_proj" in name:
            names += [name.replace("gate_up_proj", x) for x in ("gate_proj", "up_proj")]
        else:
            names.append(name)
    return names + ["lm_head.weight"]


def malformed(d):
    os.makedirs(d, exist_ok=True)
    cases = []
    f32 = np.arange(4, dtype=np.float32).tobytes()

    def case(name, message, header=None, data=f32, length=None, raw=None):
        path = os.path.join(d, name + ".safetensors")
        if raw is not None:
            open(path, "wb").write(raw)
        else:
            write_raw(path, header, data, length)
        cases.append((path, message))

    def entry(extra=None, **fields):
        e = {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}
        e.update(fields)
        return json.dumps({"w": e} if extra is None else dict({"w": e}, **extra))

    case("short", "too few for the 8-byte header length", raw=b"\x01\x00\x00")
    case("header-over-limit", "exceeds the limit of 100000000 bytes", "{}", length=200_000_000)
    case("header-past-end", "runs past the end of the file", "{}", length=1000)
    case("no-brace", "does not begin with '{'", ' {"w":1}')
    case("not-json", "the header is not valid JSON", '{"w": {"dtype": "F32",')
    case("trailing-garbage", "the header is not valid JSON", entry() + " x")
    case("not-utf8", "the header is not valid JSON", b'{"\xff": 1}')
    case("not-object", "the header is not valid JSON", "{]")
    case("duplicate-name", "has the key 'w' twice",
         '{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}')
    case("metadata-not-object", "\"__metadata__\" is not an object", entry({"__metadata__": ["pt"]}))
    case("metadata-value", "\"__metadata__\" value of 'step' is not a string", entry({"__metadata__": {"step": 3}}))
    case("entry-not-object", "tensor 'w': its entry is not an object", '{"w": [1, 2]}')
    case("no-dtype", "tensor 'w': no \"dtype\"", '{"w": {"shape": [2, 2], "data_offsets": [0, 16]}}')
    case("unknown-dtype", "tensor 'w': unknown dtype 'F12'", entry(dtype="F12"))
    case("dtype-not-string", "tensor 'w': \"dtype\" is not a string", entry(dtype=9))
    case("lowercase-dtype", "tensor 'w': unknown dtype 'f32'", entry(dtype="f32"))
    case("shape-not-array", "tensor 'w': \"shape\" is not an array", entry(shape=4))
    case("negative-shape", "tensor 'w': \"shape\" holds -2, not a non-negative integer", entry(shape=[-2, -2]))
    case("float-shape", "tensor 'w': \"shape\" holds 2.5", entry(shape=[2.5, 2]))
    case("too-many-dims", "tensor 'w': 9 dimensions, at most 8", entry(shape=[1] * 9))
    case("no-offsets", "tensor 'w': no \"data_offsets\"", '{"w": {"dtype": "F32", "shape": [2, 2]}}')
    case("three-offsets", "tensor 'w': \"data_offsets\" is not [begin, end]", entry(data_offsets=[0, 8, 16]))
    case("negative-offset", "tensor 'w': \"data_offsets\" is not [begin, end]", entry(data_offsets=[-1, 16]))
    case("begin-after-end", "tensor 'w': \"data_offsets\" begin 16 is after end 0", entry(data_offsets=[16, 0]))
    case("size-mismatch", "tensor 'w': \"data_offsets\" span 12 bytes, but shape [2, 2] of F32 needs 16",
         entry(data_offsets=[0, 12]), data=f32[:12])
    case("shape-overflow", "tensor 'w': the byte size of its shape overflows 64 bits",
         entry(shape=[2**40, 2**40]))
    case("first-not-at-0", "tensor 'w': its data begins at 4, leaving a gap after the header",
         entry(data_offsets=[4, 20]), data=f32 + b"\0" * 4)
    case("gap", "tensor 'b': its data begins at 20, leaving a gap after tensor 'a', which ends at 16",
         json.dumps({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                     "b": {"dtype": "F32", "shape": [1], "data_offsets": [20, 24]}}), data=f32 + b"\0" * 8)
    case("overlap", "tensor 'b': its data [8, 24) overlaps tensor 'a'",
         json.dumps({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                     "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}), data=f32 + b"\0" * 8)
    case("trailing-bytes", "the file has 20 bytes after the header, but its tensors cover 16", entry(),
         data=f32 + b"\0" * 4)
    case("truncated-data", "the file has 8 bytes after the header, but its tensors cover 16", entry(), data=f32[:8])
    case("unknown-key", "tensor 'w': unknown key 'offsets'", entry(offsets=[0, 16]))
    nul = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    case("nul-in-name", 'the tensor name "a\\u0000b" holds a NUL byte', json.dumps({"a\0b": nul}), data=f32[:8])
    case("names-equal-before-nul", 'the tensor name "a\\u0000b" holds a NUL byte',
         json.dumps({"a": nul, "a\0b": dict(nul, data_offsets=[8, 16])}))
    case("empty-name", "a tensor has an empty name", json.dumps({"": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}}),
         data=b"")
    case("name-too-long", "name of 300 bytes, at most 255",
         json.dumps({"n" * 300: {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}))
    case("no-tensors", "the checkpoint has no tensors", "{}", data=b"")
    case("metadata-too-large", "more than the 4096 bytes a version's metadata holds",
         entry({"__metadata__": {"big": "x" * 5000}}))

    # sharded indexes
    good = os.path.join(d, "shard-a.safetensors")
    write_tensors(good, [("a", "F32", (4,), f32)])
    def index(name, message, text):
        path = os.path.join(d, name + ".index.json")
        open(path, "w").write(text)
        cases.append((path, message))
    index("index-not-json", "the index is not valid JSON", "{")
    index("index-no-weight-map", "the index has no \"weight_map\" object", '{"metadata": {}}')
    index("index-escapes-folder", "maps to '../shard-a.safetensors', which is not a file name in the index's folder",
          json.dumps({"weight_map": {"a": "../shard-a.safetensors"}}))
    index("index-missing-tensor", "tensor 'b' is mapped to shard 'shard-a.safetensors', which does not hold it",
          json.dumps({"weight_map": {"a": "shard-a.safetensors", "b": "shard-a.safetensors"}}))
    index("index-unlisted-tensor", "tensor 'a' is in shard 'shard-a.safetensors', but the index does not map it there",
          json.dumps({"weight_map": {"z": "shard-a.safetensors"}}))
    index("index-missing-shard", "missing.safetensors: No such file or directory",
          json.dumps({"weight_map": {"a": "missing.safetensors"}}))
    with open(os.path.join(d, "cases.tsv"), "w") as f:
        for path, message in cases:
            f.write(path + "\t" + message + "\n")


def fnv1a(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def journal(path, offset, length, mode):
    """The format of tools/weightbus/journal.hpp, written independently of it."""
    size = os.path.getsize(path) + (1 if mode == "wrong-size" else 0)
    data = bytes([0xAB]) * length
    body = b"WBJRNL01" + struct.pack("<Q", size) + struct.pack("<QQ", offset, length) + data
    checksum = fnv1a(body) ^ (1 if mode == "bad-checksum" else 0)
    trailer = b"WBJEND01" + struct.pack("<QQ", 1, checksum)
    with open(path + ".wbjournal", "wb") as f:
        f.write(body if mode == "incomplete" else body + trailer)
    if mode == "complete":
        content = bytearray(open(path, "rb").read())
        content[offset:offset + length] = data
        open(path + ".expected", "wb").write(content)


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == "model":
        model(path, int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    elif cmd == "fused":
        write_tensors(path, fused_tensors(), {"format": "pt"})
    elif cmd == "hf":
        write_tensors(path, [(n, "F32", (1,), b"\0\0\0\0") for n in hf_names()])
    elif cmd == "malformed":
        malformed(path)
    elif cmd == "poke":
        with open(path, "r+b") as f:
            f.seek(int(sys.argv[3]))
            b = f.read(1)
            f.seek(int(sys.argv[3]))
            f.write(bytes([(b[0] + 1) % 256]))
    elif cmd == "journal":
        journal(path, int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
