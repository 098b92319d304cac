#!/usr/bin/env python3
"""PyTorch parameters shared in place: a publisher registers a bf16 model's parameters where PyTorch put them
and updates them on its stream; a reader in another process copies every version into its own tensors with
wb_snapshot_copy_into on its stream and checks every element.

    python3 torch_interop.py BUILD_DIR [--versions N]

Runs twice: PyTorch's default caching allocator (cudaMalloc blocks: legacy IPC handles of the block bases) and
expandable_segments (VMM memory in 20 MiB chunks: POSIX fds). Prints "SKIP: ..." when torch or a GPU is
missing. Uses ctypes only: there are no Python bindings yet.
"""
import ctypes as C
import os
import subprocess
import sys
import tempfile
import time

WB_DTYPE_BF16 = 8


class TensorSpec(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("dtype", C.c_int32), ("name", C.c_char_p), ("ndim", C.c_uint32),
                ("reserved", C.c_uint32), ("shape", C.c_int64 * 8)]


class TensorInfo(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("index", C.c_uint32), ("name", C.c_char_p), ("dtype", C.c_int32),
                ("ndim", C.c_uint32), ("shape", C.c_int64 * 8), ("strides", C.c_int64 * 8), ("nbytes", C.c_uint64),
                ("data", C.c_void_p), ("version", C.c_uint64), ("device_type", C.c_int32), ("is_view", C.c_uint32),
                ("device_uuid", C.c_uint8 * 16)]


class CopyTarget(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("index", C.c_uint32), ("name", C.c_char_p), ("dst", C.c_void_p),
                ("dst_bytes", C.c_uint64), ("device", C.c_int32), ("reserved", C.c_uint32)]


class AttachOptions(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("socket_path", C.c_char_p), ("broker_name", C.c_char_p),
                ("client_name", C.c_char_p), ("timeout_ms", C.c_int64)]


class TopicOptions(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("replicas", C.c_uint32)]


def load(build):
    lib = C.CDLL(os.path.join(build, "libclient", "libweightbus.so"))
    lib.wb_last_error.restype = C.c_char_p
    lib.wb_strerror.restype = C.c_char_p
    return lib


def check(lib, rc, what):
    if rc != 0:
        raise RuntimeError("%s: %s: %s" % (what, lib.wb_strerror(rc).decode(), lib.wb_last_error().decode()))


def attach(lib, socket, name):
    opts = AttachOptions(C.sizeof(AttachOptions), socket.encode(), None, name.encode(), 20000)
    client = C.c_void_p()
    check(lib, lib.wb_attach(C.byref(opts), C.byref(client)), "wb_attach")
    return client


def model(torch):
    torch.manual_seed(0)
    layers = [torch.nn.Linear(2048, 2048) for _ in range(20)] + [torch.nn.LayerNorm(2048), torch.nn.Linear(2048, 333)]
    return torch.nn.Sequential(*layers).to(device="cuda", dtype=torch.bfloat16)


def value(version, index):
    return float((version * 7 + index) % 200 - 100)  # integers are exact in bf16


def publisher(build, socket, versions):
    import torch
    lib = load(build)
    params = list(model(torch).named_parameters())
    client = attach(lib, socket, "torch-publisher")
    topic = C.c_void_p()
    check(lib, lib.wb_topic_create(client, b"policy", C.byref(TopicOptions(C.sizeof(TopicOptions), 1)), C.byref(topic)),
          "wb_topic_create")
    names = [n.encode() for n, _ in params]
    specs = (TensorSpec * len(params))()
    pointers = (C.c_void_p * len(params))()
    for i, (name, p) in enumerate(params):
        specs[i] = TensorSpec(C.sizeof(TensorSpec), WB_DTYPE_BF16, names[i], p.dim(), 0, (C.c_int64 * 8)(*p.shape))
        pointers[i] = p.data_ptr()
    check(lib, lib.wb_tensor_register_cuda(topic, specs, pointers, len(params)), "wb_tensor_register_cuda")
    print("ready", flush=True)
    sys.stdin.readline()  # the reader is ready
    stream = torch.cuda.current_stream()
    with torch.no_grad():
        for v in range(1, versions + 1):
            update = C.c_void_p()
            check(lib, lib.wb_update_begin(topic, C.c_int64(30000), C.byref(update)), "wb_update_begin")
            for i, (name, p) in enumerate(params):
                info = TensorInfo(struct_size=C.sizeof(TensorInfo))
                check(lib, lib.wb_update_tensor(update, names[i], C.byref(info)), "wb_update_tensor")
                if info.data != p.data_ptr():
                    raise RuntimeError("%s: write pointer %#x is not the parameter's %#x" % (name, info.data, p.data_ptr()))
                p.fill_(value(v, i))
            check(lib, lib.wb_update_publish_on_stream(update, C.c_void_p(stream.cuda_stream), None, 0, None),
                  "wb_update_publish_on_stream")
            time.sleep(0.01)  # let the reader see most versions
    sys.stdin.readline()  # the reader is done
    torch.cuda.synchronize()
    check(lib, lib.wb_detach(client), "wb_detach")


