#!/usr/bin/env python3
"""Full-model update on one GPU, six ways, measured in the same run:

  (a) peers   vLLM's IPC engine in its older HTTP mode (one IPC handle per tensor), reproduced: the trainer
              calls torch.multiprocessing.reductions.reduce_tensor on every tensor, pickles the {GPU UUID: handle}
              list, base64-encodes it and POSTs it beside the names, dtypes and shapes as JSON with `requests`;
              the server's handler unpickles it, rebuilds every tensor (rebuild_cuda_tensor opens the IPC handles,
              its device index replaced by the current one) and copies it into its own weights (load_weights).
              Timed from the trainer's first reduce_tensor to the POST's response.
  (a') peers-packed   vLLM's IPC engine in its current packed (chunked) mode, reproduced from vllm-project/vllm
              at 055e47c2 (vllm/backends/distributed/weight_transfer/ipc_engine.py and clients.py) with the
              packed_tensor.py of 00a9ccfb (the one docs.vllm.ai/en/latest documents): one uint8 buffer of
              packed_buffer_size_bytes (1 GiB by default) is allocated and exported once with reduce_tensor; the
              tensors are copied into it back to back (no alignment, raw bytes) until the next one would not
              fit, the trainer's stream is synchronized, and the chunk is POSTed to /update_weights with its
              names, dtype_names, shapes, tensor_sizes (bytes) and the base64 pickle of {GPU UUID: rebuild args}
              -- the same args with every chunk; the next chunk waits for that response (one buffer, no double
              buffering). The server rebuilds the buffer once per update (one-slot cache, released at
              finish), splits it by tensor_sizes, views each piece as its dtype and shape, clones it (vLLM
              clones because the buffer is reused) and calls load_weights, then synchronizes. The update is
              bracketed by POSTs to /start_weight_update and /finish_weight_update and ends with
              torch.cuda.ipc_collect, as vLLM's send_weights does; `packed` itself is set once, at the
              /init_weight_transfer_engine handshake. vLLM carries all of this over HTTP with `requests` (no
              ZMQ), and so does this. vLLM refuses a tensor larger than the buffer, and Qwen3-8B's embedding
              and lm_head (1.24 GB) exceed 1 GiB, so the buffer is max(1 GiB, the largest tensor).
              Timed from the trainer's first POST (start_weight_update) to finish's response and ipc_collect.
  (b) flip    weightbus, zero-copy: the trainer's weights are registered in place (R = 1); an update is begin +
              publish on its stream; the server, asleep in topic.wait, wakes, leases the version and takes every
              tensor as a torch tensor with weightbus.torch.snapshot_tensors (one C call, views of one base
              tensor per run of memory, its stream ordered after the version). Timed from the trainer's publish
              call (the step's GPU work done) to the server having every tensor; their values are checked after.
  (b') flip-each   as (b), resolving every tensor one by one as a weightbus.Tensor (Snapshot.tensor, a C call
              each; what flip measured before snapshot_tensors), not yet torch tensors.
  (b'') flip-borrow   as (b) with snapshot_tensors(borrow=True): tensors borrowed from the snapshot (valid while
              it is open, holding no lease), made on the first flip and handed out again for every version that
              lies in the same memory (R = 1: every version, which wb_snapshot_place tells), so a flip costs two
              small C calls and no torch call.
  (c) copy    weightbus copy-into: as (b), then the server copies every tensor into its own weights with
              wb_snapshot_copy_into on its stream and synchronizes. Same start, ends when the copies are done.
  (c') load   weightbus.torch.load_module, the server's loop the README shows, `seen = load_module(topic, module,
              after=seen)`: asleep inside it when the trainer publishes (its plan, kept between versions, and the
              check of the module done before the wait), into a module whose parameters are the server's
              weights. Same start, ends when it returns.
  (d) raw     the floor: the same tensors copied device to device in the server by torch._foreach_copy_ (one
              batched launch for all of them), with no notification, lease or lookup. Also reported: one
              cudaMemcpy of the same number of bytes between two contiguous buffers (raw-contiguous).

    python3 bench/model_update.py BUILD_DIR [--set qwen8b|many|all] [--iterations N] [--out CSV]

Shape sets: qwen8b, a Qwen3-8B-like bf16 model (399 tensors, 16.4 GB); many, 1,000 bf16 tensors of 1024 x 1024
(2.1 GB). Prints CSV rows set,path,iteration,ms and a summary with the ratios; "SKIP: ..." without torch or GPU.
After each peers path the server's weights are compared with a pattern the trainer wrote before every iteration.
"""
import argparse
import base64
import importlib.util
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / "bindings" / "python"


