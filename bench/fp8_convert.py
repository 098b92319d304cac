#!/usr/bin/env python3
"""FP8 conversion on the way, on one GPU: a Qwen3-8B-shaped bf16 model (the shapes of model_update.py, 399
tensors, 16.4 GB) published once into weightbus memory on the GPU (Topic.alloc) and read into FP8 e4m3
destinations of this process, every 2-D tensor converted, the 1-D ones (norms) copied as they are (FP8
checkpoints keep them in bf16). Measured in the same run, each path the median of --iterations runs after
--warmup, timed with CUDA events on one stream:

  floor             one contiguous device copy (torch copy_) of as many bytes as the model: the reference.
  copy-block        Snapshot.copy_into(CopyPlan made once) with Convert(e4m3, 128x128 block scales: DeepSeek-V3's
                    weight_scale_inv layout, which vLLM and SGLang load) for every 2-D tensor.
  plan-block        the same destinations through a SlicePlan (one destination per tensor, made once).
  plan-fused-block  vLLM's layout at tensor parallelism 1 (weightbus.torch.vllm_tp_layout: q, k, v fused into
                    qkv_proj and gate, up into gate_up_proj), e4m3 with block scales over the fused buffers.
  copy-channel      copy-into with per-channel scales (vLLM's per-channel weight_scale).
  copy-tensor       copy-into with one scale per tensor.
  torch-block       what peers do beside such a system (vLLM and verl users quantizing on the side): per tensor
                    in PyTorch, reshape into 128x128 blocks, amax, divide, clamp, .to(float8_e4m3fn)
                    (DeepGEMM's per_block_cast_to_fp8), the norms copied with copy_.

bandwidth fraction = ((bytes read + bytes written) / time) / (2 * model bytes / floor time); read: the bf16
model; written: the FP8 bytes, the scales and the copied norms (the torch path is charged the same bytes, not
its intermediate traffic). Target: copy-block and plan-block >= --target (0.80). After its runs, every path's
output is compared bit for bit with PyTorch's (the torch path's for block scales, the same formula for the
others; the header's formula, divisions by CUDA tensors): a difference fails the benchmark.

    python3 bench/fp8_convert.py BUILD_DIR [--gib G] [--iterations N] [--warmup N] [--out CSV] [--target X]
                                 [--paths REGEX]

--gib G divides the first dimension of every tensor so that the model is about G GiB (the same 399 tensors;
plan-fused-block needs the full model and is left out); --paths REGEX runs only the paths it finds (the floor
always). Prints CSV rows set,path,iteration,ms,bytes (also to
--out; bytes: read + written), a table, and "RESULT fp8-convert PASS|MISS ..."; "SKIP: ..." without torch, a
GPU, PyTorch's float8 dtypes or the library's conversion kernel. Exit status 3 when a block path misses the
target (tests/gpu/run.sh's MISS), 1 on a failure.
"""
import argparse
import math
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / "bindings" / "python"
sys.path[:0] = [str(ROOT / "bench")]
from model_update import shapes as model_shapes  # noqa: E402  (the model the other GPU benchmarks use)

# Qwen3-8B's attention, as model_update.shapes has it (vllm_tp_layout needs it for the fused path).
CONFIG = {"num_attention_heads": 32, "num_key_value_heads": 8, "hidden_size": 4096, "head_dim": 128,
          "vocab_size": 151936, "tie_word_embeddings": False}
FP8_MAX = 448.0  # e4m3
BLOCK = 128
PATHS = ("floor", "copy-block", "plan-block", "plan-fused-block", "copy-channel", "copy-tensor", "torch-block")
TARGETED = ("copy-block", "plan-block")


