#!/usr/bin/env python3
"""Resharding on one GPU: a Qwen3-8B-shaped bf16 model (the shapes of model_update.py) published by N = 4
trainer ranks as FSDP dim-0 shards (torch.chunk of every tensor along dimension 0, in processes of their own)
and read by M = 2 server ranks in vLLM's tensor-parallel layout (fused QKV with grouped-query attention, fused
gate_up, row-parallel o_proj and down_proj, vocabulary-parallel embed_tokens and lm_head, whole norms), each
with a plan (wb_plan_create once), armed for each next version before it is published (wb_plan_arm; the copies
are enqueued by wb_armed_wait once it is). Measured in the same run:

  plan      weightbus: from the last rank's publish (each rank's GPU work done) until every reader's copies are
            done (wb_armed_wait + stream synchronize), a version of every element; every destination checked.
  floor     one contiguous device copy (torch copy_) of the bytes all readers receive: target plan <= 1.15x.
  shared    each reader's one contiguous copy of its own bytes, all readers at once (from a common start to
            the last done): what M processes sharing one GPU cost, beside the floor (reported, no target).
  peers     what systems without resharding do, reproduced with torch: gather each full tensor from its shards
            (torch.cat), then let each reader copy its slices out of it (narrow + copy_). Reported as a ratio.

    python3 bench/reshard.py BUILD_DIR [--ranks 4] [--readers 2] [--iterations 5] [--out CSV]

Prints CSV rows set,path,iteration,ms and a summary; "SKIP: ..." without torch or GPU. Exit status 3 when the
plan misses its target (tests/gpu/run.sh's MISS).
"""
import argparse
import ctypes
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / "bindings" / "python"
sys.path[:0] = [str(ROOT / "bench")]
from model_update import shapes  # noqa: E402  (the model both benchmarks use)

HEADS, KV_HEADS, HEAD_DIM, HIDDEN, INTER, VOCAB = 32, 8, 128, 4096, 12288, 151936
TARGET = 1.15


# The C API through ctypes, with the binding's struct definitions ------------------------------------------------

def c_api():
    from weightbus import _lib
    # A library object of its own: the binding's checks raise exceptions, and this benchmark reads the codes.
    lib = ctypes.CDLL(os.environ["WEIGHTBUS_LIBRARY"])
    lib.wb_strerror.argtypes, lib.wb_strerror.restype = [ctypes.c_int], ctypes.c_char_p
    lib.wb_last_error.argtypes, lib.wb_last_error.restype = [], ctypes.c_char_p
    p, u32, i64, u64 = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int64, ctypes.c_uint64
    lib.wb_topic_create_rank.argtypes = [p, ctypes.c_char_p, ctypes.POINTER(_lib.RankOptions), ctypes.POINTER(p)]
    lib.wb_shard_register_cuda.argtypes = [p, ctypes.POINTER(_lib.ShardSpec), ctypes.POINTER(p), u32]
    lib.wb_topic_seal_rank.argtypes = [p, i64]
    lib.wb_topic_rank_info.argtypes = [p, u32, ctypes.POINTER(_lib.RankInfo)]
    lib.wb_update_begin.argtypes = [p, i64, ctypes.POINTER(p)]
    lib.wb_update_version.argtypes = [p, ctypes.POINTER(u64)]
    lib.wb_update_shard.argtypes = [p, ctypes.c_char_p, u32, ctypes.POINTER(_lib.TensorInfo)]
    lib.wb_update_publish_on_stream.argtypes = [p, p, p, u32, ctypes.POINTER(u64)]
    lib.wb_topic_open.argtypes = [p, ctypes.c_char_p, ctypes.POINTER(p)]
    lib.wb_topic_wait.argtypes = [p, u64, i64, ctypes.POINTER(u64)]
    lib.wb_snapshot_acquire.argtypes = [p, u64, i64, ctypes.POINTER(p)]
    lib.wb_snapshot_version.argtypes = [p, ctypes.POINTER(u64)]
    lib.wb_snapshot_release.argtypes = [p]
    lib.wb_plan_create.argtypes = [p, ctypes.POINTER(_lib.SliceDest), u32, ctypes.POINTER(_lib.SlicePart), u32,
                                   ctypes.POINTER(p)]
    lib.wb_plan_run.argtypes = [p, p, p]
    lib.wb_plan_arm.argtypes = [p, u64, p, ctypes.POINTER(p)]
    lib.wb_armed_wait.argtypes = [p, i64, ctypes.POINTER(p)]
    lib.wb_armed_on_stream.argtypes = [p, ctypes.POINTER(ctypes.c_int32)]
    lib.wb_plan_get_info.argtypes = [p, ctypes.POINTER(_lib.PlanInfo)]
    lib.wb_split.argtypes = [i64, u32, u32, u32, ctypes.POINTER(i64), ctypes.POINTER(i64)]
    lib.wb_split_vocab.argtypes = [i64, i64, u32, u32, ctypes.POINTER(i64), ctypes.POINTER(i64),
                                   ctypes.POINTER(i64)]
    lib.wb_parts_qkv.argtypes = [ctypes.c_char_p] * 3 + [i64, i64, i64, i64, u32, u32, ctypes.POINTER(_lib.SlicePart)]
    lib.wb_parts_merged.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(i64), u32, i64, u32, u32,
                                    ctypes.POINTER(_lib.SlicePart)]
    lib.wb_attach.argtypes = [ctypes.POINTER(_lib.AttachOptions), ctypes.POINTER(p)]
    lib.wb_plan_destroy.argtypes = [p]
    lib.wb_detach.argtypes = [p]
    return lib, _lib