def shapes(name):
    if name == "many":
        return {f"layers.{i}.weight": (1024, 1024) for i in range(1000)}
    hidden, inter, heads, kv_heads, head_dim, vocab = 4096, 12288, 32, 8, 128, 151936
    out = {"model.embed_tokens.weight": (vocab, hidden)}
    for i in range(36):
        p = f"model.layers.{i}."
        out.update({p + "self_attn.q_proj.weight": (heads * head_dim, hidden),
                    p + "self_attn.k_proj.weight": (kv_heads * head_dim, hidden),
                    p + "self_attn.v_proj.weight": (kv_heads * head_dim, hidden),
                    p + "self_attn.o_proj.weight": (hidden, heads * head_dim),
                    p + "self_attn.q_norm.weight": (head_dim,), p + "self_attn.k_norm.weight": (head_dim,),
                    p + "mlp.gate_proj.weight": (inter, hidden), p + "mlp.up_proj.weight": (inter, hidden),
                    p + "mlp.down_proj.weight": (hidden, inter),
                    p + "input_layernorm.weight": (hidden,), p + "post_attention_layernorm.weight": (hidden,)})
    out.update({"model.norm.weight": (hidden,), "lm_head.weight": (vocab, hidden)})
    return out


def allocate(torch, set_name, fill):
    return {n: torch.full(s, fill, dtype=torch.bfloat16, device="cuda") for n, s in shapes(set_name).items()}


# vLLM's DEFAULT_PACKED_BUFFER_SIZE_BYTES (packed_tensor.py)
PACKED_BUFFER_BYTES = 1024 * 1024 * 1024


def pattern(torch, index, tensor, salt):
    """What the trainer writes into its tensor number `index` before a peers iteration, and what the server
    expects afterwards: varies along each tensor and between tensors, so a wrong offset, a swapped name or a
    missing chunk shows; integers in [-125, 125], which bfloat16 holds exactly."""
    values = torch.arange(tensor.numel(), dtype=torch.int32, device=tensor.device)
    return values.add_(index * 13 + salt).remainder_(251).sub_(125).view(tensor.shape).to(tensor.dtype)


def mark(torch, weights, salt):
    for index, tensor in enumerate(weights.values()):
        tensor.copy_(pattern(torch, index, tensor, salt))


# vLLM's packed mode, without the IPC (so that it runs on CPU tensors too) ------------------------------------

def pack_into(torch, items, buffer):
    """vLLM's packed_ipc_producer around a buffer it is given: copies each tensor's bytes into `buffer` (uint8)
    right after the previous one, and yields (names, dtype_names, shapes, tensor_sizes) whenever the next
    tensor would not fit and after the last one; the caller must be done with the chunk (vLLM: the consumer
    has answered) before it resumes this, since the next chunk overwrites the same bytes. The caller
    synchronizes its stream before sending, as vLLM's generator does before yielding."""
    capacity = buffer.numel()
    names, dtype_names, tensor_shapes, tensor_sizes, used = [], [], [], [], 0
    for name, tensor in items:
        flat = tensor.contiguous().view(torch.uint8).view(-1)
        if flat.numel() > capacity:
            raise ValueError(f"{name} has {flat.numel()} bytes, more than the packed buffer's {capacity}")
        if used and used + flat.numel() > capacity:
            yield names, dtype_names, tensor_shapes, tensor_sizes
            names, dtype_names, tensor_shapes, tensor_sizes, used = [], [], [], [], 0  # new lists: the yielded stay
        buffer[used:used + flat.numel()].copy_(flat)
        names.append(name)
        dtype_names.append(str(tensor.dtype).split(".")[-1])
        tensor_shapes.append(list(tensor.shape))
        tensor_sizes.append(flat.numel())
        used += flat.numel()
    if used:
        yield names, dtype_names, tensor_shapes, tensor_sizes


