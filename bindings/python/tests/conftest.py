"""A private weightbusd per test (in a temp dir), and the paths of the build under test.

Run with Debian's python3 (python3-pytest, python3-numpy) from the repository root, after a CMake build:
    WEIGHTBUSD=build/broker/weightbusd WEIGHTBUS_LIBRARY=build/libclient/libweightbus.so.0 \
        /usr/bin/python3 -m pytest bindings/python/tests
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PACKAGE_DIR))
# Child processes of the tests import the same package.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_DIR), os.environ.get("PYTHONPATH")]))

# Absolute, as the examples run in another directory.
for variable, default in (("WEIGHTBUSD", "build/broker/weightbusd"),
                          ("WEIGHTBUS_LIBRARY", "build/libclient/libweightbus.so.0")):
    os.environ[variable] = os.path.abspath(os.environ.get(variable, ROOT / default))

from broker import Broker  # noqa: E402  (after the environment it reads)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path)
    yield b
    b.stop()


@pytest.fixture
def client(broker: Broker):
    with broker.connect() as c:
        yield c


@pytest.fixture
def published(broker: Broker):
    """Topic "model" with version 1 published: (the publisher's topic, a reader's topic), two clients."""
    with broker.connect("publisher") as publisher, broker.connect("reader") as reader:
        topic = publisher.create_topic("model")
        topic.alloc({"w": ((4,), "f32")})
        with topic.update():
            pass
        yield topic, reader.open_topic("model")