def check(lib, rc, what):
    if rc != 0:
        raise RuntimeError(f"{what}: {lib.wb_strerror(rc).decode()}: {lib.wb_last_error().decode(errors='replace')}")


def attach(lib, _lib, socket, name):
    opts = _lib.AttachOptions(ctypes.sizeof(_lib.AttachOptions), socket.encode(), None, name.encode(), 60000)
    client = ctypes.c_void_p()
    check(lib, lib.wb_attach(ctypes.byref(opts), ctypes.byref(client)), "wb_attach")
    return client


def chunk(lib, size, rank, ranks):
    off, ext = ctypes.c_int64(), ctypes.c_int64()
    check(lib, lib.wb_split(size, rank, ranks, 1, ctypes.byref(off), ctypes.byref(ext)), "wb_split")
    return off.value, ext.value


# A trainer rank: its dim-0 shard of every tensor, two replicas registered where torch allocated them -------------

def rank_role(socket, rank, ranks):
    import torch
    lib, _lib = c_api()
    client = attach(lib, _lib, socket, f"rank{rank}")
    opts = _lib.RankOptions(ctypes.sizeof(_lib.RankOptions), 2, rank, ranks)
    topic = ctypes.c_void_p()
    check(lib, lib.wb_topic_create_rank(client, b"model", ctypes.byref(opts), ctypes.byref(topic)), "create_rank")
    model = shapes("qwen8b")
    specs = (_lib.ShardSpec * len(model))()
    replicas, keep = [[], []], []
    for i, (name, shape) in enumerate(model.items()):
        off, ext = chunk(lib, shape[0], rank, ranks)
        s = specs[i]
        s.struct_size, s.dtype, s.ndim = ctypes.sizeof(_lib.ShardSpec), 8, len(shape)
        s.name = name.encode()
        keep.append(s.name)
        for d, n in enumerate(shape):
            s.logical_shape[d] = s.extent[d] = n
        s.offset[0], s.extent[0] = off, ext
        local = (ext,) + tuple(shape[1:])
        for r in range(2):
            replicas[r].append(torch.zeros(local, dtype=torch.bfloat16, device="cuda"))
    pointers = (ctypes.c_void_p * (2 * len(model)))(*[t.data_ptr() or None for r in replicas for t in r])
    check(lib, lib.wb_shard_register_cuda(topic, specs, pointers, len(model)), "wb_shard_register_cuda")
    # Sealed now, not by the first begin: readers make their plans before the first version is asked for.
    check(lib, lib.wb_topic_seal_rank(topic, 60000), "wb_topic_seal_rank")
    by_pointer = {t.data_ptr(): t for r in replicas for t in r}
    names = [n.encode() for n in model]
    print("ready", flush=True)
    stream = torch.cuda.current_stream()
    for command in sys.stdin:
        if command.strip() != "publish":
            break
        update = ctypes.c_void_p()
        check(lib, lib.wb_update_begin(topic, 60000, ctypes.byref(update)), "wb_update_begin")
        version = ctypes.c_uint64()
        lib.wb_update_version(update, ctypes.byref(version))
        for name in names:
            info = _lib.TensorInfo()
            info.struct_size = ctypes.sizeof(_lib.TensorInfo)
            check(lib, lib.wb_update_shard(update, name, 0, ctypes.byref(info)), "wb_update_shard")
            if info.data:
                by_pointer[info.data].fill_(float(version.value % 200))
        torch.cuda.synchronize()  # the rank's GPU work is done: the clock starts at its publish
        start = time.monotonic_ns()
        check(lib, lib.wb_update_publish_on_stream(update, ctypes.c_void_p(stream.cuda_stream), None, 0, None),
              "wb_update_publish_on_stream")
        print(start, flush=True)