def unpack_from(torch, packed, names, dtype_names, tensor_shapes, tensor_sizes):
    """vLLM's packed_ipc_consumer after the rebuild: the chunk's bytes are split by size, each piece viewed as
    its dtype and shape, and cloned (vLLM clones since the producer reuses the buffer for the next chunk).
    Like vLLM's, no padding: a piece whose offset is not a multiple of its dtype's size cannot be viewed."""
    packed = packed[:sum(tensor_sizes)]
    dtypes = [getattr(torch, d) for d in dtype_names]
    return [(name, piece.contiguous().view(dtype).view(shape).clone())
            for name, shape, dtype, piece in zip(names, tensor_shapes, dtypes, packed.split(tensor_sizes))]


def as_module(torch, tensors):
    """A module whose parameters are `tensors` under the same dotted names (what a server's model is to
    load_module), sharing their storage."""
    root = torch.nn.Module()
    for name, tensor in tensors.items():
        *path, leaf = name.split(".")
        owner = root
        for part in path:
            if not hasattr(owner, part):
                owner.add_module(part, torch.nn.Module())
            owner = getattr(owner, part)
        owner.register_parameter(leaf, torch.nn.Parameter(tensor, requires_grad=False))
    return root


# The server, in its own process: commands on stdin, one result line per command on stdout ------------------

