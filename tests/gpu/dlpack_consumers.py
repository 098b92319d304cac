#!/usr/bin/env python3
"""DLPack consumers other than PyTorch reading weightbus CUDA tensors: CuPy (cupy.from_dlpack) and JAX
(jax.dlpack.from_dlpack), each in a process of its own, reading what this process (the publisher, with PyTorch)
publishes through a private broker. Per consumer:

  dtypes   every dtype weightbus has (bool, u8..u64, i8..i64, f16, bf16, f32, f64, f8e4m3, f8e5m2), one tensor
           each of a snapshot: the consumer's array has the right dtype, the bytes published, and its device
           address is the tensor's (zero-copy). A dtype the consumer refuses is reported with its error, not
           failed; JAX may copy on import (its from_dlpack copies when it must): reported as "copied", not failed.
           JAX runs with jax_enable_x64 (without it JAX turns 64-bit arrays into 32-bit copies: probed, reported).
  stream   the publisher enqueues a long sleep kernel (about 0.3 s) then a fill with the version's number on a
           side stream and publishes on that stream, without a host wait; the consumer imports the snapshot's
           tensor on its own stream (CuPy: a non-blocking stream made current; JAX passes the stream it reads on)
           and checks that every element is the new value. A control import of the same tensor with ordering
           turned off (stream=-1) sees stale bytes where the sleep was long enough to tell; at least one round
           must tell (the first may not: the consumer's first kernels compile while the sleep runs out).
  leases   an R = 1 topic: while the consumer's array lives (the snapshot itself released), the consumer's lease
           is listed (Client.leases) and the publisher's next update times out; once the array is deleted (del +
           gc) the lease goes (polled for 10 s) and the update goes through.

    python3 tests/gpu/dlpack_consumers.py BUILD_DIR [--device cuda|cpu] [--consumers cupy,jax]

--device cpu runs the same harness against host topics with NumPy's from_dlpack as the consumer ("numpy"; the
stream check does not apply): for machines without a GPU. Prints "RESULT dlpack-<consumer>-<check> PASS|FAIL
..." lines; "SKIP: ..." when torch, a GPU or a consumer is missing (exit 0 unless a consumer that ran failed);
exit status 1 on a failure.
"""
import contextlib
import ctypes
import gc
import inspect
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / "bindings" / "python"

SHAPE = (5, 77)  # 385 elements: no power of two, so that a wrong stride or size shows
# weightbus dtype -> the name each consumer gives it (NumPy's, and ml_dtypes' for bf16 and fp8)
DTYPES = {"bool": "bool", "u8": "uint8", "i8": "int8", "u16": "uint16", "i16": "int16", "u32": "uint32",
          "i32": "int32", "u64": "uint64", "i64": "int64", "f16": "float16", "bf16": "bfloat16",
          "f32": "float32", "f64": "float64", "f8e4m3": "float8_e4m3fn", "f8e5m2": "float8_e5m2"}
ORDERED_SHAPE = (4096, 4096)  # f32, 64 MiB: the fill takes a while on its own
STREAM_ROUNDS = 3
SLEEP_S = 0.3


def pattern(np, dtype):
    """The bytes published for `dtype`: values that vary along the tensor, every one a finite number (fp8:
    bit patterns that avoid NaN and infinity; bf16: the high halves of floats that bf16 holds exactly)."""
    i = np.arange(SHAPE[0] * SHAPE[1], dtype=np.int64)
    u64 = i.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)  # wraps: every bit of 64 in play
    values = {
        "bool": i % 3 == 0,
        "u8": (i * 37 % 256).astype(np.uint8), "i8": (i * 37 % 256 - 128).astype(np.int8),
        "u16": (i * 40503 % 65536).astype(np.uint16), "i16": (i * 40503 % 65536 - 32768).astype(np.int16),
        "u32": (u64 >> np.uint64(32)).astype(np.uint32), "i32": (u64 >> np.uint64(32)).astype(np.uint32).view(np.int32),
        "u64": u64, "i64": u64.view(np.int64),
        "f16": ((i % 200 - 100) / 4).astype(np.float16), "f32": ((i - 192.5) / 8).astype(np.float32),
        "f64": i * 1e-3 - 0.1,
        "bf16": (((i % 256 - 128) / 2).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16),
        "f8e4m3": ((i % 0x7F) | (i % 2) << 7).astype(np.uint8),  # 0x7F and 0xFF are its NaNs
        "f8e5m2": ((i % 0x7C) | (i % 2) << 7).astype(np.uint8),  # exponent 11111: infinities and NaNs
    }[dtype]
    return np.ascontiguousarray(values).tobytes()


