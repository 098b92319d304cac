"""A snapshot's bytes are read-only: what each consumer present here (NumPy, PyTorch on the CPU) makes of a
snapshot's host tensor, reading it, and writing it. The README's table says the same for every consumer."""
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture
def snapshot(client):
    topic = client.create_topic("model")
    topic.alloc({"w": ((4,), "f32")})
    topic.publish({"w": np.arange(4, dtype=np.float32)})
    with client.open_topic("model").snapshot() as s:
        yield s


def test_numpy_asarray_reads_and_refuses_writes(snapshot):
    array = np.asarray(snapshot["w"])
    assert list(array) == [0, 1, 2, 3] and not array.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        array[0] = 7
    with pytest.raises(ValueError, match="WRITEABLE"):
        array.flags.writeable = True  # NumPy knows the memory is not its own to unlock
    assert list(np.asarray(snapshot["w"])) == [0, 1, 2, 3]


def test_numpy_from_dlpack_reads_and_refuses_writes(snapshot):
    array = np.from_dlpack(snapshot["w"])
    assert list(array) == [0, 1, 2, 3] and array.ctypes.data == snapshot["w"].data_ptr
    assert not array.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        array += 1
    del array


def test_torch_reads_without_a_copy(snapshot):
    torch = pytest.importorskip("torch")
    tensor = torch.from_dlpack(snapshot["w"])
    assert tensor.tolist() == [0, 1, 2, 3] and tensor.data_ptr() == snapshot["w"].data_ptr
    del tensor


WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    import torch
    import weightbus

    with weightbus.connect(sys.argv[1]) as client:
        topic = client.create_topic("model")
        topic.alloc({"w": ((4,), "f32")})
        topic.publish({"w": np.arange(4, dtype=np.float32)})
        with client.open_topic("model").snapshot() as s:
            tensor = torch.from_dlpack(s["w"])  # torch has no read-only tensors: it takes the capsule as writable
            print("writing", flush=True)
            tensor.mul_(2)
            print("written", flush=True)
""")


def test_a_torch_write_to_a_host_snapshot_kills_the_process_as_the_readme_says(broker):
    pytest.importorskip("torch")
    writer = subprocess.run([sys.executable, "-c", WRITER, broker.socket], capture_output=True, text=True,
                            timeout=120, env=dict(os.environ))
    assert writer.stdout.split() == ["writing"], writer.stdout + writer.stderr
    assert writer.returncode == -signal.SIGSEGV, (writer.returncode, writer.stderr)
    rows = [line for line in README.read_text().splitlines() if line.startswith("| `torch.from_dlpack(t)`")]
    assert rows and all("SIGSEGV" in row for row in rows), rows