# A server rank: vLLM's tensor-parallel layout of rank m of M ----------------------------------------------------

def part(_lib, name, shape, offset=None, extent=None, pad=0):
    p = _lib.SlicePart()
    p.struct_size, p.ndim, p.name, p.pad = ctypes.sizeof(_lib.SlicePart), len(shape), name.encode(), pad
    for d, n in enumerate(shape):
        p.offset[d] = 0 if offset is None else offset[d]
        p.extent[d] = n if extent is None else extent[d]
    return p


_NAMES = []  # the names C helpers point parts at (wb_parts_qkv keeps pointers): alive as long as the plans


def keep(name):
    _NAMES.append(name.encode())
    return _NAMES[-1]


def tp_layout(lib, _lib, m, M):
    """[(dest shape, [parts])]: every logical tensor of the model lands in exactly one destination."""
    model = shapes("qwen8b")
    layout = []
    for i in range(36):
        pre = f"model.layers.{i}."
        qkv = (_lib.SlicePart * 3)()
        check(lib, lib.wb_parts_qkv(*(keep(f"{pre}self_attn.{x}_proj.weight") for x in "qkv"), HEADS, KV_HEADS,
                                    HEAD_DIM, HIDDEN, m, M, qkv), "wb_parts_qkv")
        layout.append([qkv[0], qkv[1], qkv[2]])
        merged = (_lib.SlicePart * 2)()
        gate_up = (ctypes.c_char_p * 2)(keep(f"{pre}mlp.gate_proj.weight"), keep(f"{pre}mlp.up_proj.weight"))
        check(lib, lib.wb_parts_merged(gate_up, (ctypes.c_int64 * 2)(INTER, INTER), 2, HIDDEN, m, M, merged),
              "wb_parts_merged")
        layout.append([merged[0], merged[1]])
        for name in (f"{pre}self_attn.o_proj.weight", f"{pre}mlp.down_proj.weight"):  # row-parallel
            rows, cols = model[name]
            off, ext = cols // M * m, cols // M
            layout.append([part(_lib, name, (rows, cols), (0, off), (rows, ext))])
        for name in (f"{pre}self_attn.q_norm.weight", f"{pre}self_attn.k_norm.weight",
                     f"{pre}input_layernorm.weight", f"{pre}post_attention_layernorm.weight"):
            layout.append([part(_lib, name, model[name])])
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        off, ext, padded = ctypes.c_int64(), ctypes.c_int64(), ctypes.c_int64()
        check(lib, lib.wb_split_vocab(VOCAB, 64, m, M, ctypes.byref(off), ctypes.byref(ext), ctypes.byref(padded)),
              "wb_split_vocab")
        layout.append([part(_lib, name, (VOCAB, HIDDEN), (off.value, 0), (ext.value, HIDDEN),
                            padded.value - ext.value)])
    layout.append([part(_lib, "model.norm.weight", model["model.norm.weight"])])
    return layout


