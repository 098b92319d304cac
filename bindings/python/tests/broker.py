"""A private weightbusd for tests, and what the GPU programs share: the pytest fixtures (conftest.py), tests/gpu/*.py
and bench/*.py use it."""
from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any


def use_build(build: Path) -> None:
    """Points this process and the processes it starts at BUILD's broker (unless $WEIGHTBUSD names one) and
    library (the CLI too: a build carried to another host has no run path to it), and at this checkout's
    package: what the GPU programs (tests/gpu/*.py, bench/*.py) do first."""
    package = Path(__file__).resolve().parents[1]
    os.environ.setdefault("WEIGHTBUSD", str(build / "broker" / "weightbusd"))
    os.environ["WEIGHTBUS_LIBRARY"] = str(build / "libclient" / "libweightbus.so.0")
    for variable, path in (("PYTHONPATH", package), ("LD_LIBRARY_PATH", build / "libclient")):
        os.environ[variable] = os.pathsep.join(filter(None, [str(path), os.environ.get(variable)]))


def cuda_torch() -> Any:
    """PyTorch, where this python3 has it and it sees a CUDA device; else None, once the "SKIP: ..." line that
    tests/gpu/run.sh and bench/run.sh read is printed: what the GPU programs do next."""
    try:
        import torch
    except ImportError:
        print("SKIP: no torch for this python3")
        return None
    if not torch.cuda.is_available():
        print("SKIP: no CUDA device")
        return None
    return torch


class Broker:
    """A weightbusd started with --foreground on a socket of its own."""

    def __init__(self, directory: Path, *args: str) -> None:
        self.socket = str(directory / "broker.sock")
        self.name = f"pytest-{uuid.uuid4().hex[:12]}"
        self.log = directory / "broker.log"
        self.args = args
        self._start()

    def kill_and_restart(self) -> None:
        """SIGKILL, then a new weightbusd of the same name and socket, which adopts the segment."""
        self.process.kill()
        self.process.wait()
        os.unlink(self.socket)
        self._start()

    def _start(self) -> None:
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                [os.environ["WEIGHTBUSD"], "--foreground", "--socket", self.socket, "--name", self.name,
                 "--log-level", "warn", *self.args], stderr=log)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.socket):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"weightbusd did not start: {self.log.read_text()}")
            time.sleep(0.01)

    def connect(self, name: str = "pytest", timeout: float = 5.0):
        import weightbus

        deadline = time.monotonic() + 10
        while True:
            try:
                return weightbus.connect(self.socket, client_name=name, timeout=timeout)
            except weightbus.ConnectError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 5 s), then removes what the broker left in /dev/shm. A killed broker leaves its
        segment and host allocations behind (for a restarted one to adopt); one that stopped cleanly must not:
        then this raises, naming what it left."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        prefix = f"weightbus-{os.getuid()}-{self.name}"
        leftovers = [p for p in Path("/dev/shm").glob(prefix + "*")
                     if p.name == prefix or p.name.startswith(prefix + ".a")]
        for leftover in leftovers:
            leftover.unlink(missing_ok=True)
        if self.process.returncode == 0 and leftovers:
            raise AssertionError(f"broker {self.name} stopped cleanly but left {[str(p) for p in leftovers]}")
