"""A private weightbusd per test (in a temp dir), and the paths of the build under test.

Run with Debian's python3 (python3-pytest, python3-numpy) from the repository root, after a CMake build:
    WEIGHTBUSD=build/broker/weightbusd WEIGHTBUS_LIBRARY=build/libclient/libweightbus.so.0 \
        /usr/bin/python3 -m pytest bindings/python/tests
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PACKAGE_DIR))
# Child processes of the tests import the same package.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_DIR), os.environ.get("PYTHONPATH")]))

WEIGHTBUSD = os.environ.get("WEIGHTBUSD", str(ROOT / "build" / "broker" / "weightbusd"))
os.environ.setdefault("WEIGHTBUS_LIBRARY", str(ROOT / "build" / "libclient" / "libweightbus.so.0"))


class Broker:
    """A weightbusd started with --foreground on a socket of its own."""

    def __init__(self, directory: Path, *args: str) -> None:
        self.socket = str(directory / "broker.sock")
        self.name = f"pytest-{uuid.uuid4().hex[:12]}"
        self.log = directory / "broker.log"
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [WEIGHTBUSD, "--foreground", "--socket", self.socket, "--name", self.name, "--log-level", "warn",
                 *args], stderr=log)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.socket):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"weightbusd did not start: {self.log.read_text()}")
            time.sleep(0.01)

    def connect(self, name: str = "pytest"):
        import weightbus

        deadline = time.monotonic() + 10
        while True:
            try:
                return weightbus.connect(self.socket, client_name=name)
            except weightbus.ConnectError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path)
    yield b
    b.stop()


@pytest.fixture
def client(broker: Broker):
    with broker.connect() as c:
        yield c