def reader_role(socket, m, M, ranks):
    import torch
    lib, _lib = c_api()
    client = attach(lib, _lib, socket, f"reader{m}")
    topic = ctypes.c_void_p()
    deadline = time.monotonic() + 120
    while lib.wb_topic_open(client, b"model", ctypes.byref(topic)) != 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    layout = tp_layout(lib, _lib, m, M)
    parts = (_lib.SlicePart * sum(len(p) for p in layout))()
    dests = (_lib.SliceDest * len(layout))()
    buffers, k = [], 0
    for i, dparts in enumerate(layout):
        shape = [dparts[0].extent[d] for d in range(dparts[0].ndim)]
        shape[0] = sum(p.extent[0] + p.pad for p in dparts)
        buffers.append(torch.empty(shape, dtype=torch.bfloat16, device="cuda"))
        d = dests[i]
        d.struct_size, d.device, d.first_part, d.part_count = ctypes.sizeof(_lib.SliceDest), 0, k, len(dparts)
        d.concat_dim, d.ndim, d.dtype = 0, len(shape), 8
        for j, n in enumerate(shape):
            d.shape[j] = n
        d.dst, d.dst_bytes = buffers[-1].data_ptr(), buffers[-1].numel() * 2
        for p in dparts:
            parts[k] = p
            k += 1
    plan = ctypes.c_void_p()
    while True:
        rc = lib.wb_plan_create(topic, dests, len(layout), parts, k, ctypes.byref(plan))
        if rc != -17 or time.monotonic() > deadline:  # WB_E_STATE: the ranks have not all sealed yet
            check(lib, rc, "wb_plan_create")
            break
        time.sleep(0.01)
    info = _lib.PlanInfo()
    info.struct_size = ctypes.sizeof(_lib.PlanInfo)
    lib.wb_plan_get_info(plan, ctypes.byref(info))
    total = sum(b.numel() * 2 for b in buffers)
    pads = [(i, sum(p.extent[0] for p in dp)) for i, dp in enumerate(layout) if dp[-1].pad]
    print(f"ready {total} {info.copies} {info.copies_2d}", flush=True)
    # A stream of its own for the weights, as a server keeps one: an armed read holds its stream until the version
    # comes (wb_plan_arm enqueues the copies on it behind a wait), which must not hold up other work.
    torch.cuda.synchronize()
    stream = torch.cuda.Stream()
    seen = 0
    for command in sys.stdin:
        command = command.split()
        if command[0] == "read":  # armed before the version is published: the wait enqueues its copies
            armed, snap = ctypes.c_void_p(), ctypes.c_void_p()
            check(lib, lib.wb_plan_arm(plan, seen, ctypes.c_void_p(stream.cuda_stream), ctypes.byref(armed)),
                  "wb_plan_arm")
            on_stream = ctypes.c_int32()
            lib.wb_armed_on_stream(armed, ctypes.byref(on_stream))
            check(lib, lib.wb_armed_wait(armed, 60000, ctypes.byref(snap)), "wb_armed_wait")
            woken = acquired = enqueued = time.monotonic_ns()
            version = ctypes.c_uint64()
            lib.wb_snapshot_version(snap, ctypes.byref(version))
            stream.synchronize()
            done = time.monotonic_ns()
            claimed = info.gpu_arms_claimed  # whether the GPU made this wait's copies (its publisher let them go)
            lib.wb_plan_get_info(plan, ctypes.byref(info))
            claimed = info.gpu_arms_claimed - claimed
            lib.wb_snapshot_release(snap)
            seen = version.value
            want = float(seen % 200)
            wrong = [(i, b, n) for i, b in enumerate(buffers) for n in [dict(pads).get(i, b.shape[0])]
                     if not (bool((b[:n] == want).all()) and bool((b[n:] == 0).all()))]
            ok = not wrong
            for i, b, n in wrong[:8]:  # what a mismatch found, for its report (stderr: the driver passes it on)
                print(f"reader {m}: version {seen} (GPU-armed {on_stream.value}, claimed {claimed}): destination {i} "
                      f"{tuple(b.shape)} holds {b[:n].unique()[:6].tolist()}, its padding {b[n:].unique()[:6].tolist()}"
                      f" (want {want} and 0); {len(wrong)} of {len(buffers)} destinations wrong", file=sys.stderr,
                      flush=True)
            print(f"{done} {'ok' if ok else 'mismatch'} {woken} {enqueued} {acquired} {on_stream.value} {claimed}",
                  flush=True)
        elif command[0] == "host":  # the host's share alone: acquire, and wb_plan_run's enqueueing
            acquire, run = [], []
            for _ in range(20):
                t0 = time.monotonic_ns()
                snap = ctypes.c_void_p()
                check(lib, lib.wb_snapshot_acquire(topic, 0, 60000, ctypes.byref(snap)), "wb_snapshot_acquire")
                t1 = time.monotonic_ns()
                check(lib, lib.wb_plan_run(plan, snap, ctypes.c_void_p(stream.cuda_stream)), "wb_plan_run")
                t2 = time.monotonic_ns()
                stream.synchronize()
                lib.wb_snapshot_release(snap)
                acquire.append((t1 - t0) / 1e6)
                run.append((t2 - t1) / 1e6)
            print(f"{statistics.median(acquire):.3f} {statistics.median(run):.3f}", flush=True)
        elif command[0] == "detach":  # done with weightbus: its imports of the ranks' memory closed
            lib.wb_plan_destroy(plan)
            check(lib, lib.wb_detach(client), "wb_detach")
            print("detached", flush=True)
        elif command[0] == "shared":  # a contiguous copy of this reader's bytes, from a common start
            n, start_ns = int(command[1]), int(command[2])
            src = torch.empty(n, dtype=torch.uint8, device="cuda")
            dst = torch.empty(n, dtype=torch.uint8, device="cuda")
            dst.copy_(src)
            torch.cuda.synchronize()
            while time.monotonic_ns() < start_ns:
                pass
            dst.copy_(src)
            torch.cuda.synchronize()
            print(time.monotonic_ns(), flush=True)
            del src, dst
            torch.cuda.empty_cache()
        elif command[0] == "floor":  # one contiguous copy of the bytes all readers receive
            n = int(command[1])
            src = torch.empty(n, dtype=torch.uint8, device="cuda")
            dst = torch.empty(n, dtype=torch.uint8, device="cuda")
            times = []
            for _ in range(3):
                torch.cuda.synchronize()
                start = time.monotonic_ns()
                dst.copy_(src)
                torch.cuda.synchronize()
                times.append((time.monotonic_ns() - start) / 1e6)
            del src, dst
            torch.cuda.empty_cache()
            print(f"{min(times):.3f}", flush=True)
        elif command[0] == "peers":  # gather every full tensor from its shards, then each reader's slices
            model = shapes("qwen8b")
            shards = {n: [torch.ones((chunk(lib, s[0], r, ranks)[1],) + s[1:], dtype=torch.bfloat16,
                                     device="cuda") for r in range(ranks)] for n, s in model.items()}
            others = [[torch.empty_like(b) for b in buffers] for _ in range(M - 1)]
            targets = [buffers] + others
            layouts = [layout] + [tp_layout(lib, _lib, r, M) for r in range(M) if r != m]
            torch.cuda.synchronize()
            start = time.monotonic_ns()
            full = {n: torch.cat(s) for n, s in shards.items()}
            for lay, bufs in zip(layouts, targets):
                for dparts, buf in zip(lay, bufs):
                    at = 0
                    for p in dparts:
                        src = full[p.name.decode()]
                        for d in range(p.ndim):
                            src = src.narrow(d, p.offset[d], p.extent[d])
                        buf.narrow(0, at, p.extent[0]).copy_(src)
                        at += p.extent[0] + p.pad
            torch.cuda.synchronize()
            print(f"{(time.monotonic_ns() - start) / 1e6:.3f}", flush=True)
            del shards, full, others, targets
            torch.cuda.empty_cache()
        else:
            break


