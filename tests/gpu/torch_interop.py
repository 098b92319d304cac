#!/usr/bin/env python3
"""The Python binding with PyTorch on a GPU, each scenario between processes through a private broker:

  register-legacy / register-expandable  ModulePublisher(mode="register") shares a bf16 model's parameters in
      place (PyTorch's caching allocator: legacy IPC; expandable_segments: VMM fds) and changes them inside
      writing(); a reader copies every version it sees into its own model with load_module and checks it.
  copy-r2  ModulePublisher (copy mode) into weightbus-owned VMM replicas, R = 2, published on the stream without
      a host wait; the reader reads each version zero-copy with torch.from_dlpack on its own stream.
  flip-r2 / flip-register  the same two publishers (copy R = 2; register, PyTorch's legacy IPC blocks) with the
      reader taking every tensor at once with weightbus.torch.snapshot_tensors (every other version borrowed).
  dtypes   bf16, fp8 (e4m3fn, e5m2) and f32 CUDA tensors through DLPack (and the CUDA Array Interface for f32):
      same bytes, same address, right dtype.
  read-only  a snapshot's CUDA tensor through each DLPack consumer present (torch, and CuPy and JAX when
      installed): which capsule each asks for (versioned, flagged read-only, when it passes max_version >= 1),
      same bytes at the same address; and an update's versioned capsule is not flagged.
  examples trainer.py and server.py on the GPU.

    python3 tests/gpu/torch_interop.py BUILD_DIR [--versions N]

Prints "RESULT <scenario> PASS|FAIL ..." per scenario and "SKIP: ..." when torch or a GPU is missing.
"""
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / "bindings" / "python"


def value(version, index):
    return float((version * 7 + index) % 200 - 100)  # integers are exact in bf16


def bf16_model(torch, layers=20):
    torch.manual_seed(0)
    stack = [torch.nn.Linear(2048, 2048) for _ in range(layers)]
    stack += [torch.nn.LayerNorm(2048), torch.nn.Linear(2048, 333)]
    return torch.nn.Sequential(*stack).to(device="cuda", dtype=torch.bfloat16)


def fill(torch, model, version):
    with torch.no_grad():
        for i, p in enumerate(model.parameters()):
            p.fill_(value(version, i))


def check(torch, tensors, version):
    """Names of the tensors whose elements are not all value(version, i)."""
    return [i for i, t in enumerate(tensors) if not bool((t == value(version, i)).all())]


# Roles, each in its own process --------------------------------------------------------------------------------

def publisher(socket, mode, versions):
    import torch
    import weightbus
    from weightbus.torch import ModulePublisher

    model = bf16_model(torch)
    mode = {"flip-r2": "copy", "flip-register": "register"}.get(mode, mode)
    with weightbus.connect(socket, client_name="torch-publisher", timeout=20) as client:
        topic = client.create_topic("policy", replicas=1 if mode == "register" else 2)
        pub = ModulePublisher(topic, model, mode="register" if mode == "register" else "copy")
        print("ready", flush=True)
        sys.stdin.readline()
        for v in range(1, versions + 1):
            if mode == "register":
                with pub.writing(timeout=30):
                    fill(torch, model, v)
            else:
                fill(torch, model, v)
                assert pub.publish(timeout=30) == v
            time.sleep(0.01)  # let the reader see most versions
        sys.stdin.readline()  # the reader is done
        torch.cuda.synchronize()


def reader(socket, mode, versions):
    import torch
    import weightbus
    from weightbus.torch import load_module, snapshot_tensors

    own = bf16_model(torch, layers=20)
    with weightbus.connect(socket, client_name="torch-reader", timeout=20) as client:
        topic = client.open_topic("policy")
        print("ready", flush=True)
        last, read, torn, started = 0, 0, 0, time.time()
        while last < versions:
            topic.wait(after=last, timeout=60)
            if mode == "register":
                v = load_module(topic, own, timeout=60)
                bad = check(torch, list(own.parameters()), v)
            else:
                with topic.snapshot(timeout=60) as s:
                    v = s.version
                    if mode.startswith("flip"):  # even versions borrowed: the same tensors again where they lie
                        tensors = list(snapshot_tensors(s, borrow=v % 2 == 0).values())  # ordered on our stream
                    else:
                        tensors = [torch.from_dlpack(s[name]) for name in s.names()]  # ordered on our stream
                    bad = check(torch, tensors, v)
                    torch.cuda.current_stream().synchronize()
                    del tensors
            for i in bad:
                print(f"TORN: version {v} tensor {i}", file=sys.stderr)
            torn += len(bad)
            last, read = v, read + 1
        print(f"read={read} torn={torn} seconds={time.time() - started:.1f}", flush=True)
    sys.exit(1 if torn else 0)


