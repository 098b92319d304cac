"""What a stream held in cuStreamWaitValue64 does to the rest of its process, the question that keeps GPU arms
opt-in (weightbus.h, "GPU arms"): a stream waits on a word of registered host memory, as a GPU arm's stream waits
for its version, while the process enqueues work on 1 and then 16 other streams and on the legacy default stream.
Also how soon the held stream goes on once the host writes the word, after it waited 0.2 ms to 0.5 s.

    python3 tests/gpu/stream_hold.py [BUILD_DIR]

RESULT lines: how many of the other streams finished while one was held, whether the host blocked enqueueing,
and the latency. Exit 0 when every other stream finished while one was held (GPU arms hold up nothing else here),
3 (a MISS in run.sh) when some waited behind it, SKIP without torch or a GPU. A watchdog ends a host that blocks.
"""
import ctypes
import faulthandler
import mmap
import statistics
import sys
import time


def main():
    try:
        import torch
    except ImportError:
        print("SKIP: no torch for this python3")
        return 0
    if not torch.cuda.is_available():
        print("SKIP: no CUDA device")
        return 0
    faulthandler.dump_traceback_later(60, exit=True)  # a host that blocks shows where, and ends
    cu = ctypes.CDLL("libcuda.so.1")
    u64, vp, ui = ctypes.c_uint64, ctypes.c_void_p, ctypes.c_uint
    cu.cuMemHostRegister_v2.argtypes = [vp, ctypes.c_size_t, ui]
    cu.cuMemHostGetDevicePointer_v2.argtypes = [ctypes.POINTER(u64), vp, ui]
    cu.cuStreamWaitValue64_v2.argtypes = [vp, u64, u64, ui]
    cu.cuStreamCreate.argtypes = [ctypes.POINTER(vp), ui]
    cu.cuStreamQuery.argtypes = [vp]
    x = torch.zeros(1 << 20, device="cuda")
    # Every kernel launched below, launched once first: under CUDA's lazy module loading a first launch may wait
    # for the whole device, held stream included (what arm_hold.py measures), which would stop this thread
    # before it writes the word.
    x.add_(1)
    y = x * 2
    del y
    torch.cuda.synchronize()
    page = mmap.mmap(-1, 4096)
    word = (ctypes.c_uint64 * 1).from_buffer(page)
    addr = ctypes.addressof(word)
    assert cu.cuMemHostRegister_v2(addr, 4096, 3) == 0  # portable, device-mapped
    device_word = u64()
    assert cu.cuMemHostGetDevicePointer_v2(ctypes.byref(device_word), addr, 0) == 0
    held = vp()
    assert cu.cuStreamCreate(ctypes.byref(held), 1) == 0  # non-blocking, as a GPU arm's

    def hold(value):
        assert cu.cuStreamWaitValue64_v2(held, device_word.value, value, 0) == 0

    # Other work while the stream is held, on streams made before.
    streams = [torch.cuda.Stream() for _ in range(17)]
    hold(1)
    started = time.monotonic()
    events = []
    for s in streams:
        with torch.cuda.stream(s):
            x.add_(1)
            e = torch.cuda.Event()
            e.record(s)
            events.append(e)
    enqueue_s = time.monotonic() - started
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and not all(e.query() for e in events):
        time.sleep(0.01)
    done_first = int(events[0].query())
    done_more = sum(e.query() for e in events[1:])
    legacy = torch.cuda.Event()
    y = x * 2
    legacy.record()
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline and not legacy.query():
        time.sleep(0.01)
    legacy_done = legacy.query()
    word[0] = 1
    torch.cuda.synchronize()
    del y
    print(f"RESULT stream-hold other_streams={done_first}/1+{done_more}/16 legacy_stream={int(legacy_done)} "
          f"enqueue_ms={enqueue_s * 1e3:.2f}", flush=True)

    # How soon the held stream goes on once the word is written.
    value = 1
    parts = []
    for blocked_s in (0.0002, 0.01, 0.5):
        latencies = []
        for _ in range(5 if blocked_s < 0.5 else 3):
            value += 1
            hold(value)
            time.sleep(blocked_s)
            t0 = time.perf_counter_ns()
            word[0] = value
            while cu.cuStreamQuery(held) != 0:
                pass
            latencies.append((time.perf_counter_ns() - t0) / 1e3)
        parts.append(f"after_{blocked_s * 1e3:g}ms_us={statistics.median(latencies):.1f}")
    print("RESULT stream-hold-latency " + " ".join(parts), flush=True)
    return 0 if done_first == 1 and done_more == 16 and legacy_done else 3


if __name__ == "__main__":
    sys.exit(main())