def server(socket, set_name):
    import torch
    import weightbus
    from torch.multiprocessing.reductions import rebuild_cuda_tensor
    from weightbus.torch import load_module, snapshot_tensors
    from werkzeug.serving import make_server
    from werkzeug.wrappers import Request, Response

    own = allocate(torch, set_name, 0.0)
    total = sum(t.numel() * t.element_size() for t in own.values())
    src = torch.empty(total, dtype=torch.uint8, device="cuda")
    dst = torch.empty(total, dtype=torch.uint8, device="cuda")
    # The floors' sources are views of src, back to back: one copy of the model fewer, so that qwen8b's trainer,
    # server and floors fit in 80 GB (an H100); a copy's speed does not depend on its neighbours.
    sources, offset = [], 0
    for t in own.values():
        size = t.numel() * t.element_size()
        sources.append(src[offset:offset + size].view(torch.bfloat16).view(t.shape).fill_(1.0))
        offset += size
    stream = torch.cuda.current_stream()

    def load_weights(weights):  # vLLM's load_weights copies each received tensor into the model's parameter
        for name, tensor in weights:
            own[name].copy_(tensor)

    # vLLM's IPC engine's state on the worker: `packed`, set by the trainer at the init handshake, and the
    # one-slot cache of the rebuilt packed buffer (PackedBufferImporter): every chunk of an update carries the
    # same export, which is opened once and released at finish_weight_update.
    engine = {"packed": False, "import": None}

    def receive_packed(info, ipc_handle):  # vLLM's packed_ipc_consumer
        device_index = torch.cuda.current_device()
        args = list(ipc_handle[str(torch.cuda.get_device_properties(device_index).uuid)])
        args[6] = device_index
        if engine["import"] is None or engine["import"][0] != args:
            engine["import"] = (args, rebuild_cuda_tensor(*args))  # a new export: the previous mapping goes
        return unpack_from(torch, engine["import"][1], info["names"], info["dtype_names"], info["shapes"],
                           info["tensor_sizes"])

    @Request.application
    def routes(request):  # vLLM's weight-transfer HTTP routes, each calling what vLLM's worker does
        if request.path == "/init_weight_transfer_engine":
            engine["packed"] = bool(json.loads(request.get_data())["init_info"].get("packed", False))
        elif request.path == "/start_weight_update":
            pass  # vLLM initializes its layerwise reload here; load_weights here copies in place
        elif request.path == "/finish_weight_update":
            engine["import"] = None  # vLLM's importer.close(): the trainer can reclaim its buffer
        elif request.path == "/update_weights":  # vLLM's IPC engine's receive_weights
            info = json.loads(request.get_data())["update_info"]
            ipc_handles = pickle.loads(base64.b64decode(info["ipc_handles_pickled"]))
            if engine["packed"]:
                weights = receive_packed(info, ipc_handles)
            else:
                weights = []
                for name, _dtype_name, _shape, handle in zip(info["names"], info["dtype_names"], info["shapes"],
                                                             ipc_handles):
                    device_index = torch.cuda.current_device()
                    physical_gpu_id = str(torch.cuda.get_device_properties(device_index).uuid)
                    func, args = handle[physical_gpu_id]
                    args = list(args)
                    args[6] = device_index
                    weights.append((name, func(*args)))
            load_weights(weights)
            torch.cuda.synchronize()  # the copies are done when the trainer hears back (and may reuse its buffer)
        else:
            return Response("no such route", status=404)
        return Response("ok")

    http = make_server("127.0.0.1", 0, routes, threaded=False)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    client = weightbus.connect(socket, client_name="bench-server", timeout=60)
    topic = client.open_topic("model")
    plan = weightbus.CopyPlan(own)
    names = list(own)
    module = as_module(torch, own)
    print(f"ready {http.server_port}", flush=True)
    seen, claimed = 0, 0
    for command in sys.stdin:
        command = command.strip()
        if command in ("flip", "flip-borrow", "flip-each", "copy", "load"):
            print("waiting", flush=True)  # the trainer publishes once this is asleep in topic.wait
        if command == "load":
            seen = load_module(topic, module, after=seen, timeout=60)
            end_ns = time.monotonic_ns()
            with topic.snapshot(seen, timeout=60) as s:  # the start, read after the clock stopped
                elapsed = end_ns - int(s.metadata)
            # Whether the copies were enqueued before the version (a GPU arm), and whether the GPU then made them,
            # let go by the trainer's publish (claimed): load_module's loader and its plan's counts say.
            loader = next(iter(weightbus.torch._LOADERS[topic].values()))
            on_stream = int(getattr(loader, "on_stream", False))
            was, claimed = claimed, loader.plan.info.gpu_arms_claimed
            print(f"{elapsed / 1e6:.3f} {on_stream} {max(0, claimed - was)}", flush=True)
        elif command in ("flip", "flip-borrow", "flip-each", "copy"):
            seen = topic.wait(after=seen, timeout=60)
            with topic.snapshot(seen, timeout=60) as s:
                start_ns = int(s.metadata)
                if command == "flip":
                    resolved = snapshot_tensors(s, stream)  # what the server's kernels would read, ordered
                elif command == "flip-borrow":
                    resolved = snapshot_tensors(s, stream, borrow=True)
                elif command == "flip-each":
                    resolved = [s.tensor(n) for n in names]
                    s.wait_stream(stream)
                else:
                    s.copy_into(plan, stream)
                    stream.synchronize()
                elapsed = time.monotonic_ns() - start_ns
                flipped = command in ("flip", "flip-borrow")
                if flipped and not all(bool((t == float(seen)).all()) for t in resolved.values()):
                    raise RuntimeError(f"snapshot_tensors of version {seen} differ from what the trainer wrote")
                if command in ("flip", "flip-borrow", "flip-each"):
                    stream.synchronize()  # before the release: the server's kernels would read these bytes
                    resolved = None
            print(f"{elapsed / 1e6:.3f}", flush=True)
        elif command in ("raw", "raw-contiguous"):
            torch.cuda.synchronize()
            start = time.monotonic_ns()
            if command == "raw":
                torch._foreach_copy_(list(own.values()), sources)
            else:
                dst.copy_(src)
            torch.cuda.synchronize()
            print(f"{(time.monotonic_ns() - start) / 1e6:.3f}", flush=True)
        elif command == "check":
            ok = all(bool((t == float(seen)).all()) for t in own.values())
            print("ok" if ok else "mismatch", flush=True)
        elif command.startswith("check-pattern "):  # after a peers path: what the trainer's mark() wrote
            salt = int(command.split()[1])
            ok = all(torch.equal(t, pattern(torch, i, t, salt)) for i, t in enumerate(own.values()))
            print("ok" if ok else "mismatch", flush=True)
    client.close()


# The trainer (this process) ---------------------------------------------------------------------------------

def peers_update(torch, weights, url):
    import requests
    from torch.multiprocessing.reductions import reduce_tensor

    start = time.monotonic_ns()
    gpu_uuid = str(torch.cuda.get_device_properties(torch.cuda.current_device()).uuid)
    names, dtype_names, tensor_shapes, ipc_handles = [], [], [], []
    for name, tensor in weights.items():
        names.append(name)
        dtype_names.append(str(tensor.dtype).split(".")[-1])
        tensor_shapes.append(list(tensor.shape))
        ipc_handles.append({gpu_uuid: reduce_tensor(tensor.detach().contiguous())})
    pickled_handles = base64.b64encode(pickle.dumps(ipc_handles)).decode("utf-8")
    body = {"update_info": {"names": names, "dtype_names": dtype_names, "shapes": tensor_shapes,
                            "ipc_handles_pickled": pickled_handles}}
    response = requests.post(url, json=body, timeout=600)
    response.raise_for_status()
    return (time.monotonic_ns() - start) / 1e6


