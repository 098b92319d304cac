"""Every WB_E_* code becomes its exception class, carrying the library's message; real failures of the API
raise the class their code maps to."""
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

import weightbus
from weightbus.errors import error_for

EXPECTED = {
    -1: (weightbus.InvalidArgumentError, ValueError), -2: (weightbus.OutOfMemoryError, MemoryError),
    -3: (weightbus.NotFoundError, LookupError), -4: (weightbus.AlreadyExistsError, weightbus.WeightbusError),
    -5: (weightbus.InvalidArgumentError, ValueError), -6: (weightbus.InvalidArgumentError, ValueError),
    -7: (weightbus.InvalidArgumentError, ValueError), -8: (weightbus.InvalidArgumentError, ValueError),
    -9: (weightbus.CapacityError, weightbus.WeightbusError), -10: (weightbus.PermissionDeniedError, PermissionError),
    -11: (weightbus.BusyError, weightbus.WeightbusError), -12: (weightbus.WaitTimeoutError, TimeoutError),
    -13: (weightbus.BrokerGoneError, ConnectionError), -14: (weightbus.AbiMismatchError, weightbus.WeightbusError),
    -15: (weightbus.DirtyError, weightbus.WeightbusError), -16: (weightbus.ExpiredError, LookupError),
    -17: (weightbus.StateError, weightbus.WeightbusError), -18: (weightbus.PermissionDeniedError, PermissionError),
    -19: (weightbus.ProtocolError, weightbus.WeightbusError), -20: (weightbus.SystemCallError, OSError),
    -21: (weightbus.NoCudaError, weightbus.WeightbusError), -22: (weightbus.StaleError, weightbus.WeightbusError),
    -23: (weightbus.ConnectError, ConnectionError), -24: (weightbus.CudaError, weightbus.WeightbusError),
    -25: (weightbus.LayoutError, weightbus.WeightbusError),
}


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_every_code_maps_to_its_class(code):
    error = error_for(code, "what went wrong")
    cls, builtin = EXPECTED[code]
    assert type(error) is cls and isinstance(error, builtin) and isinstance(error, weightbus.WeightbusError)
    assert error.code == code
    c_name = weightbus._library.wb_strerror(code).decode().split(":")[0]
    assert error.code_name == c_name
    assert str(error) == f"{c_name}: what went wrong"


def test_every_code_of_the_library_is_mapped():
    for code in range(-1, -100, -1):
        if not weightbus._library.wb_strerror(code).decode().startswith("WB_E_UNKNOWN"):
            assert code in EXPECTED, f"code {code} of the C library has no Python class"


def test_api_failures_raise_their_class_with_the_library_message(broker, client):
    with pytest.raises(weightbus.NotFoundError, match="WB_E_NOT_FOUND: .*missing"):
        client.open_topic("missing")
    with pytest.raises(weightbus.InvalidArgumentError, match="WB_E_NAME_TOO_LONG"):
        client.create_topic("x" * 256)
    with pytest.raises(weightbus.InvalidArgumentError, match="WB_E_INVAL"):
        client.create_topic("bad-replicas", replicas=5)
    topic = client.create_topic("model", replicas=1)
    topic.alloc({"w": ((4,), "f32")})
    with pytest.raises(weightbus.AlreadyExistsError, match="WB_E_EXISTS"):
        topic.alloc({"w": ((5,), "f32")})
    with pytest.raises(weightbus.InvalidArgumentError, match="WB_E_SHAPE"):
        topic.alloc({"deep": ((1,) * 9, "f32")})
    with pytest.raises(weightbus.NotFoundError, match="no published version"):
        topic.snapshot()
    with broker.connect("second") as other:
        with pytest.raises(weightbus.BusyError, match="WB_E_BUSY"):
            other.create_topic("model", replicas=1)
        reader = other.open_topic("model")
        with pytest.raises(weightbus.PermissionDeniedError, match="WB_E_ROLE"):
            reader.update()
        topic.publish({"w": np.ones(4, np.float32)})
        held = reader.snapshot()
        with pytest.raises(weightbus.WaitTimeoutError, match="WB_E_TIMEOUT"):
            topic.update(timeout=0.05)  # R = 1: the reader's lease blocks the update
        with pytest.raises(weightbus.StateError, match="still held"):
            reader.close()
        held.release()
        with pytest.raises(weightbus.NotFoundError, match="not published"):
            reader.snapshot(version=9)
    with pytest.raises(ValueError, match="timeout"):
        topic.wait(timeout=-1)


def test_expired_and_dirty_versions(client):
    topic = client.create_topic("model", replicas=1)
    topic.alloc({"w": ((4,), "f32")})
    for _ in range(20):  # more versions than the ring keeps (16)
        topic.publish({"w": np.ones(4, np.float32)})
    with pytest.raises(weightbus.ExpiredError, match="no longer kept"):
        topic.snapshot(version=1)
    u = topic.update()
    u.tensor("w")
    u.abort()  # R = 1: written in place and not published
    with pytest.raises(weightbus.DirtyError, match="half-written"):
        topic.snapshot()