# The publisher (this process) ---------------------------------------------------------------------------------

class RawBytes:
    """A CUDA Array Interface of `nbytes` bytes at `address`: a uint8 torch tensor over any dtype's memory."""

    def __init__(self, address, nbytes):
        self.__cuda_array_interface__ = {"shape": (nbytes,), "typestr": "|u1", "data": (address, False),
                                         "version": 3, "strides": None, "stream": None}


class Publisher:
    def __init__(self, client, device, folder):
        import numpy as np

        self.np, self.client, self.device, self.cuda = np, client, device, device != "cpu"
        if self.cuda:
            import torch

            self.torch = torch
            self.side = torch.cuda.Stream()
            self.cycles = self._cycles_per_second() * SLEEP_S
        self.dtypes = client.create_topic("dtypes", replicas=2)
        self.dtypes.alloc({f"t.{d}": (SHAPE, d) for d in DTYPES}, device=None if not self.cuda else device)
        with self.dtypes.update(timeout=30) as u:
            for d in DTYPES:
                data = pattern(np, d)
                (folder / f"{d}.bin").write_bytes(data)
                self._write(u.tensor(f"t.{d}"), data)
            u.stream = self.torch.cuda.current_stream() if self.cuda else None
        if self.cuda:
            self.ordered = client.create_topic("ordered", replicas=2)
            self.ordered.alloc({"w": (ORDERED_SHAPE, "f32")}, device=device)
        self.leases = client.create_topic("leases", replicas=1)
        self.leases.alloc({"w": ((1024,), "f32")}, device=None if not self.cuda else device)
        self.publish_leases(timeout=30)

    def _cycles_per_second(self):
        torch = self.torch
        torch.cuda._sleep(1000)  # the first launch loads the kernel
        torch.cuda.synchronize()
        start = time.perf_counter()
        torch.cuda._sleep(50_000_000)
        torch.cuda.synchronize()
        return 50_000_000 / (time.perf_counter() - start)

    def _write(self, tensor, data):
        if not self.cuda:
            view = (ctypes.c_uint8 * tensor.nbytes).from_address(tensor.data_ptr)
            self.np.frombuffer(view, dtype=self.np.uint8)[:] = self.np.frombuffer(data, dtype=self.np.uint8)
            return
        torch = self.torch
        raw = torch.as_tensor(RawBytes(tensor.data_ptr, tensor.nbytes), device=self.device)
        raw.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8).to(self.device))

    def publish_ordered(self):
        """A version whose bytes a kernel writes after a ~0.3 s sleep on a side stream, published on that stream
        (no host wait). Returns (version, whether the GPU work was still pending when publish returned)."""
        torch = self.torch
        with self.ordered.update(timeout=30) as u:
            dst = torch.from_dlpack(u.tensor("w"))
            with torch.cuda.stream(self.side):
                torch.cuda._sleep(int(self.cycles))
                dst.fill_(float(u.version))
            u.stream = self.side
        return u.published_version, not self.side.query()

    def publish_leases(self, timeout):
        with self.leases.update(timeout=timeout) as u:
            self._write(u.tensor("w"), self.np.full(1024, u.version, dtype=self.np.float32).tobytes())
            u.stream = self.torch.cuda.current_stream() if self.cuda else None
        return u.published_version