def peers_packed_update(torch, weights, base_url, buffer_bytes):
    """vLLM's IPCTrainerWeightTransferEngine.send_weights with packed=True and its HTTP client, on one rank
    (no all-gather of handles: there is one trainer process)."""
    import requests
    from torch.multiprocessing.reductions import reduce_tensor

    def post(route, body=None):  # HTTPVLLMWeightSyncClient._post
        requests.post(f"{base_url}/{route}", json=body, timeout=300).raise_for_status()

    start = time.monotonic_ns()
    gpu_uuid = str(torch.cuda.get_device_properties(torch.cuda.current_device()).uuid)
    post("start_weight_update")
    buffer = torch.empty(buffer_bytes, dtype=torch.uint8, device="cuda")  # allocated and exported per update
    _, ipc_args = reduce_tensor(buffer)
    for names, dtype_names, tensor_shapes, tensor_sizes in pack_into(torch, iter(weights.items()), buffer):
        torch.cuda.current_stream().synchronize()  # the copies into the buffer are done before the server reads
        pickled = base64.b64encode(pickle.dumps({gpu_uuid: ipc_args})).decode("utf-8")
        post("update_weights", {"update_info": {"names": names, "dtype_names": dtype_names,
                                                "shapes": tensor_shapes, "tensor_sizes": tensor_sizes,
                                                "ipc_handles_pickled": pickled}})
    del buffer  # where vLLM's generator drops it: kept by the server's mapping until finish
    post("finish_weight_update")
    torch.cuda.ipc_collect()  # vLLM's _post_send_sync on one rank: the buffer is freed once the server let go
    return (time.monotonic_ns() - start) / 1e6


PATHS = ("peers", "peers-packed", "flip", "flip-borrow", "flip-each", "copy", "load", "raw", "raw-contiguous")