def reader(build, socket, versions):
    import torch
    lib = load(build)
    client = attach(lib, socket, "torch-reader")
    topic = C.c_void_p()
    check(lib, lib.wb_topic_open(client, b"policy", C.byref(topic)), "wb_topic_open")
    count = C.c_uint32()
    check(lib, lib.wb_topic_tensor_count(topic, C.byref(count)), "wb_topic_tensor_count")
    dst, targets = [], (CopyTarget * count.value)()
    for i in range(count.value):
        info = TensorInfo(struct_size=C.sizeof(TensorInfo))
        check(lib, lib.wb_topic_tensor(topic, i, C.byref(info)), "wb_topic_tensor")
        t = torch.empty(tuple(info.shape[:info.ndim]), dtype=torch.bfloat16, device="cuda")
        dst.append(t)
        targets[i] = CopyTarget(C.sizeof(CopyTarget), i, None, t.data_ptr(), t.numel() * 2, 0, 0)
    stream = torch.cuda.current_stream()
    print("ready", flush=True)
    last, read, bad, started = 0, 0, 0, time.time()
    while last < versions:
        v = C.c_uint64()
        check(lib, lib.wb_topic_wait(topic, C.c_uint64(last), C.c_int64(60000), C.byref(v)), "wb_topic_wait")
        snap = C.c_void_p()
        check(lib, lib.wb_snapshot_acquire(topic, C.c_uint64(0), C.c_int64(60000), C.byref(snap)), "acquire")
        check(lib, lib.wb_snapshot_version(snap, C.byref(v)), "wb_snapshot_version")
        check(lib, lib.wb_snapshot_copy_into(snap, targets, count.value, C.c_void_p(stream.cuda_stream)), "copy_into")
        stream.synchronize()
        check(lib, lib.wb_snapshot_release(snap), "release")
        for i, t in enumerate(dst):
            if not bool((t == value(v.value, i)).all()):
                bad += 1
                print("TORN: version %d tensor %d" % (v.value, i), file=sys.stderr)
        last, read = v.value, read + 1
    print("read=%d torn=%d seconds=%.1f" % (read, bad, time.time() - started), flush=True)
    check(lib, lib.wb_detach(client), "wb_detach")
    sys.exit(1 if bad else 0)


def run_mode(build, mode, versions):
    broker = os.environ.get("WEIGHTBUSD", os.path.join(build, "broker", "weightbusd"))
    tmp = tempfile.mkdtemp(prefix="wbtorch-")
    socket = os.path.join(tmp, "b.sock")
    b = subprocess.Popen([broker, "--foreground", "--socket", socket, "--name", "torch-%d-%s" % (os.getpid(), mode),
                          "--log-level", "warn"])
    try:
        for _ in range(500):
            if os.path.exists(socket):
                break
            time.sleep(0.01)
        env = dict(os.environ)
        if mode == "expandable":
            env["PYTORCH_CUDA_ALLOC_CONF"] = "expandable_segments:True"
        else:
            env.pop("PYTORCH_CUDA_ALLOC_CONF", None)
        me = os.path.abspath(__file__)
        pub = subprocess.Popen([sys.executable, me, build, "--role", "publisher", socket, str(versions)], env=env,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if pub.stdout.readline().strip() != "ready":
            raise RuntimeError("the publisher failed to register its parameters")
        rd = subprocess.Popen([sys.executable, me, build, "--role", "reader", socket, str(versions)],
                              stdout=subprocess.PIPE, text=True)
        if rd.stdout.readline().strip() != "ready":
            raise RuntimeError("the reader failed to start")
        pub.stdin.write("go\n")
        pub.stdin.flush()
        out, _ = rd.communicate(timeout=300)
        pub.stdin.write("done\n")
        pub.stdin.flush()
        pub.wait(timeout=60)
        ok = rd.returncode == 0 and pub.returncode == 0
        print("RESULT torch-%s %s versions=%d %s" % (mode, "PASS" if ok else "FAIL", versions, out.strip()), flush=True)
        return ok
    finally:
        b.terminate()
        b.wait()


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build-gpu"
    if len(sys.argv) > 2 and sys.argv[2] == "--role":
        role, socket, versions = sys.argv[3], sys.argv[4], int(sys.argv[5])
        (publisher if role == "publisher" else reader)(build, socket, versions)
        return
    versions = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == "--versions" else 200
    try:
        import torch
    except ImportError:
        print("SKIP: no torch")
        return
    if not torch.cuda.is_available():
        print("SKIP: no CUDA device")
        return
    del torch  # the parent stays free of CUDA
    ok = all([run_mode(build, mode, versions) for mode in ("legacy", "expandable")])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