class Child:
    """A consumer process: lines starting with "@ " are its answers, the others (RESULT, SKIP) are relayed."""

    def __init__(self, consumer, socket, folder, device):
        env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false")  # JAX would take 75% of the GPU
        self.process = subprocess.Popen([sys.executable, __file__, "--role", consumer, socket, str(folder), device],
                                        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def expect(self, what):
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"the consumer exited (status {self.process.wait()}) before '@ {what}'")
            line = line.rstrip("\n")
            if line.startswith("@ "):
                word, _, rest = line[2:].partition(" ")
                if word != what:
                    raise RuntimeError(f"the consumer said {line!r}, not '@ {what}'")
                return rest
            print(line, flush=True)

    def say(self, line):
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def finish(self):
        self.expect("done")
        rest = self.process.stdout.read()
        if rest:
            print(rest, end="" if rest.endswith("\n") else "\n", flush=True)
        return self.process.wait(timeout=60)


def run_consumer(consumer, device, broker_factory):
    """One consumer against a fresh broker: (skipped reason or None, passed)."""
    import weightbus

    with tempfile.TemporaryDirectory(prefix="wbdlpack-") as tmp:
        folder = Path(tmp)
        broker = broker_factory(folder)
        child = None
        try:
            with weightbus.connect(broker.socket, client_name="dlpack-publisher", timeout=30) as client:
                publisher = Publisher(client, device, folder)
                child = Child(consumer, broker.socket, folder, device)
                skipped = child.expect("ready")
                if skipped:
                    child.finish()
                    return skipped, True
                child.expect("dtypes-done")
                if publisher.cuda:
                    for _ in range(STREAM_ROUNDS):
                        version, pending = publisher.publish_ordered()
                        child.say(f"{version} {int(pending)}")
                        child.expect("round")
                child.expect("holding")
                try:
                    publisher.publish_leases(timeout=0.5)
                    child.say("published")  # the consumer's array did not hold the version back
                except weightbus.WaitTimeoutError:
                    child.say("blocked")
                child.expect("released")
                try:
                    publisher.publish_leases(timeout=10)
                    child.say("published")
                except weightbus.WaitTimeoutError:
                    child.say("blocked")
                status = child.finish()
                if publisher.cuda:
                    publisher.torch.cuda.synchronize()
                return None, status == 0
        except Exception as e:  # reported, and the other consumers still run
            print(f"RESULT dlpack-{consumer} FAIL {type(e).__name__}: {e}", flush=True)
            if child is not None and child.process.poll() is None:
                child.process.kill()
            return None, False
        finally:
            broker.stop()


# The consumers (each in a process of its own) -----------------------------------------------------------------

class Spy:
    """Forwards the DLPack protocol to a weightbus.Tensor as the consumer calls it, and keeps what it passed.

    It also keeps the capsules it hands out until it dies. A consumer that refuses a capsule (a dtype it lacks)
    drops it while its exception is being raised; weightbus's capsule destructor (a ctypes callback) fails
    when it runs with an exception pending, which loses the export's lease and replaces the consumer's error
    with SystemError (seen with NumPy 1.24 here). Kept here, the capsule dies later, with no exception pending.
    A consumed capsule's destructor does nothing: keeping it does not extend the lease."""

    def __init__(self, tensor, calls, unordered=False):
        self.tensor, self.calls, self.unordered, self.capsules = tensor, calls, unordered, []

    def __dlpack_device__(self):
        return self.tensor.__dlpack_device__()

    def __dlpack__(self, *args, **kwargs):
        self.calls.append((args, dict(kwargs)))
        if self.unordered:  # the control: no ordering of the consumer's stream
            kwargs["stream"] = -1
        capsule = self.tensor.__dlpack__(*args, **kwargs)
        self.capsules.append(capsule)
        return capsule