# The driver --------------------------------------------------------------------------------------------------

def main():
    args = sys.argv[1:]
    if args and args[0] == "--role":
        sys.path[:0] = [str(PYTHON)]
        if args[1] == "rank":
            rank_role(args[2], int(args[3]), int(args[4]))
        else:
            reader_role(args[2], int(args[3]), int(args[4]), int(args[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build", nargs="?", default="build-gpu")
    parser.add_argument("--ranks", type=int, default=4)
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--out", help="also write the rows to this CSV file")
    opts = parser.parse_args()
    build = Path(opts.build).resolve()
    # GPU arms (weightbus.h: opt-in): the readers' copies enqueued before each version exists, started by its publish.
    os.environ.setdefault("WEIGHTBUS_GPU_ARMS", "on")
    os.environ.setdefault("WEIGHTBUSD", str(build / "broker" / "weightbusd"))
    os.environ["WEIGHTBUS_LIBRARY"] = str(build / "libclient" / "libweightbus.so.0")
    sys.path[:0] = [str(PYTHON), str(PYTHON / "tests")]
    from broker import Broker, cuda_torch

    torch = cuda_torch()
    if torch is None:
        return 0

    env = dict(os.environ, PYTHONPATH=str(PYTHON))
    rows = []
    print("set,path,iteration,ms", flush=True)
    with tempfile.TemporaryDirectory(prefix="wbreshard-") as tmp:
        broker = Broker(Path(tmp))
        procs = []
        try:
            def start(*role):
                p = subprocess.Popen([sys.executable, __file__, "--role", *map(str, role)], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                procs.append(p)
                return p

            def ask(p, line):
                p.stdin.write(line + "\n")
                p.stdin.flush()
                answer = p.stdout.readline().strip()
                if not answer:
                    raise RuntimeError(f"a {line!r} got no answer (the process exited: see its stderr)")
                return answer

            ranks = [start("rank", broker.socket, r, opts.ranks) for r in range(opts.ranks)]
            for p in ranks:
                assert p.stdout.readline().strip() == "ready"
            readers = [start("reader", broker.socket, m, opts.readers, opts.ranks) for m in range(opts.readers)]
            received, copies, shares, own = 0, [], [], []
            for p in readers:
                _, total, n, n2d = p.stdout.readline().split()
                received += int(total)
                own.append(int(total))
                copies.append(f"{n} copies ({n2d} strided)")
            for it in range(opts.iterations + 1):  # the first is a warm-up
                for p in readers:
                    p.stdin.write("read\n")
                    p.stdin.flush()
                starts = [int(ask(p, "publish")) for p in ranks]
                answers = [p.stdout.readline().split() for p in readers]
                if any(a[1] != "ok" for a in answers):
                    bad = [m for m, a in enumerate(answers) if a[1] != "ok"]
                    raise RuntimeError(f"iteration {it}: destinations of reader(s) {bad} do not hold the version "
                                       "(their details above)")
                last = max(starts)
                ms = (max(int(a[0]) for a in answers) - last) / 1e6
                if it > 0:
                    rows.append(("plan", it, ms))
                    # Each reader's share: woken (publish -> wb_armed_wait returns: woken, leased and the copies
                    # enqueued), GPU (-> its stream is done).
                    for m, a in enumerate(answers):
                        done, woken, enq, acq = int(a[0]), int(a[2]), int(a[3]), int(a[4])
                        shares.append((m, (woken - last) / 1e6, (acq - woken) / 1e6, (enq - acq) / 1e6,
                                       (done - enq) / 1e6, int(a[5]), int(a[6])))
            host = ask(readers[0], "host").split()
            # The weightbus part is done: the readers detach (closing their imports of the ranks' memory) and the
            # ranks exit, so that the floors below fit beside the readers' buffers on a GPU of 80 GB (an H100) as
            # on one of 141 GB.
            for p in readers:
                if ask(p, "detach") != "detached":
                    raise RuntimeError("a reader did not detach")
            for p in ranks:
                p.stdin.write("quit\n")
                p.stdin.flush()
                p.wait(timeout=120)
            rows.append(("floor", 1, float(ask(readers[0], f"floor {received}"))))
            for it in range(3):
                start = time.monotonic_ns() + 2_000_000_000  # past every reader's allocation
                for p, n in zip(readers, own):
                    p.stdin.write(f"shared {n} {start}\n")
                    p.stdin.flush()
                ends = [int(p.stdout.readline()) for p in readers]
                rows.append(("shared", it + 1, (max(ends) - start) / 1e6))
            rows.append(("peers", 1, float(ask(readers[0], "peers"))))
            for p in readers:
                p.stdin.write("quit\n")
                p.stdin.flush()
            for p in readers:
                p.wait(timeout=120)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
            broker.stop()
    for path, it, ms in rows:
        print(f"reshard-qwen8b-n{opts.ranks}m{opts.readers},{path},{it},{ms:.3f}")
    if opts.out:
        with open(opts.out, "w") as f:
            f.write("set,path,iteration,ms\n")
            for path, it, ms in rows:
                f.write(f"reshard-qwen8b-n{opts.ranks}m{opts.readers},{path},{it},{ms:.3f}\n")
    plan = statistics.median(ms for path, _, ms in rows if path == "plan")
    floor = next(ms for path, _, ms in rows if path == "floor")
    shared = min(ms for path, _, ms in rows if path == "shared")
    peers = next(ms for path, _, ms in rows if path == "peers")
    print(f"reshard: {received / 1e9:.2f} GB to {opts.readers} readers ({', '.join(copies)}): plan {plan:.2f} ms, "
          f"one contiguous copy {floor:.2f} ms -> {plan / floor:.3f}x (target <= {TARGET}); peers' gather + "
          f"slice {peers:.2f} ms -> {peers / plan:.2f}x the plan")
    print(f"shared: each reader's own bytes in one contiguous copy, all {opts.readers} at once: {shared:.2f} ms "
          f"({shared / floor:.3f}x the floor); the plan is {plan / shared:.3f}x that")
    print(f"reader 0 alone, host time: wb_snapshot_acquire {host[0]} ms, wb_plan_run {host[1]} ms (medians of 20)")
    for m in range(opts.readers):
        mine = [x for x in shares if x[0] == m]
        woken, acq, enq, gpu = (statistics.median(x[k] for x in mine) for k in (1, 2, 3, 4))
        gpu_arms, claimed = sum(x[5] for x in mine), sum(x[6] for x in mine)
        print(f"reader {m}: wb_armed_wait back {woken + acq + enq:.3f} ms after the last publish (woken, copies "
              f"enqueued), then its stream {gpu:.3f} ms (medians); {gpu_arms} of {len(mine)} reads GPU-armed (the "
              f"copies enqueued before the version), {claimed} of them started by its commit (the others withdrawn)")
    return 0 if plan <= TARGET * floor else 3


if __name__ == "__main__":
    sys.exit(main())