def test_lease_capacity(tmp_path):
    from broker import Broker

    b = Broker(tmp_path, "--leases-per-client", "1")
    try:
        with b.connect() as c:
            topic = c.create_topic("model")
            topic.publish({})
            with topic.snapshot():
                with pytest.raises(weightbus.CapacityError, match="WB_E_NOSPC"):
                    topic.snapshot()
    finally:
        b.stop()


def test_wait_raises_broker_gone_when_the_broker_dies_for_good(broker):
    client = broker.connect(timeout=0.3)  # also how long a wait waits for a successor
    topic = client.create_topic("model")
    threading.Timer(0.1, lambda: os.kill(broker.process.pid, signal.SIGKILL)).start()
    with pytest.raises(weightbus.BrokerGoneError):
        topic.wait(after=0, timeout=10.0)


def test_wait_goes_on_when_the_broker_restarts(broker, published):
    topic, watched = published

    def restart_and_publish():
        broker.kill_and_restart()
        with topic.update():
            pass

    threading.Timer(0.1, restart_and_publish).start()
    assert watched.wait(after=1, timeout=10.0) == 2


def test_closed_objects_refuse_calls(broker):
    client = broker.connect()
    topic = client.create_topic("model")
    client.close()
    client.close()  # closing twice is harmless
    with pytest.raises(weightbus.StateError, match="client is closed"):
        topic.latest
    with pytest.raises(weightbus.StateError):
        client.open_topic("model")


def test_missing_library_is_reported_clearly():
    env = dict(os.environ, WEIGHTBUS_LIBRARY="/nonexistent/libweightbus.so.0")
    result = subprocess.run([sys.executable, "-c", "import weightbus"], env=env, capture_output=True, text=True,
                            cwd=os.path.dirname(os.path.dirname(weightbus.__file__)))
    assert result.returncode != 0
    assert "LibraryNotFoundError" in result.stderr and "/nonexistent/libweightbus.so.0" in result.stderr
    assert "WEIGHTBUS_LIBRARY" in result.stderr


def test_names_with_a_nul_are_refused_before_reaching_the_library(broker, client):
    """ctypes would pass "a\\0b" as "a": every name and path is refused as WB_E_INVAL instead."""
    nul = "w\0x"
    with pytest.raises(weightbus.InvalidArgumentError, match="WB_E_INVAL: name 'w\\\\x00x' holds a NUL"):
        client.create_topic(nul)
    with pytest.raises(weightbus.InvalidArgumentError, match="holds a NUL"):
        client.open_topic(nul)
    with pytest.raises(weightbus.InvalidArgumentError, match="socket_path .* holds a NUL"):
        weightbus.connect(broker.socket + "\0x")
    topic = client.create_topic("model", replicas=1)
    with pytest.raises(weightbus.InvalidArgumentError, match="holds a NUL"):
        topic.alloc({nul: ((4,), "f32")})
    topic.alloc({"w": ((4,), "f32")})
    with pytest.raises(weightbus.InvalidArgumentError, match="holds a NUL"):
        topic.view("v\0", "w", "f32", (2,))
    with pytest.raises(weightbus.InvalidArgumentError, match="holds a NUL"):
        topic.view("v", nul, "f32", (2,))
    with topic.update() as u:
        with pytest.raises(weightbus.InvalidArgumentError, match="holds a NUL"):
            u.tensor(nul)
    with topic.snapshot() as s:
        with pytest.raises(weightbus.InvalidArgumentError, match="holds a NUL"):
            s.tensor(nul)
        with pytest.raises(weightbus.InvalidArgumentError, match="holds a NUL"):
            s.copy_into({nul: np.zeros(4, np.float32)})
    assert [t.name for t in client.topics()] == ["model"]


def test_remove_topic_removes_an_unused_topic_and_refuses_a_used_one(broker, client):
    with pytest.raises(weightbus.NotFoundError, match="WB_E_NOT_FOUND: .*'absent'"):
        client.remove_topic("absent")
    with pytest.raises(weightbus.InvalidArgumentError, match="WB_E_NAME_TOO_LONG"):
        client.remove_topic("")
    with pytest.raises(weightbus.InvalidArgumentError, match="holds a NUL"):
        client.remove_topic("model\0")
    topic = client.create_topic("model", replicas=2)
    topic.alloc({"w": ((4,), "f32")})
    topic.publish({"w": np.ones(4, np.float32)})
    with pytest.raises(weightbus.BusyError, match="has a publisher"):
        client.remove_topic("model")
    topic.close()
    with broker.connect("reader") as other:
        reader = other.open_topic("model")
        held = reader.snapshot()
        with pytest.raises(weightbus.BusyError, match="lease"):
            client.remove_topic("model")
        held.release()
        client.remove_topic("model")
        with pytest.raises(weightbus.NotFoundError, match="was removed"):
            reader.latest()
        reader.close()
    assert client.topics() == []
    client.create_topic("model", replicas=1).close()  # the name is free again
    assert [t.name for t in client.topics()] == ["model"]