class NumpyConsumer:
    name, may_copy = "numpy", False

    def __init__(self):
        import numpy

        self.np, self.version = numpy, numpy.__version__

    def take(self, obj, snapshot):
        return self.np.from_dlpack(obj)

    def pointer(self, array):
        return array.__array_interface__["data"][0]

    def host_bytes(self, array):
        return self.np.ascontiguousarray(array).tobytes()

    def all_equal(self, array, value):
        return bool((array == value).all())

    def stream(self):
        return contextlib.nullcontext()


class CupyConsumer(NumpyConsumer):
    name, may_copy = "cupy", False

    def __init__(self):
        import cupy

        self.cupy, self.version = cupy, cupy.__version__
        cupy.cuda.runtime.getDeviceCount()  # raises without a GPU
        self._stream = cupy.cuda.Stream(non_blocking=True)

    def take(self, obj, snapshot):
        return self.cupy.from_dlpack(obj)

    def pointer(self, array):
        return array.data.ptr

    def host_bytes(self, array):
        return self.cupy.asnumpy(array).tobytes()

    def all_equal(self, array, value):
        return bool((array == value).all())  # on the current stream, then a copy to the host

    def stream(self):
        return self._stream  # a cupy Stream is a context manager that makes it current


class JaxConsumer(NumpyConsumer):
    name, may_copy = "jax", True

    def __init__(self):
        import jax
        import jax.dlpack
        import jax.numpy as jnp
        import numpy

        self.jax, self.jnp, self.np, self.version = jax, jnp, numpy, jax.__version__
        jax.config.update("jax_enable_x64", True)
        self.gpu = [d for d in jax.devices() if d.platform in ("gpu", "cuda")]
        if not self.gpu:
            raise RuntimeError(f"JAX {jax.__version__} sees no GPU (devices: {jax.devices()})")
        # JAX >= 0.4.14 takes the producer (it calls __dlpack__ with its stream); before, only a capsule.
        parameters = inspect.signature(jax.dlpack.from_dlpack).parameters
        self.api = "object" if "external_array" in parameters else "capsule"

    def take(self, obj, snapshot):
        if self.api == "object":
            return self.jax.dlpack.from_dlpack(obj)
        # The capsule API passes no stream: order on the host instead (the version's GPU work done).
        snapshot.synchronize(timeout=30)
        return self.jax.dlpack.from_dlpack(obj.__dlpack__(stream=-1))

    def pointer(self, array):
        if hasattr(array, "unsafe_buffer_pointer"):
            return array.unsafe_buffer_pointer()
        return array.addressable_data(0).unsafe_buffer_pointer()

    def host_bytes(self, array):
        return self.np.asarray(array).tobytes()

    def all_equal(self, array, value):
        return bool(self.jnp.all(array == value))


CONSUMERS = {"numpy": NumpyConsumer, "cupy": CupyConsumer, "jax": JaxConsumer}


def say(line):
    print(line, flush=True)


def first_line(e):
    text = f"{type(e).__name__}: {e}".splitlines()[0]
    return text[:160]


def check_dtypes(consumer, topic, folder):
    """(passed, details) of the dtype sweep."""
    zero_copy, copied, refused, failed = [], [], [], []
    with topic.snapshot(timeout=30) as s:
        for dtype, expected_name in DTYPES.items():
            tensor = s[f"t.{dtype}"]
            spy = Spy(tensor, [])
            try:
                array = consumer.take(spy, s)
            except Exception as e:  # the consumer has no such dtype (or refuses the export): reported
                refused.append(f"{dtype} ({first_line(e)})")
                tensor = spy = None
                continue
            try:
                got = str(array.dtype)
                if got != expected_name:
                    failed.append(f"{dtype} arrived as {got}")
                elif tuple(array.shape) != SHAPE:
                    failed.append(f"{dtype} has shape {tuple(array.shape)}")
                elif consumer.host_bytes(array) != (folder / f"{dtype}.bin").read_bytes():
                    failed.append(f"{dtype} bytes differ")
                elif consumer.pointer(array) == tensor.data_ptr:
                    zero_copy.append(dtype)
                elif consumer.may_copy:
                    copied.append(dtype)
                else:
                    failed.append(f"{dtype} at {consumer.pointer(array):#x}, not the tensor's {tensor.data_ptr:#x}")
            except Exception as e:
                failed.append(f"{dtype}: {first_line(e)}")
            del array, tensor, spy
        gc.collect()
    details = f"{consumer.name} {consumer.version}: zero-copy, same bytes: {' '.join(zero_copy) or 'none'}"
    if copied:
        details += f"; copied by the consumer (same bytes, another address): {' '.join(copied)}"
    if refused:
        details += f"; refused by the consumer: {', '.join(refused)}"
    if failed:
        details += f"; FAILED: {', '.join(failed)}"
    return not failed and bool(zero_copy or copied), details