def model(gib):
    """(set name, {name: shape}): model_update's Qwen3-8B shapes, every first dimension divided by k so that
    the model is about `gib` GiB (k = 1: the full 16.4 GB)."""
    full = model_shapes("qwen8b")
    total = sum(2 * math.prod(s) for s in full.values())
    k = max(1, math.ceil(total / (gib * 2**30))) if gib else 1
    if k == 1:
        return "qwen8b", full
    return f"qwen8b/{k}", {n: (math.ceil(s[0] / k),) + tuple(s[1:]) for n, s in full.items()}


def scale_count(shape, layout):
    rows, cols = shape
    if layout == "tensor":
        return 1
    if layout == "channel":
        return rows
    return -(-rows // BLOCK) * -(-cols // BLOCK)


def fused_shapes(shapes):
    """vLLM's parameters at TP = 1 for the trainer's names: {vLLM name: shape} (qkv_proj, gate_up_proj fused)."""
    out = {}
    for name, shape in shapes.items():
        if ".self_attn.k_proj." in name or ".self_attn.v_proj." in name or ".mlp.up_proj." in name:
            continue
        if ".self_attn.q_proj." in name:
            prefix = name.split(".self_attn.")[0]
            rows = sum(shapes[f"{prefix}.self_attn.{p}_proj.weight"][0] for p in "qkv")
            out[f"{prefix}.self_attn.qkv_proj.weight"] = (rows, shape[1])
        elif ".mlp.gate_proj." in name:
            out[name.replace("gate_proj", "gate_up_proj")] = (2 * shape[0], shape[1])
        else:
            out[name] = shape
    return out


def fused_sources(name):
    """The trainer's tensors that vLLM's parameter `name` concatenates along dimension 0."""
    if ".qkv_proj." in name:
        return [name.replace("qkv_proj", f"{p}_proj") for p in "qkv"]
    if ".gate_up_proj." in name:
        return [name.replace("gate_up_proj", p) for p in ("gate_proj", "up_proj")]
    return [name]


# PyTorch's conversions: the peers' path, and the reference every path is checked against ------------------------

def torch_block(torch, w):
    """DeepGEMM's per_block_cast_to_fp8 (padding to whole blocks only where needed), dividing as the header
    does: scale = amax / 448 (1 where amax is 0), q = (x / scale).clamp(-448, 448) -> e4m3, the divisions by CUDA
    tensors (PyTorch divides by a Python scalar by multiplying with its reciprocal, which differs in the last
    bit). Returns (q [R, C] e4m3, scales [ceil(R/128), ceil(C/128)] f32)."""
    rows, cols = w.shape
    rb, cb = -(-rows // BLOCK), -(-cols // BLOCK)
    x = w.float()
    if rows % BLOCK or cols % BLOCK:
        x = torch.nn.functional.pad(x, (0, cb * BLOCK - cols, 0, rb * BLOCK - rows))
    blocks = x.view(rb, BLOCK, cb, BLOCK)
    amax = blocks.abs().amax(dim=(1, 3), keepdim=True)
    scale = torch.where(amax == 0, torch.ones_like(amax), amax / torch.full_like(amax, FP8_MAX))
    q = (blocks / scale).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn).view(rb * BLOCK, cb * BLOCK)
    return q[:rows, :cols], scale.view(rb, cb)


def torch_rows(torch, w, layout):
    """The header's formula for per-channel and per-tensor scales: (q e4m3, scales 1-D f32)."""
    x = w.float()
    amax = x.abs().amax(dim=1, keepdim=True) if layout == "channel" else x.abs().reshape(1, -1).amax(dim=1,
                                                                                                      keepdim=True)
    scale = torch.where(amax == 0, torch.ones_like(amax), amax / torch.full_like(amax, FP8_MAX))
    q = (x / scale.expand_as(x)).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)
    return q, scale.reshape(-1)


# The destinations -----------------------------------------------------------------------------------------------

