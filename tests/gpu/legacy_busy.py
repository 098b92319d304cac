#!/usr/bin/env python3
"""The library's own first uploads are done before any stream uses them, however busy the legacy default stream
(PyTorch's default stream) is. cuMemsetD8 and cuMemcpyHtoD from pageable memory queue their work on the legacy
stream and may return before it is done, and kernels on a non-blocking stream do not wait for that stream; the
library makes such work on a stream of its own and waits for it (libclient/cuda/driver.hpp, run_and_wait).
Each scenario first queues about half a second of matmuls on the legacy stream, then at once:

  alloc  Topic.alloc on the GPU (zero-filled VMM memory) and a version written into it on a non-blocking
         stream: every element must be the version's, not the zeros of a fill that came after it;
  plan   a slice plan's first run (its descriptors uploaded) on a non-blocking stream: every element of every
         destination must be its source's.

    python3 tests/gpu/legacy_busy.py [BUILD_DIR]

Prints "RESULT legacy-busy-<scenario> PASS|FAIL ..." and exits 1 on a FAIL, or prints "SKIP: ..." without torch
or a GPU.
"""
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / "bindings" / "python"
TENSORS = 64
ELEMENTS = 1 << 18


def busy(a):
    """Queues about half a second of matmuls on the legacy stream and returns at once."""
    for _ in range(300):
        a @ a


def main():
    build = Path(sys.argv[1] if len(sys.argv) > 1 else "build-gpu").resolve()
    sys.path[:0] = [str(PYTHON), str(PYTHON / "tests")]
    from broker import Broker, cuda_torch, use_build

    use_build(build)
    torch = cuda_torch()
    if torch is None:
        return 0
    import weightbus

    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    stream = torch.cuda.Stream()  # non-blocking
    names = [f"w{i}" for i in range(TENSORS)]
    ok = True
    with tempfile.TemporaryDirectory(prefix="wbbusy-") as tmp:
        broker = Broker(Path(tmp))
        try:
            with weightbus.connect(broker.socket, client_name="legacy-busy", timeout=20) as client:
                topic = client.create_topic("model", replicas=1)
                busy(a)
                started = time.monotonic()
                topic.alloc({name: ((ELEMENTS,), torch.bfloat16) for name in names}, device="cuda:0")
                with torch.cuda.stream(stream):
                    with topic.update() as update:
                        for i, name in enumerate(names):
                            torch.from_dlpack(update.tensor(name)).fill_(i + 1)
                        update.stream = stream
                queued_ms = (time.monotonic() - started) * 1e3
                torch.cuda.synchronize()
                with topic.snapshot(timeout=10) as snapshot:
                    wrong = sum(not bool((torch.from_dlpack(snapshot.tensor(name)) == i + 1).all())
                                for i, name in enumerate(names))
                passed = wrong == 0
                ok &= passed
                print(f"RESULT legacy-busy-alloc {'PASS' if passed else 'FAIL'} tensors={TENSORS} wrong={wrong} "
                      f"host_ms={queued_ms:.1f}", flush=True)

                buffers = [torch.empty(ELEMENTS, dtype=torch.bfloat16, device="cuda") for _ in names]
                torch.cuda.synchronize()
                dests = [{"dst": b, "parts": [{"name": name, "extent": [ELEMENTS]}]} for b, name in zip(buffers, names)]
                with topic.snapshot(timeout=10) as snapshot:
                    busy(a)
                    plan = weightbus.SlicePlan(topic, dests)
                    plan.run(snapshot, stream)
                    stream.synchronize()
                    wrong = sum(not bool((b == i + 1).all()) for i, b in enumerate(buffers))
                plan.close()
                passed = wrong == 0
                ok &= passed
                print(f"RESULT legacy-busy-plan {'PASS' if passed else 'FAIL'} dests={TENSORS} wrong={wrong}",
                      flush=True)
        finally:
            broker.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