def jax_without_x64(consumer, topic):
    """What JAX does with a 64-bit tensor when jax_enable_x64 is off (its default): a note, never a failure."""
    consumer.jax.config.update("jax_enable_x64", False)
    try:
        with topic.snapshot(timeout=30) as s:
            tensor = s["t.i64"]
            array = consumer.take(tensor, s)
            same = consumer.pointer(array) == tensor.data_ptr
            note = f"without jax_enable_x64 an i64 tensor arrives as {array.dtype}" + \
                   ("" if same else " in a copy (another address)")
            del array, tensor
            gc.collect()
            return note
    except Exception as e:
        return f"without jax_enable_x64 an i64 tensor is refused ({first_line(e)})"
    finally:
        consumer.jax.config.update("jax_enable_x64", True)


def check_stream(consumer, topic):
    """Rounds of: the publisher's version arrives before its GPU work is done; the consumer's import must
    order its stream after that work. Returns (passed, details)."""
    ordered = stale = pending_count = 0
    passed_streams, waits = set(), []
    last = 0
    for _ in range(STREAM_ROUNDS):
        version, pending = (int(x) for x in sys.stdin.readline().split())
        pending_count += pending
        last = topic.wait(after=last, timeout=60)
        with topic.snapshot(last, timeout=30) as s, consumer.stream():
            woke = time.perf_counter()
            control = consumer.take(Spy(s["w"], [], unordered=True), s)
            stale += not consumer.all_equal(control, float(last))
            del control
            calls = []
            array = consumer.take(Spy(s["w"], calls), s)
            new = consumer.all_equal(array, float(last))
            waits.append((time.perf_counter() - woke) * 1e3)
            ordered += new
            for args, kwargs in calls:
                passed_streams.add(repr(kwargs.get("stream", args[0] if args else "none")) +
                                   (" (positional)" if args else ""))
            del array
            gc.collect()
            s.synchronize(timeout=30)  # nothing of ours may read the version after the release
        say(f"@ round {last}")
    # A round tells only if the control saw stale bytes (the first may not: the consumer's first kernels compile
    # while the sleep runs out). Every ordered import must see the version; at least one round must tell.
    passed = ordered == STREAM_ROUNDS and stale >= 1
    details = (f"{ordered}/{STREAM_ROUNDS} ordered imports saw the new version; control imports without "
               f"ordering saw stale bytes {stale}/{STREAM_ROUNDS}; the publisher's work was pending at publish "
               f"{pending_count}/{STREAM_ROUNDS}; the consumer passed stream={', '.join(sorted(passed_streams))}; "
               f"from the snapshot to the checked values {min(waits):.0f}-{max(waits):.0f} ms (sleep "
               f"{SLEEP_S * 1e3:.0f} ms)")
    if stale == 0:
        details += " (INCONCLUSIVE: every control saw the new bytes, the sleep was too short to tell)"
    return passed, details


