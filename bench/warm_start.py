#!/usr/bin/env python3
"""Warm starts: a server process that starts while the model is already resident in the broker's GPU memory,
against one that loads the same safetensors files from disk, measured in the same run.

A Qwen3-8B-like bf16 model (the shapes of model_update.py, 399 tensors, 16.4 GB) is written as safetensors
shards of at most 4 GB (the `safetensors` package, in a temporary folder on disk, with an index) and loaded
once with `weightbus load INDEX --topic model --device cuda:0 --replicas 1`; the loading process exits and the
topic stays resident in the broker. Then, for every path, fresh server processes start one after another:

  zero-copy    weightbus.connect + open_topic + snapshot + torch.from_dlpack of every tensor (each ordered on
               the server's stream after the version's GPU work): the server computes on the topic's memory.
  snapshot-tensors   the same with weightbus.torch.snapshot_tensors (every tensor in one C call, views of one
               base tensor per run of memory) instead of a torch.from_dlpack per tensor.
  copy-into    the same with Snapshot.copy_into(CopyPlan(...)) into the server's own tensors, allocated before
               the clock starts (the server's model exists; the allocation is reported apart, alloc_ms).
  safetensors  safetensors.torch.load_file(shard, device="cuda:0") of every shard, the page cache warm (every
               file was read once before the first start, and each start reads them again).
  floor        one contiguous device copy (torch copy_) of the same number of bytes, between two buffers
               allocated before the clock starts: what any copying start costs at least.

Each start is timed inside its process from after its imports and its CUDA context (made by a one-element
allocation: an inference server has one before it loads weights) until every tensor is usable
(torch.cuda.synchronize): `ms`, the numbers compared. Every process also reports `process_ms`, from the
parent's spawn to the same point (interpreter start, imports and CUDA context included, alike for every path).
The first round of starts is a warm-up, not recorded; rounds go through the paths in turn. Every start checks
every tensor it got against the value the files hold (after the clock stopped).

    python3 bench/warm_start.py BUILD_DIR [--gib G] [--iterations N] [--device cuda:0|cpu] [--dir DIR]
                                [--out CSV] [--target X]

--gib G divides the first dimension of every tensor so that the model is about G GiB (the same 399 tensors).
--device cpu runs the weightbus paths against a host-memory topic (a machine without a GPU; the safetensors
path needs the package, the files are then written by a minimal writer of this file). Prints CSV rows
set,path,iteration,ms,process_ms (also to --out), a table, and "RESULT warm-start ..."; "SKIP: ..." without
torch, a GPU (for cuda) or safetensors (for cuda). Exit status 3 when a weightbus start is not --target
(10) times faster than safetensors, 1 on a failure.
"""
import argparse
import gc
import importlib.util
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / "bindings" / "python"
sys.path[:0] = [str(ROOT / "bench")]
from model_update import shapes as model_shapes  # noqa: E402  (the model the other GPU benchmarks use)

SHARD_BYTES = 4 * 10**9  # "at most 4 GB" a shard, in either reading of GB
PATHS = ("zero-copy", "snapshot-tensors", "copy-into", "safetensors", "floor")
WEIGHTBUS_PATHS = ("zero-copy", "snapshot-tensors", "copy-into")


def model(gib):
    """(set name, {name: shape}): the Qwen3-8B-like shapes, every first dimension divided by k so that the
    model is about `gib` GiB (k = 1: the full 16.4 GB)."""
    full = model_shapes("qwen8b")
    total = sum(2 * math.prod(s) for s in full.values())
    k = max(1, math.ceil(total / (gib * 2**30))) if gib else 1
    if k == 1:
        return "qwen8b", full
    return f"qwen8b/{k}", {n: (math.ceil(s[0] / k),) + tuple(s[1:]) for n, s in full.items()}


def value(index):
    """What tensor number `index` holds, every element: integers in [-99, 99], exact in bf16; neighbours
    differ, so that a swapped or misplaced tensor shows."""
    return float(index % 199 - 99)


# The checkpoint ---------------------------------------------------------------------------------------------