class Destinations:
    """Every tensor's destination, carved out of two pools allocated once (the FP8 bytes of the 2-D tensors,
    the bf16 norms) plus a scale pool per layout; shared by the paths, which run one after the other."""

    def __init__(self, torch, shapes, device):
        self.torch = torch
        self.matrices = {n: s for n, s in shapes.items() if len(s) == 2}
        self.vectors = {n: s for n, s in shapes.items() if len(s) != 2}
        self.fp8_pool = torch.empty(sum(math.prod(s) for s in self.matrices.values()), dtype=torch.uint8,
                                    device=device)
        self.norm_pool = torch.empty(sum(math.prod(s) for s in self.vectors.values()), dtype=torch.bfloat16,
                                     device=device)
        self.scale_pools = {layout: torch.empty(sum(scale_count(s, layout) for s in self.matrices.values()),
                                                dtype=torch.float32, device=device)
                            for layout in ("block", "channel", "tensor")}
        self.norms = dict(zip(self.vectors, self._carve(self.norm_pool, self.vectors, math.prod)))

    def _carve(self, pool, shapes, size):
        at, out = 0, []
        for shape in shapes.values():
            n = size(shape)
            out.append(pool[at:at + n])
            at += n
        return out

    def fp8(self, shapes):
        """{name: e4m3 tensor} for `shapes` (2-D), back to back in the FP8 pool."""
        pieces = self._carve(self.fp8_pool, shapes, math.prod)
        return {n: p.view(self.torch.float8_e4m3fn).view(s) for (n, s), p in zip(shapes.items(), pieces)}

    def scales(self, shapes, layout):
        pieces = self._carve(self.scale_pools[layout], shapes, lambda s: scale_count(s, layout))
        return dict(zip(shapes, pieces))

    def clear(self):
        """Bits no conversion writes (e4m3 0xFF, scales -NaN), so that a path that skips something fails."""
        self.fp8_pool.fill_(0xFF)
        for pool in self.scale_pools.values():
            pool.view(self.torch.int32).fill_(-1)
        self.norm_pool.view(self.torch.int16).fill_(-1)

    def release(self):
        """Lets go of the pools (the torch path needs the memory)."""
        self.fp8_pool = self.norm_pool = None
        self.scale_pools, self.norms = {}, {}

    def bytes_written(self, layout):
        return (self.fp8_pool.numel() + 4 * self.scale_pools[layout].numel() + 2 * self.norm_pool.numel())


def copy_plan(weightbus, dests, layout):
    """{name: Convert} for the 2-D tensors, {name: bf16 tensor} (a plain copy) for the norms."""
    fp8 = dests.fp8(dests.matrices)
    scales = dests.scales(dests.matrices, layout)
    targets = {n: weightbus.Convert(fp8[n], scale=scales[n], layout=layout) for n in dests.matrices}
    targets.update({n: dests.norms[n].view(s) for n, s in dests.vectors.items()})
    return weightbus.CopyPlan(targets), fp8, scales


def slice_plan(weightbus, topic, dests):
    """One whole-tensor destination per tensor, the 2-D ones converted with block scales."""
    fp8 = dests.fp8(dests.matrices)
    scales = dests.scales(dests.matrices, "block")
    out = []
    for name, shape in list(dests.matrices.items()) + list(dests.vectors.items()):
        part = {"name": name, "offset": [0] * len(shape), "extent": list(shape), "pad": 0}
        if name in dests.matrices:
            out.append({"dst": fp8[name], "parts": [part], "concat_dim": 0, "dtype": "f8e4m3",
                        "scale": scales[name], "scale_layout": "block"})
        else:
            out.append({"dst": dests.norms[name].view(shape), "parts": [part], "concat_dim": 0})
    return weightbus.SlicePlan(topic, out), fp8, scales