def check_leases(consumer, client, topic):
    """The consumer's array holds the lease until it is deleted. Returns (passed, details)."""
    def mine():
        return [lease for lease in client.leases() if lease.topic == "leases" and lease.pid == os.getpid()]

    s = topic.snapshot(timeout=30)
    version = s.version
    tensor = s["w"]
    array = consumer.take(tensor, s)
    copied = consumer.pointer(array) != tensor.data_ptr
    del tensor
    s.release()
    del s
    gc.collect()
    held = mine()
    say(f"@ holding {len(held)}")
    blocked = sys.stdin.readline().strip() == "blocked"
    del array
    gc.collect()
    start, released = time.perf_counter(), False
    while time.perf_counter() - start < 10:
        if not mine():
            released = True
            break
        time.sleep(0.001)
    released_ms = (time.perf_counter() - start) * 1e3
    say(f"@ released {int(released)}")
    published = sys.stdin.readline().strip() == "published"
    if copied and consumer.may_copy:  # a copy holds nothing: the lease goes with the import
        passed = published
        details = f"the import copied: no lease held while the array lived ({len(held)} listed)"
    else:
        passed = len(held) == 1 and held[0].version == version and blocked and released and published
        details = (f"while the array lived (snapshot released): {len(held)} lease(s) of version {version} listed, "
                   f"the R = 1 publisher's update {'timed out' if blocked else 'WENT THROUGH'}; after del + gc "
                   + (f"the lease went in {released_ms:.1f} ms" if released else "the lease STAYED for 10 s")
                   + f" and the update {'went through' if published else 'STILL TIMED OUT'}")
    return passed, details


def consume(name, socket, folder, device):
    sys.path[:0] = [str(PYTHON)]
    import weightbus

    try:
        consumer = CONSUMERS[name]()
    except Exception as e:  # not installed, or no GPU for it: the parent reports a SKIP
        say(f"@ ready {name}: {first_line(e)}")
        say("@ done")
        return
    say("@ ready")
    failed = 0

    def report(check, passed, details):
        nonlocal failed
        failed += not passed
        say(f"RESULT dlpack-{name}-{check} {'PASS' if passed else 'FAIL'} {details}")

    with weightbus.connect(socket, client_name=f"dlpack-{name}", timeout=30) as client:
        topic = client.open_topic("dtypes")
        passed, details = check_dtypes(consumer, topic, Path(folder))
        if name == "jax":
            details += f"; JAX's from_dlpack API: {consumer.api}; {jax_without_x64(consumer, topic)}"
        report("dtypes", passed, details)
        topic.close()
        say("@ dtypes-done")
        if device != "cpu":
            ordered = client.open_topic("ordered")
            report("stream", *check_stream(consumer, ordered))
            ordered.close()
        else:
            say(f"RESULT dlpack-{name}-stream N/A host tensors have no stream")
        leases = client.open_topic("leases")
        report("leases", *check_leases(consumer, client, leases))
        leases.close()
    say("@ done")
    sys.exit(1 if failed else 0)


def main():
    args = sys.argv[1:]
    if args and args[0] == "--role":
        consume(*args[1:5])
        return
    build = Path(args[0] if args and not args[0].startswith("--") else "build-gpu").resolve()
    device = args[args.index("--device") + 1] if "--device" in args else "cuda"
    device = "cuda:0" if device == "cuda" else device
    default = "cupy,jax" if device != "cpu" else "numpy"
    consumers = (args[args.index("--consumers") + 1] if "--consumers" in args else default).split(",")
    sys.path[:0] = [str(PYTHON), str(PYTHON / "tests")]
    from broker import use_build

    use_build(build)
    if device != "cpu":
        try:
            import torch
        except ImportError:
            print("SKIP: no torch (the publisher's side)")
            return
        if not torch.cuda.is_available():
            print("SKIP: no CUDA device")
            return
    from broker import Broker

    ok, skipped = True, []
    for consumer in consumers:
        reason, passed = run_consumer(consumer, device, Broker)
        if reason:
            skipped.append(reason)
            print(f"RESULT dlpack-{consumer} SKIPPED {reason}", flush=True)
        ok &= passed
    if skipped:  # run.sh's status: SKIP unless something that ran failed
        print(f"SKIP: not every consumer could run: {'; '.join(skipped)}", flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