def shard_plan(shapes):
    """Tensor names grouped into shards of at most SHARD_BYTES, in order."""
    shards, current, size = [], [], 0
    for name, shape in shapes.items():
        nbytes = 2 * math.prod(shape)
        if current and size + nbytes > SHARD_BYTES:
            shards.append(current)
            current, size = [], 0
        current.append(name)
        size += nbytes
    return shards + [current] if current else shards


def write_checkpoint(torch, folder, shapes):
    """Writes the shards and model.safetensors.index.json into `folder`; returns the shard paths."""
    index = {name: i for i, name in enumerate(shapes)}
    groups = shard_plan(shapes)
    paths, weight_map = [], {}
    for k, names in enumerate(groups):
        path = folder / f"model-{k + 1:05d}-of-{len(groups):05d}.safetensors"
        tensors = {n: torch.full(shapes[n], value(index[n]), dtype=torch.bfloat16) for n in names}
        save_file(torch, tensors, path)
        del tensors
        paths.append(path)
        weight_map.update({n: path.name for n in names})
    total = sum(2 * math.prod(s) for s in shapes.values())
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2, sort_keys=True))
    return paths


def save_file(torch, tensors, path):
    if importlib.util.find_spec("safetensors") is not None:
        from safetensors.torch import save_file as save

        save(tensors, str(path), metadata={"format": "pt"})
        return
    # Only where the package is missing (--device cpu on a machine without it): the format is a little-endian
    # u64 header length, the JSON header padded with spaces to a multiple of 8, then the bytes back to back.
    header, at = {"__metadata__": {"format": "pt"}}, 0
    for name, t in tensors.items():
        header[name] = {"dtype": "BF16", "shape": list(t.shape), "data_offsets": [at, at + 2 * t.numel()]}
        at += 2 * t.numel()
    text = json.dumps(header, separators=(",", ":"))
    text += " " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text.encode())
        for t in tensors.values():
            f.write(t.contiguous().view(-1).view(torch.uint8).numpy().tobytes())


def read_once(paths):
    """Reads every file to the end (the page cache warm for the safetensors starts); returns GB/s."""
    start, total = time.perf_counter(), 0
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            while True:
                chunk = f.read(64 << 20)
                if not chunk:
                    break
                total += len(chunk)
    return total / 1e9 / (time.perf_counter() - start)


def filesystem(path):
    """The type of the file system holding `path` (tmpfs: the files are in memory whatever the page cache)."""
    best, kind = "", "?"
    for line in open("/proc/mounts"):
        fields = line.split()
        if len(fields) > 2 and str(path).startswith(fields[1]) and len(fields[1]) > len(best):
            best, kind = fields[1], fields[2]
    return kind


# A server start, in a fresh process ---------------------------------------------------------------------------

def start(path, socket, folder, gib, device, spawned):
    """One server start along `path`; prints one JSON line: ms, process_ms, alloc_ms, ok."""
    import torch

    cuda = device.startswith("cuda")
    _, shapes = model(gib)
    names = list(shapes)
    if cuda:
        torch.cuda.set_device(device)
        torch.empty(1, device=device)  # the CUDA context, which a server has before it loads weights
        torch.cuda.synchronize()

    def synchronize():
        if cuda:
            torch.cuda.synchronize()

    result = {"alloc_ms": 0.0}
    own = src = None
    if path in WEIGHTBUS_PATHS:
        import weightbus
        from weightbus.torch import snapshot_tensors
    if path == "safetensors":
        from safetensors.torch import load_file
    alloc_start = time.perf_counter()
    # Zero-filled rather than empty: host pages are then in place before the clock starts, as a server's are.
    if path == "copy-into":
        own = {n: torch.zeros(shapes[n], dtype=torch.bfloat16, device=device) for n in names}
    elif path == "floor":
        nbytes = sum(2 * math.prod(s) for s in shapes.values())
        src = torch.zeros(nbytes, dtype=torch.uint8, device=device)
        own = torch.zeros(nbytes, dtype=torch.uint8, device=device)
    synchronize()
    result["alloc_ms"] = (time.perf_counter() - alloc_start) * 1e3

    t0 = time.perf_counter()
    client = snapshot = None
    if path in WEIGHTBUS_PATHS:
        client = weightbus.connect(socket, client_name=f"warm-start-{path}", timeout=60)
        snapshot = client.open_topic("model").snapshot(timeout=60)
        if path == "zero-copy":
            weights = {n: torch.from_dlpack(snapshot[n]) for n in names}
        elif path == "snapshot-tensors":
            weights = snapshot_tensors(snapshot)
        else:
            snapshot.copy_into(weightbus.CopyPlan(own), torch.cuda.current_stream() if cuda else None)
            weights = own
    elif path == "safetensors":
        weights = {}
        for shard in sorted(Path(folder).glob("*.safetensors")):
            weights.update(load_file(str(shard), device=device))
    else:
        own.copy_(src)
        weights = None
    synchronize()
    t1 = time.perf_counter()
    result["ms"] = (t1 - t0) * 1e3
    result["process_ms"] = (time.time() - spawned) * 1e3

    if weights is None:
        result["ok"] = True
    else:
        flags = [(weights[n] == value(i)).all() for i, n in enumerate(names)]
        result["ok"] = bool(torch.stack(flags).all()) and len(weights) == len(names)
    del weights, own, src
    gc.collect()
    if snapshot is not None:
        synchronize()  # nothing may read the version once it is released
        snapshot.release()
        client.close()
    print(json.dumps(result), flush=True)