# Scenarios, run by the parent ---------------------------------------------------------------------------------

def exchange(broker, mode, versions, env):
    me = os.path.abspath(__file__)
    pub = subprocess.Popen([sys.executable, me, "--role", "publisher", broker.socket, mode, str(versions)], env=env,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    if pub.stdout.readline().strip() != "ready":
        return False, "the publisher failed to set up"
    rd = subprocess.Popen([sys.executable, me, "--role", "reader", broker.socket, mode, str(versions)], env=env,
                          stdout=subprocess.PIPE, text=True)
    if rd.stdout.readline().strip() != "ready":
        return False, "the reader failed to start"
    pub.stdin.write("go\n")
    pub.stdin.flush()
    out, _ = rd.communicate(timeout=300)
    pub.stdin.write("done\n")
    pub.stdin.flush()
    pub.wait(timeout=60)
    return rd.returncode == 0 and pub.returncode == 0, f"versions={versions} {out.strip()}"


def dtypes(broker):
    import torch

    kinds = {"bf16": torch.bfloat16, "f8e4m3": torch.float8_e4m3fn, "f8e5m2": torch.float8_e5m2, "f32": torch.float32}
    source = {name: torch.arange(64, device="cuda", dtype=torch.float32).reshape(8, 8).to(dt)
              for name, dt in kinds.items()}
    with broker.connect("dtypes") as client:
        topic = client.create_topic("dtypes")
        topic.alloc({name: (t.shape, t.dtype) for name, t in source.items()}, device="cuda:0")
        with topic.update() as u:
            for name, t in source.items():
                torch.from_dlpack(u[name]).copy_(t)
            u.stream = torch.cuda.current_stream()
        with client.open_topic("dtypes").snapshot() as s:
            for name, dt in kinds.items():
                t = torch.from_dlpack(s[name])
                assert t.dtype == dt and t.device.type == "cuda", (name, t.dtype, t.device)
                assert t.data_ptr() == s[name].data_ptr, name
                assert torch.equal(t.view(torch.uint8), source[name].view(torch.uint8)), name
            via_cai = torch.as_tensor(s["f32"], device="cuda")
            assert via_cai.data_ptr() == s["f32"].data_ptr and torch.equal(via_cai, source["f32"])
            try:
                s["bf16"].__cuda_array_interface__
                raise AssertionError("bf16 has no CUDA Array Interface typestr")
            except TypeError:
                pass
            torch.cuda.synchronize()
            del t, via_cai  # they hold the snapshot: the client closes only once they are gone
    return True, "bf16 f8e4m3 f8e5m2 f32 zero-copy"


def read_only(broker):
    import ctypes

    import torch
    import weightbus
    from weightbus._lib import DLManagedTensorVersioned

    get_pointer = ctypes.pythonapi["PyCapsule_GetPointer"]
    get_pointer.argtypes, get_pointer.restype = [ctypes.py_object, ctypes.c_char_p], ctypes.c_void_p

    def flags(capsule):  # (major, minor, flags) of a versioned capsule, read while the caller holds it
        managed = ctypes.cast(get_pointer(capsule, b"dltensor_versioned"), ctypes.POINTER(DLManagedTensorVersioned))
        return managed.contents.version.major, managed.contents.version.minor, managed.contents.flags

    asked = []  # the max_version each consumer passes to __dlpack__
    dlpack = weightbus.Tensor.__dlpack__

    def spy(self, **kwargs):
        asked.append(kwargs.get("max_version"))
        return dlpack(self, **kwargs)

    consumers = {"torch": lambda t: torch.from_dlpack(t)}
    try:
        import cupy
        consumers["cupy"] = lambda t: torch.as_tensor(cupy.from_dlpack(t), device="cuda")
    except ImportError:
        pass
    try:
        import jax.dlpack
        if any(d.platform == "gpu" for d in jax.devices()):
            consumers["jax"] = lambda t: torch.from_dlpack(jax.dlpack.from_dlpack(t))
    except ImportError:
        pass
    source = torch.arange(8, device="cuda", dtype=torch.float32)
    details = []
    weightbus.Tensor.__dlpack__ = spy
    try:
        with broker.connect("read-only") as client:
            topic = client.create_topic("read-only")
            topic.alloc({"w": ((8,), torch.float32)}, device="cuda:0")
            with topic.update() as u:
                torch.from_dlpack(u["w"]).copy_(source)
                u.stream = torch.cuda.current_stream()
                capsule = u["w"].__dlpack__(max_version=(1, 0))
                assert flags(capsule) == (1, 1, 0), "an update's capsule is flagged"
            with client.open_topic("read-only").snapshot() as s:
                capsule = s["w"].__dlpack__(max_version=(1, 0))
                assert flags(capsule) == (1, 1, 1), "a snapshot's capsule is not flagged read-only"
                del capsule
                for name, consume in consumers.items():
                    del asked[:]
                    through = consume(s["w"])
                    assert torch.equal(through, source), name
                    if name != "jax":  # JAX may copy into memory of its own
                        assert through.data_ptr() == s["w"].data_ptr, name
                    kind = "versioned" if asked and asked[-1] is not None and asked[-1][0] >= 1 else "legacy"
                    version = getattr(sys.modules[name], "__version__", "?")
                    details.append(f"{name} {version} asked max_version={asked[-1] if asked else None}: {kind}")
                    torch.cuda.synchronize()
                    del through
    finally:
        weightbus.Tensor.__dlpack__ = dlpack
    return True, "; ".join(details)


def examples(broker, env):
    env = dict(env, WEIGHTBUS_SOCKET=broker.socket)
    cwd = PYTHON / "examples"
    trainer = subprocess.Popen([sys.executable, "trainer.py", "--steps", "300", "--interval", "0.01"], env=env,
                               cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    server = subprocess.run([sys.executable, "server.py", "--requests", "20", "--interval", "0.02"], env=env, cwd=cwd,
                            capture_output=True, text=True, timeout=300)
    trainer_out, _ = trainer.communicate(timeout=300)
    versions = {line.split(" from version ")[1].split()[0] for line in server.stdout.splitlines()
                if " from version " in line}
    ok = server.returncode == 0 and trainer.returncode == 0 and len(versions) >= 2
    return ok, f"server used {len(versions)} versions" + ("" if ok else f"\n{server.stderr}\n{trainer_out[-2000:]}")


def main():
    args = sys.argv[1:]
    if args and args[0] == "--role":
        role, socket, mode, versions = args[1], args[2], args[3], int(args[4])
        (publisher if role == "publisher" else reader)(socket, mode, versions)
        return
    build = Path(args[0] if args else "build-gpu").resolve()
    versions = int(args[2]) if len(args) > 2 and args[1] == "--versions" else 200
    sys.path[:0] = [str(PYTHON), str(PYTHON / "tests")]
    from broker import cuda_torch, use_build

    use_build(build)
    torch = cuda_torch()
    if torch is None:
        return
    from broker import Broker

    ok = True
    scenarios = [("register-legacy", lambda b: exchange(b, "register", versions, _env(""))),
                 ("register-expandable", lambda b: exchange(b, "register", versions, _env("expandable_segments:True"))),
                 ("copy-r2", lambda b: exchange(b, "copy", versions, _env(""))),
                 ("flip-r2", lambda b: exchange(b, "flip-r2", versions, _env(""))),
                 ("flip-register", lambda b: exchange(b, "flip-register", versions, _env(""))),
                 ("dtypes", dtypes),
                 ("read-only", read_only),
                 ("examples", lambda b: examples(b, _env("")))]
    for name, scenario in scenarios:
        with tempfile.TemporaryDirectory(prefix="wbtorch-") as tmp:
            broker = Broker(Path(tmp))
            try:
                passed, details = scenario(broker)
            except Exception as e:  # a scenario's failure is reported, and the others still run
                passed, details = False, f"{type(e).__name__}: {e}"
            finally:
                broker.stop()
        ok &= passed
        print(f"RESULT torch-{name} {'PASS' if passed else 'FAIL'} {details}", flush=True)
    sys.exit(0 if ok else 1)


def _env(alloc_conf):
    env = dict(os.environ)
    env.pop("PYTORCH_CUDA_ALLOC_CONF", None)
    if alloc_conf:
        env["PYTORCH_CUDA_ALLOC_CONF"] = alloc_conf
    return env


if __name__ == "__main__":
    main()