def fused_plan(weightbus, topic, dests, shapes):
    """vllm_tp_layout at TP = 1 over vLLM's fused parameters, the 2-D ones converted with block scales."""
    from weightbus.torch import vllm_tp_layout

    params = fused_shapes(shapes)
    matrices = {n: s for n, s in params.items() if len(s) == 2}
    fp8 = dests.fp8(matrices)
    scales = dests.scales(matrices, "block")
    buffers = {n: fp8[n] if n in matrices else dests.norms[n].view(s) for n, s in params.items()}
    layout = vllm_tp_layout(CONFIG, 0, 1, buffers)
    for name, dest in zip(params, layout):
        if name in matrices:
            dest.update({"dtype": "f8e4m3", "scale": scales[name], "scale_layout": "block"})
    return weightbus.SlicePlan(topic, layout), fp8, scales, matrices


# Checks ---------------------------------------------------------------------------------------------------------

def check(torch, sources, fp8, scales, layout, path, vectors=None, norms=None, fused=None):
    """Raises unless every destination is PyTorch's conversion, bit for bit (fused: of the concatenation)."""
    for name, q in fp8.items():
        parts = (fused or {}).get(name, [name])
        w = sources[parts[0]] if len(parts) == 1 else torch.cat([sources[p] for p in parts])
        want_q, want_s = torch_block(torch, w) if layout == "block" else torch_rows(torch, w, layout)
        if not torch.equal(q.view(torch.uint8), want_q.contiguous().view(torch.uint8)):
            bad = (q.view(torch.uint8) != want_q.contiguous().view(torch.uint8)).nonzero()[0].tolist()
            raise RuntimeError(f"{path}: {name} differs from PyTorch's conversion, first at {bad}: "
                               f"0x{int(q.view(torch.uint8)[tuple(bad)]):02x} instead of "
                               f"0x{int(want_q.contiguous().view(torch.uint8)[tuple(bad)]):02x}")
        if not torch.equal(scales[name].view(torch.int32), want_s.reshape(-1).view(torch.int32)):
            raise RuntimeError(f"{path}: the scales of {name} differ from PyTorch's")
    for name, shape in (vectors or {}).items():
        if not torch.equal(norms[name].view(shape), sources[name]):
            raise RuntimeError(f"{path}: the copied {name} differs from the source")


# The run --------------------------------------------------------------------------------------------------------

def timed(torch, stream, run, warmup, iterations):
    """ms of each of `iterations` runs after `warmup`, between CUDA events on `stream`."""
    times = []
    for i in range(warmup + iterations):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record(stream)
        run()
        end.record(stream)
        end.synchronize()
        if i >= warmup:
            times.append(start.elapsed_time(end))
    return times


def wanted(opts, path):
    """Whether --paths asks for this path (all without it)."""
    return opts.paths is None or re.search(opts.paths, path) is not None