def spawn(path, socket, folder, gib, device, timeout):
    spawned = time.time()  # the child finds the package through $PYTHONPATH (use_build)
    done = subprocess.run([sys.executable, __file__, "--role", path, socket, str(folder), str(gib), device,
                           repr(spawned)], capture_output=True, text=True, timeout=timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the {path} start failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(lines[-1])
    if not result["ok"]:
        raise RuntimeError(f"the {path} start got tensors that differ from the files")
    return result


# The parent ---------------------------------------------------------------------------------------------------

def load_topic(cli, socket, folder, device):
    """`weightbus load` of the index into topic "model"; returns (seconds, its JSON answer)."""
    started = time.perf_counter()
    done = subprocess.run([cli, "--socket", socket, "--json", "load", str(folder / "model.safetensors.index.json"),
                           "--topic", "model", "--device", device, "--replicas", "1"],
                          capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"weightbus load failed (exit {done.returncode}): {done.stderr.strip()}")
    return time.perf_counter() - started, json.loads(done.stdout)  # one JSON object, on one line or more


def resident(socket):
    """The topic's info once the loader is gone: it must still be there, version 1, with no publisher."""
    import weightbus

    with weightbus.connect(socket, client_name="warm-start-check", timeout=30) as client:
        info = next(t for t in client.topics() if t.name == "model")
    if info.latest != 1 or info.publisher_pid != 0:
        raise RuntimeError(f"after the loader exited the topic is {info}")
    return info


def summary(rows, set_name, paths, target, extra):
    med = {p: statistics.median(r["ms"] for r in rows if r["path"] == p) for p in paths}
    proc = {p: statistics.median(r["process_ms"] for r in rows if r["path"] == p) for p in paths}
    alloc = {p: statistics.median(r["alloc_ms"] for r in rows if r["path"] == p) for p in paths}
    print(f"\nwarm start, {set_name} ({extra}), median of {len(rows) // len(paths)} starts")
    print(f"  {'path':<17} {'ms (in-process)':>16} {'process_ms':>11} {'alloc_ms':>9}")
    for p in paths:
        print(f"  {p:<17} {med[p]:>16.2f} {proc[p]:>11.0f} {alloc[p]:>9.2f}")
    fields = [f"{p.replace('-', '_')}_ms={med[p]:.2f}" for p in paths]
    missed = False
    if "safetensors" in med:
        for p in WEIGHTBUS_PATHS:
            ratio = med["safetensors"] / med[p]
            print(f"  safetensors / {p} = {ratio:.1f}x" + (f" (target >= {target:g}x)" if target else ""))
            fields.append(f"safetensors_over_{p.replace('-', '_')}={ratio:.1f}")
            missed |= bool(target) and ratio < target
    ratio = med["copy-into"] / med["floor"]
    print(f"  copy-into / floor = {ratio:.3f} (the floor copies the bytes, nothing else)")
    fields.append(f"copy_into_over_floor={ratio:.3f}")
    print(f"RESULT warm-start {'MISS' if missed else 'PASS'} set={set_name} " + " ".join(fields), flush=True)
    return missed


def main():
    args = sys.argv[1:]
    if args and args[0] == "--role":
        start(args[1], args[2], args[3], float(args[4]), args[5], float(args[6]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build", nargs="?", default="build-gpu")
    parser.add_argument("--gib", type=float, default=0, help="model size in GiB (default: the full 16.4 GB)")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--dir", default=None, help="where the files go (default: the temporary folder)")
    parser.add_argument("--out", help="also write the rows to this CSV file")
    parser.add_argument("--target", type=float, default=10.0, help="safetensors / weightbus at least (0: none)")
    opts = parser.parse_args()
    build = Path(opts.build).resolve()
    sys.path[:0] = [str(PYTHON), str(PYTHON / "tests")]
    from broker import use_build

    use_build(build)
    cli = os.environ.get("WEIGHTBUS_CLI", str(build / "tools" / "weightbus" / "weightbus"))
    if importlib.util.find_spec("torch") is None:
        print("SKIP: no torch for this python3")
        return
    import torch

    cuda = opts.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        print("SKIP: no CUDA device")
        return
    has_safetensors = importlib.util.find_spec("safetensors") is not None
    if cuda and not has_safetensors:
        print("SKIP: no safetensors for this python3")
        return
    if not os.access(cli, os.X_OK):
        print(f"FAIL: no weightbus CLI at {cli} (set WEIGHTBUS_CLI or build it)", file=sys.stderr)
        sys.exit(1)
    paths = [p for p in PATHS if p != "safetensors" or has_safetensors]
    from broker import Broker

    set_name, shapes = model(opts.gib)
    nbytes = sum(2 * math.prod(s) for s in shapes.values())
    folder = Path(tempfile.mkdtemp(prefix="wbwarm-", dir=opts.dir))
    broker_dir = Path(tempfile.mkdtemp(prefix="wbwarm-broker-"))
    broker = None
    rows = []
    try:
        started = time.perf_counter()
        files = write_checkpoint(torch, folder, shapes)
        print(f"wrote {len(shapes)} tensors, {nbytes / 1e9:.2f} GB, in {len(files)} shards to {folder} "
              f"({filesystem(folder)}) in {time.perf_counter() - started:.1f} s", flush=True)
        broker = Broker(broker_dir)
        seconds, answer = load_topic(cli, broker.socket, folder, opts.device)
        info = resident(broker.socket)
        print(f"weightbus load: {answer['tensors']} tensors, {answer['bytes'] / 1e9:.2f} GB onto {answer['device']} "
              f"in {seconds:.1f} s; the loader exited, the topic stays: version {info.latest}, {info.bytes / 1e9:.2f} "
              f"GB, no publisher", flush=True)
        print(f"read the files once: {read_once(files):.1f} GB/s (the page cache is warm from here on)", flush=True)
        if not has_safetensors:
            print("no safetensors package: its path is left out", flush=True)
        print("set,path,iteration,ms,process_ms", flush=True)
        timeout = 600
        for i in range(opts.iterations + 1):  # the first round is a warm-up, not recorded
            for path in paths:
                result = spawn(path, broker.socket, folder, opts.gib, opts.device, timeout)
                if i == 0:
                    continue
                rows.append(dict(result, path=path, iteration=i))
                print(f"{set_name},{path},{i},{result['ms']:.3f},{result['process_ms']:.1f}", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # first: 16 GB of files must not outlive a failure below
        try:
            if broker is not None:
                broker.stop()
        finally:
            shutil.rmtree(broker_dir, ignore_errors=True)
    if opts.out:
        with open(opts.out, "w") as f:
            f.write("set,path,iteration,ms,process_ms,alloc_ms\n" + "".join(
                f"{set_name},{r['path']},{r['iteration']},{r['ms']:.3f},{r['process_ms']:.1f},{r['alloc_ms']:.3f}\n"
                for r in rows))
    extra = f"{len(shapes)} tensors, {nbytes / 1e9:.2f} GB bf16 on {opts.device}; ms from after imports and " \
            "the CUDA context to every tensor usable"
    missed = summary(rows, set_name, paths, opts.target if cuda else 0, extra)
    sys.exit(3 if missed else 0)


if __name__ == "__main__":
    main()
