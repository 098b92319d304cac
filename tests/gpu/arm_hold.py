#!/usr/bin/env python3
"""A GPU arm holds its stream for a bounded time (weightbus.h, "GPU arms"). While a reader's stream waits for a
version not yet published, whatever in the reader's process waits for the whole device waits for that stream
too. With WEIGHTBUS_GPU_ARMS=200 the wait lets the GPU arm go after 200 ms, and the copies are then made by the
wait, as without a GPU arm. So such a wait lasts about 200 ms, not the 2 s until the publish. Scenarios, each
arming a slice plan for the next version of a bf16 model published by another process:

  sync          torch.cuda.synchronize() on the main thread while another thread waits on the arm;
  first-launch  a kernel's first launch in the process, which CUDA's lazy module loading (the default since
                CUDA 12.2) may have to make wait for the device;
  quick         the version published at once: the publisher lets the copies go;
  neighbour     what a held GPU arm costs another process's GPU work (the publisher's, as a trainer's beside a
                server on one GPU): 200 bf16 matmuls and a tiny kernel's round trip, timed with no arm, while
                the reader's stream is held (a hold of 5 s), and with no arm again. Reported, no target.

Every scenario checks every element of the copied version. PASS needs a GPU arm to have been made, each wait
on the device to have lasted less than a second, and the plan's count of arms whose copies the GPU made
(wb_plan_info's gpu_arms_claimed) to say so for quick only: the others' holds ran out first (neighbour's arm
is let go by its publish too).

    python3 tests/gpu/arm_hold.py [BUILD_DIR]

Prints "RESULT arm-hold-<scenario> PASS|FAIL ..." and exits 1 on a FAIL, or prints "SKIP: ..." without torch
or a GPU.
"""
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / "bindings" / "python"
HOLD_MS = 200
PUBLISH_AFTER_S = 2.0
SHAPES = {f"layer{i}": (1024, 1024) for i in range(8)}


def value(version, index):
    return float((version * 7 + index) % 200 - 100)  # integers are exact in bf16


def publisher(socket):
    """Publishes version v of the model, every element of tensor i value(v, i), for each "publish" line read."""
    import torch
    import weightbus
    from weightbus.torch import ModulePublisher

    model = torch.nn.ParameterDict({name: torch.nn.Parameter(torch.zeros(shape)) for name, shape in SHAPES.items()})
    model = model.to(device="cuda", dtype=torch.bfloat16)
    with weightbus.connect(socket, client_name="hold-publisher", timeout=20) as client:
        topic = client.create_topic("policy", replicas=1)
        pub = ModulePublisher(topic, model, mode="copy")
        print("ready", flush=True)
        a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
        small = torch.zeros(16, device="cuda")
        for line in sys.stdin:
            if line.strip() == "work":  # a trainer's GPU work, timed: throughput (matmuls), latency (round trips)
                print(*neighbour_work(torch, a, small), flush=True)
                continue
            if line.strip() != "publish":
                break
            version = topic.latest + 1
            with torch.no_grad():
                for i, p in enumerate(model.values()):
                    p.fill_(value(version, i))
            assert pub.publish(timeout=30) == version
            print(version, flush=True)


def neighbour_work(torch, a, small):
    """(ms for 200 bf16 4096x4096 matmuls, median us of a tiny kernel's launch and synchronize)."""
    torch.cuda.synchronize()
    started = time.monotonic()
    for _ in range(200):
        b = a @ a
    torch.cuda.synchronize()
    compute_ms = (time.monotonic() - started) * 1e3
    del b
    trips = []
    for _ in range(300):
        t0 = time.monotonic()
        small.add_(1)
        torch.cuda.synchronize()
        trips.append((time.monotonic() - t0) * 1e6)
    return f"{compute_ms:.2f}", f"{sorted(trips)[len(trips) // 2]:.1f}"