def bench(opts, broker, set_name, shapes, rows):
    import torch
    import weightbus

    device = torch.device("cuda", torch.cuda.current_device())
    stream = torch.cuda.Stream()
    model_bytes = sum(2 * math.prod(s) for s in shapes.values())
    client = weightbus.connect(broker.socket, client_name="fp8-bench", timeout=60)
    try:
        started = time.perf_counter()
        topic = client.create_topic("model", replicas=1)
        topic.alloc({n: (s, "bf16") for n, s in shapes.items()}, device=device.index)
        gen = torch.Generator(device=device).manual_seed(0)
        with topic.update(timeout=60) as u:
            for name in shapes:
                torch.from_dlpack(u[name]).normal_(0.0, 0.02, generator=gen)
            u.stream = torch.cuda.current_stream()
        torch.cuda.synchronize()
        print(f"published {len(shapes)} tensors, {model_bytes / 1e9:.2f} GB bf16, in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        reader = client.open_topic("model")
        snapshot = reader.snapshot(timeout=60)
        try:
            sources = {n: torch.from_dlpack(snapshot[n]) for n in shapes}  # zero-copy, ordered on this stream
            torch.cuda.synchronize()
            results = run_paths(opts, torch, weightbus, reader, snapshot, sources, shapes, stream, model_bytes,
                                set_name, rows)
            del sources
        finally:
            torch.cuda.synchronize()
            snapshot.release()
            reader.close()
        return results
    finally:
        client.close()


def run_paths(opts, torch, weightbus, topic, snapshot, sources, shapes, stream, model_bytes, set_name, rows):
    done = {}  # path -> (ms list, bytes)

    def record(path, times, nbytes):
        done[path] = (times, nbytes)
        for i, ms in enumerate(times, 1):
            rows.append((set_name, path, i, ms, nbytes))
            print(f"{set_name},{path},{i},{ms:.3f},{nbytes}", flush=True)

    # (a) the floor, its buffers freed before the others are made
    flat = {"src": torch.ones(model_bytes, dtype=torch.uint8, device=stream.device)}
    flat["dst"] = torch.empty_like(flat["src"])

    def floor():
        with torch.cuda.stream(stream):
            flat["dst"].copy_(flat["src"])

    record("floor", timed(torch, stream, floor, opts.warmup, opts.iterations), 2 * model_bytes)
    flat.clear()
    torch.cuda.empty_cache()

    dests = Destinations(torch, shapes, stream.device)
    read = model_bytes

    def weightbus_path(path, layout, make, fused=None):
        if not wanted(opts, path):
            return
        made = make()
        plan, fp8, scales = made[:3]
        dests.clear()
        if isinstance(plan, weightbus.SlicePlan):
            def run():
                plan.run(snapshot, stream)
        else:
            def run():
                snapshot.copy_into(plan, stream)
        try:
            record(path, timed(torch, stream, run, opts.warmup, opts.iterations), read + dests.bytes_written(layout))
            check(torch, sources, fp8, scales, layout, path, dests.vectors, dests.norms, fused)
        finally:
            if isinstance(plan, weightbus.SlicePlan):
                plan.close()

    # The library may lack the conversion kernel (built without nvcc): the first conversion says so.
    try:
        weightbus_path("copy-block", "block", lambda: copy_plan(weightbus, dests, "block"))
    except weightbus.NoCudaError as e:
        print(f"SKIP: libweightbus refuses GPU conversions (built without nvcc's conversion kernel?): {e}")
        return None
    weightbus_path("plan-block", "block", lambda: slice_plan(weightbus, topic, dests))
    if set_name == "qwen8b":  # vLLM's fused layout needs the model's real head counts
        fused = {n: fused_sources(n) for n in fused_shapes(shapes) if len(fused_shapes(shapes)[n]) == 2}
        weightbus_path("plan-fused-block", "block", lambda: fused_plan(weightbus, topic, dests, shapes), fused)
    weightbus_path("copy-channel", "channel", lambda: copy_plan(weightbus, dests, "channel"))
    weightbus_path("copy-tensor", "tensor", lambda: copy_plan(weightbus, dests, "tensor"))

    # (e) the peers' path: new tensors every run, as a training loop's side conversion makes them
    if not wanted(opts, "torch-block"):
        return done
    matrices, vectors = dests.matrices, dests.vectors
    dests.release()
    torch.cuda.empty_cache()
    norm_out = {n: torch.empty(s, dtype=torch.bfloat16, device=stream.device) for n, s in vectors.items()}
    kept = {}

    def peers():
        with torch.cuda.stream(stream):
            out = {n: torch_block(torch, sources[n]) for n in matrices}
            for n in vectors:
                norm_out[n].copy_(sources[n])
        kept["out"] = out  # freed when the next run replaces it (on this stream: the caching allocator orders it)

    written = sum(math.prod(s) + 4 * scale_count(s, "block") for s in matrices.values()) + \
        sum(2 * math.prod(s) for s in vectors.values())
    record("torch-block", timed(torch, stream, peers, opts.warmup, opts.iterations), read + written)
    kept.clear()
    torch.cuda.synchronize()
    return done


def summary(done, set_name, shapes, target):
    floor_ms = statistics.median(done["floor"][0])
    floor_rate = done["floor"][1] / floor_ms
    med = {p: statistics.median(t) for p, (t, _) in done.items()}
    fraction = {p: (done[p][1] / med[p]) / floor_rate for p in done}
    torch_ms = med.get("torch-block")
    model_bytes = sum(2 * math.prod(s) for s in shapes.values())
    print(f"\nFP8 conversion, {set_name} ({len(shapes)} tensors, {model_bytes / 1e9:.2f} GB bf16 -> e4m3 and bf16 "
          f"norms), median of {len(done['floor'][0])} runs")
    print(f"  {'path':<18} {'ms':>9} {'GB moved':>9} {'fraction':>9} {'torch/path':>11}")
    for p in PATHS:
        if p in done:
            ratio = f"{torch_ms / med[p]:>10.2f}x" if torch_ms else ""
            print(f"  {p:<18} {med[p]:>9.2f} {done[p][1] / 1e9:>9.2f} {fraction[p]:>9.3f} {ratio}")
    missed = [p for p in TARGETED if p in fraction and fraction[p] < target]
    print(f"  bandwidth fraction = ((bytes read + written) / time) / (2 * model bytes / floor time); "
          f"target: {', '.join(TARGETED)} >= {target:.2f}" + (f" -- MISSED by {', '.join(missed)}" if missed else ""))
    fields = [f"{p.replace('-', '_')}_ms={med[p]:.2f}" for p in PATHS if p in med]
    fields += [f"{p.replace('-', '_')}_fraction={fraction[p]:.3f}" for p in PATHS if p in med and p != "floor"]
    if torch_ms:
        fields += [f"torch_over_{p.replace('-', '_')}={torch_ms / med[p]:.1f}" for p in PATHS
                   if p in med and p not in ("floor", "torch-block")]
    print(f"RESULT fp8-convert {'MISS' if missed else 'PASS'} set={set_name} " + " ".join(fields), flush=True)
    return bool(missed)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build", nargs="?", default="build-gpu")
    parser.add_argument("--gib", type=float, default=0, help="model size in GiB (default: the full 16.4 GB)")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--out", help="also write the rows to this CSV file")
    parser.add_argument("--target", type=float, default=0.80, help="bandwidth fraction of the block paths")
    parser.add_argument("--paths", help="run only the paths this regular expression finds (the floor always)")
    opts = parser.parse_args()
    sys.path[:0] = [str(PYTHON), str(PYTHON / "tests")]
    from broker import cuda_torch, use_build

    use_build(Path(opts.build).resolve())
    torch = cuda_torch()
    if torch is None:
        return
    if not hasattr(torch, "float8_e4m3fn"):
        print(f"SKIP: torch {torch.__version__} has no float8 dtypes (2.1 or later has them)")
        return
    import weightbus

    if not hasattr(weightbus, "Convert"):
        print(f"FAIL: weightbus (from {weightbus.__file__}) has no Convert", file=sys.stderr)
        sys.exit(1)
    from broker import Broker

    set_name, shapes = model(opts.gib)
    rows = []
    started = time.perf_counter()
    print("set,path,iteration,ms,bytes", flush=True)
    with tempfile.TemporaryDirectory(prefix="wbfp8bench-") as tmp:
        broker = Broker(Path(tmp))
        try:
            done = bench(opts, broker, set_name, shapes, rows)
        except weightbus.NoCudaError as e:  # a library built without CUDA's headers
            print(f"SKIP: libweightbus has no CUDA: {e}")
            done = None
        finally:
            broker.stop()
    if done is None:
        return
    if opts.out:
        with open(opts.out, "w") as f:
            f.write("set,path,iteration,ms,bytes\n" + "".join(f"{s},{p},{i},{ms:.3f},{b}\n" for s, p, i, ms, b in rows))
    missed = summary(done, set_name, shapes, opts.target)
    print(f"(the whole benchmark took {time.perf_counter() - started:.0f} s)")
    sys.exit(3 if missed else 0)


if __name__ == "__main__":
    main()