def run_set(set_name, iterations, broker, rows):
    import requests
    import torch
    import weightbus

    weights = allocate(torch, set_name, 1.0)
    client = weightbus.connect(broker.socket, client_name="bench-trainer", timeout=60)
    topic = client.create_topic("model", replicas=1)
    topic.register_cuda(weights)  # zero-copy: the trainer's own tensors are the topic's
    env = dict(os.environ, PYTHONPATH=str(PYTHON))
    srv = subprocess.Popen([sys.executable, __file__, "--role", "server", broker.socket, set_name], env=env,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    port = int(srv.stdout.readline().split()[1])
    base_url = f"http://127.0.0.1:{port}"
    packed_buffer = max(PACKED_BUFFER_BYTES, max(t.numel() * t.element_size() for t in weights.values()))

    def ask(command):
        srv.stdin.write(command + "\n")
        srv.stdin.flush()
        return srv.stdout.readline().strip()

    def publish(version):
        """A training step takes the tensors it writes from the update (R = 1: in place, between begin and
        publish), writes them, and publishes on its stream; the clock starts once the step's GPU work is done."""
        with topic.update(timeout=60) as update:
            for name in weights:
                update.tensor(name)
            for t in weights.values():
                t.fill_(float(version))
            torch.cuda.synchronize()
            update.metadata = str(time.monotonic_ns()).encode()
            update.stream = torch.cuda.current_stream()

    version = 0
    salt = 0
    gpu_armed = 0  # loads whose copies were enqueued before the version (load_module's GPU arm)
    gpu_claimed = 0  # of which the GPU made the copies, let go by the trainer's publish
    for path in PATHS:
        if path in ("peers", "peers-packed"):  # vLLM's trainer_init: the server learns whether it is packed
            requests.post(f"{base_url}/init_weight_transfer_engine",
                          json={"init_info": {"packed": path == "peers-packed"}}, timeout=60).raise_for_status()
        for i in range(iterations + 1):  # the first is a warm-up, not recorded
            if path in ("flip", "flip-borrow", "flip-each", "copy", "load"):
                version += 1
                if ask(path) != "waiting":
                    raise RuntimeError("the server did not start waiting")
                time.sleep(0.002)  # asleep in topic.wait by now: the clock must not time this harness's pipes
                publish(version)
                answer = srv.stdout.readline().split()
                ms = float(answer[0])
                if path == "load" and i > 0:
                    gpu_armed += int(answer[1])
                    gpu_claimed += int(answer[2])
            elif path in ("peers", "peers-packed"):
                salt += 1  # new bytes every iteration, so that the check after the last one means something
                mark(torch, weights, salt)
                torch.cuda.synchronize()
                if path == "peers":
                    ms = peers_update(torch, weights, f"{base_url}/update_weights")
                else:
                    ms = peers_packed_update(torch, weights, base_url, packed_buffer)
            else:
                ms = float(ask(path))
            if i > 0:
                rows.append((set_name, path, i, ms))
                print(f"{set_name},{path},{i},{ms:.3f}", flush=True)
        if path in ("peers", "peers-packed") and ask(f"check-pattern {salt}") != "ok":
            raise RuntimeError(f"the server's weights differ from the trainer's after {path}")
        if path in ("copy", "load") and ask("check") != "ok":
            raise RuntimeError(f"the server's weights differ from the trainer's after {path}")
    print(f"{set_name}: {gpu_armed} of {iterations} loads GPU-armed (copies enqueued before the version), "
          f"{gpu_claimed} of them started by the trainer's publish (the others withdrawn)", flush=True)
    srv.stdin.close()
    srv.wait(timeout=120)
    topic.revoke(next(iter(weights)), timeout=60)
    client.close()


def main():
    args = sys.argv[1:]
    if args and args[0] == "--role":
        server(args[2], args[3])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build", nargs="?", default="build-gpu")
    parser.add_argument("--set", default="all", choices=["qwen8b", "many", "all"])
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--out", help="also write the rows to this CSV file")
    opts = parser.parse_args()
    build = Path(opts.build).resolve()
    # GPU arms (weightbus.h: opt-in): the readers' copies enqueued before each version exists, started by its publish.
    os.environ.setdefault("WEIGHTBUS_GPU_ARMS", "on")
    os.environ.setdefault("WEIGHTBUSD", str(build / "broker" / "weightbusd"))
    os.environ["WEIGHTBUS_LIBRARY"] = str(build / "libclient" / "libweightbus.so.0")
    sys.path[:0] = [str(PYTHON), str(PYTHON / "tests")]
    missing = [m for m in ("torch", "requests", "werkzeug") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"SKIP: no {', '.join(missing)} for this python3")
        return
    import torch

    if not torch.cuda.is_available():
        print("SKIP: no CUDA device")
        return
    from broker import Broker

    print("set,path,iteration,ms", flush=True)
    rows = []
    for set_name in (["qwen8b", "many"] if opts.set == "all" else [opts.set]):
        with tempfile.TemporaryDirectory(prefix="wbbench-") as tmp:
            broker = Broker(Path(tmp))
            try:
                run_set(set_name, opts.iterations, broker, rows)
            finally:
                broker.stop()
        torch.cuda.empty_cache()
    if opts.out:
        with open(opts.out, "w") as f:
            f.write("set,path,iteration,ms\n" + "".join(f"{s},{p},{i},{ms:.3f}\n" for s, p, i, ms in rows))
    for set_name in sorted({r[0] for r in rows}):
        med = {p: statistics.median(ms for s, q, _, ms in rows if s == set_name and q == p) for p in PATHS}
        print(f"RESULT model-update-{set_name} peers_ms={med['peers']:.1f} "
              f"peers_packed_ms={med['peers-packed']:.1f} flip_ms={med['flip']:.2f} "
              f"flip_borrow_ms={med['flip-borrow']:.2f} flip_each_ms={med['flip-each']:.2f} "
              f"copy_ms={med['copy']:.2f} raw_ms={med['raw']:.2f} raw_contiguous_ms={med['raw-contiguous']:.2f} "
              f"load_ms={med['load']:.2f} copy_over_raw={med['copy'] / med['raw']:.3f} "
              f"load_over_contiguous={med['load'] / med['raw-contiguous']:.3f} "
              f"peers_over_copy={med['peers'] / med['copy']:.1f} "
              f"peers_packed_over_copy={med['peers-packed'] / med['copy']:.1f}", flush=True)


if __name__ == "__main__":
    main()