class Reader:
    """The slice plan of every tensor into bf16 CUDA buffers of this process, on a non-blocking stream."""

    def __init__(self, torch, weightbus, socket, ask):
        self.torch, self.ask = torch, ask
        self.client = weightbus.connect(socket, client_name="hold-reader", timeout=20)
        self.topic = self.client.open_topic("policy")
        self.buffers = [torch.empty(shape, dtype=torch.bfloat16, device="cuda") for shape in SHAPES.values()]
        dests = [{"dst": b, "parts": [{"name": name, "extent": list(shape)}]}
                 for b, (name, shape) in zip(self.buffers, SHAPES.items())]
        self.plan = weightbus.SlicePlan(self.topic, dests)
        self.stream = torch.cuda.Stream()  # non-blocking, as GPU arms need
        self.version = int(ask())
        with self.topic.snapshot(timeout=10) as s:  # a run first: an arm is made for a plan that ran
            self.plan.run(s, self.stream)
            self.stream.synchronize()
        assert not self.wrong(self.version)

    def wrong(self, version):
        """How many buffers do not hold `version`."""
        return sum(not bool((b == value(version, i)).all()) for i, b in enumerate(self.buffers))

    def scenario(self, disturb, publish_after_s):
        """Arms for the next version, waits on another thread, runs disturb() (its seconds), has the version
        published publish_after_s after the arm. (GPU-armed, the GPU made the copies, disturb's seconds, buffers
        wrong)."""
        claimed = self.plan.info.gpu_arms_claimed
        armed = self.plan.arm(self.version, self.stream)
        armed_at = time.monotonic()
        on_stream = armed.on_stream
        got = {}
        waiter = threading.Thread(target=lambda: got.update(snapshot=armed.wait(timeout=30)))
        waiter.start()
        time.sleep(0.02)  # the waiter is in wb_armed_wait
        seconds = disturb()
        time.sleep(max(0.0, armed_at + publish_after_s - time.monotonic()))
        self.version = int(self.ask())
        waiter.join(60)
        with got["snapshot"] as snapshot:
            assert snapshot.version == self.version
            self.stream.synchronize()
            return on_stream, self.plan.info.gpu_arms_claimed > claimed, seconds, self.wrong(self.version)

    def close(self):
        self.plan.close()
        self.client.close()


def timed(call):
    def run():
        started = time.monotonic()
        call()
        return time.monotonic() - started
    return run


def main():
    args = sys.argv[1:]
    if args and args[0] == "--role":
        publisher(args[1])
        return 0
    build = Path(args[0] if args else "build-gpu").resolve()
    sys.path[:0] = [str(PYTHON), str(PYTHON / "tests")]
    from broker import Broker, cuda_torch, use_build

    use_build(build)
    torch = cuda_torch()
    if torch is None:
        return 0
    import weightbus

    os.environ["WEIGHTBUS_GPU_ARMS"] = str(HOLD_MS)
    scenarios = [
        ("sync", timed(torch.cuda.synchronize), PUBLISH_AFTER_S),
        # A kernel of this process's first launch: a dtype nothing here used before.
        ("first-launch", timed(lambda: torch.arange(5, device="cuda", dtype=torch.int16).cumsum(0)), PUBLISH_AFTER_S),
        ("quick", lambda: 0.0, 0.0),
    ]
    ok = True
    with tempfile.TemporaryDirectory(prefix="wbhold-") as tmp:
        broker = Broker(Path(tmp))
        pub = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--role", broker.socket],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            if pub.stdout.readline().strip() != "ready":
                print("RESULT arm-hold FAIL the publisher failed to set up", flush=True)
                return 1

            def ask():
                pub.stdin.write("publish\n")
                pub.stdin.flush()
                return pub.stdout.readline()

            reader = Reader(torch, weightbus, broker.socket, ask)
            for name, disturb, publish_after_s in scenarios:
                on_stream, claimed, seconds, wrong = reader.scenario(disturb, publish_after_s)
                passed = on_stream and claimed == (name == "quick") and seconds < 1.0 and wrong == 0
                ok &= passed
                print(f"RESULT arm-hold-{name} {'PASS' if passed else 'FAIL'} gpu_armed={int(on_stream)} "
                      f"claimed={int(claimed)} waited_ms={seconds * 1e3:.1f} hold_ms={HOLD_MS} "
                      f"publish_after_ms={publish_after_s * 1e3:.0f} version={reader.version} wrong_buffers={wrong}",
                      flush=True)
            # What a held GPU arm costs the GPU work of another process (the trainer's, here the publisher's):
            # the same work timed with no arm, while the reader's stream is held (a hold of 5 s, the version
            # published after the work), and with none again.
            def work():
                pub.stdin.write("work\n")
                pub.stdin.flush()
                return [float(x) for x in pub.stdout.readline().split()]

            work()  # warm-up
            before = work()
            os.environ["WEIGHTBUS_GPU_ARMS"] = "5000"
            held = []
            on_stream, claimed, _, wrong = reader.scenario(lambda: held.extend(work()) or 0.0, 0.0)
            os.environ["WEIGHTBUS_GPU_ARMS"] = str(HOLD_MS)
            after = work()
            passed = on_stream and wrong == 0
            ok &= passed
            print(f"RESULT arm-hold-neighbour {'PASS' if passed else 'FAIL'} gpu_armed={int(on_stream)} "
                  f"claimed={int(claimed)} matmuls_ms={before[0]:.2f}/{held[0]:.2f}/{after[0]:.2f} "
                  f"round_trip_us={before[1]:.1f}/{held[1]:.1f}/{after[1]:.1f} (no arm/held/no arm) "
                  f"wrong_buffers={wrong}", flush=True)
            reader.close()
        finally:
            pub.stdin.close()
            pub.wait(timeout=60)
            broker.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
