"""Publish host tensors and read them back: context managers, metadata, zero-copy NumPy arrays."""
import numpy as np
import pytest

import weightbus


def make_topic(client, replicas=2):
    topic = client.create_topic("model", replicas=replicas)
    topic.alloc({"w": ((4, 8), "f32"), "b": ((8,), "i64"), "h": ((3,), np.float16)})
    return topic


def test_update_publishes_on_exit_and_snapshot_reads_the_version(client):
    topic = make_topic(client)
    with topic.update() as u:
        np.asarray(u["w"])[:] = np.arange(32, dtype=np.float32).reshape(4, 8)
        np.asarray(u.tensor("b"))[:] = 7
        u.metadata = b"step 1"
    assert u.published_version == 1 == topic.latest
    reader = client.open_topic("model")
    with reader.snapshot() as s:
        assert s.version == 1 and s.metadata == b"step 1" and s.timestamp_ns > 0
        w = np.asarray(s["w"])
        assert w.shape == (4, 8) and w.dtype == np.float32 and w[3, 7] == 31
        assert not w.flags.writeable
        assert s["b"].version == 1 and s["h"].version == 0  # h was never written
        assert s.names() == ["w", "b", "h"] and "w" in s and list(s) == s.names()


def test_arrays_are_zero_copy(client):
    topic = make_topic(client)
    topic.publish({"w": np.ones((4, 8), np.float32)})
    with client.open_topic("model").snapshot() as s:
        t = s["w"]
        assert np.asarray(t).__array_interface__["data"][0] == t.data_ptr
        assert np.from_dlpack(t).__array_interface__["data"][0] == t.data_ptr
        assert t.shape == (4, 8) and t.strides == (8, 1) and t.nbytes == 128 and t.device == "cpu"


def test_exception_in_update_aborts_it(client):
    topic = make_topic(client)
    with pytest.raises(RuntimeError):
        with topic.update() as u:
            np.asarray(u["w"])[:] = 1
            raise RuntimeError("training step failed")
    assert topic.latest == 0
    with pytest.raises(weightbus.StateError):
        u.tensor("w")  # the update is gone


def test_views_share_their_parent_bytes(client):
    topic = make_topic(client)
    topic.view("row2", "w", "f32", (8,), offset=2 * 8 * 4)
    topic.view("col0", "w", "f32", (4,), strides=(8,))
    topic.publish({"w": np.arange(32, dtype=np.float32).reshape(4, 8)})
    with client.open_topic("model").snapshot() as s:
        assert list(np.asarray(s["row2"])) == list(range(16, 24))
        assert list(np.asarray(s["col0"])) == [0, 8, 16, 24]
        assert s["row2"].data_ptr == s["w"].data_ptr + 64 and s["row2"].is_view


def test_layout_and_listings(client):
    topic = make_topic(client, replicas=3)
    layout = topic.layout()
    assert [(t.name, t.dtype, t.shape) for t in layout] == [("w", "f32", (4, 8)), ("b", "i64", (8,)),
                                                            ("h", "f16", (3,))]
    info = topic.info()
    assert info.name == "model" and info.replicas == 3 and info.tensor_count == 3 and info.latest == 0
    assert [t.name for t in client.topics()] == ["model"]
    assert client.id in [c.id for c in client.clients()]
    assert client.leases() == []
    topic.publish({})
    topic.publish({})
    with client.open_topic("model").snapshot(version=1):
        [lease] = client.leases()
        assert (lease.client_id, lease.topic, lease.version, lease.latest) == (client.id, "model", 1, 2)
        assert lease.held_ns >= 0


def test_wait_returns_the_latest_and_times_out(client):
    topic = make_topic(client)
    with pytest.raises(weightbus.WaitTimeoutError) as e:
        topic.wait(after=0, timeout=0.05)
    assert isinstance(e.value, TimeoutError) and "no version after 0" in str(e.value)
    topic.publish({})
    topic.publish({})
    assert topic.wait(after=0, timeout=1.0) == 2
    assert topic.wait(after=1) == 2


def test_metadata_is_limited(client):
    topic = make_topic(client)
    with topic.update() as u:
        with pytest.raises(weightbus.InvalidArgumentError) as e:
            u.publish(metadata=b"x" * (weightbus.METADATA_MAX + 1))
        assert e.value.code_name == "WB_E_SIZE"
        u.metadata = b"x" * weightbus.METADATA_MAX
    assert u.published_version == 1
    with client.open_topic("model").snapshot() as s:
        assert len(s.metadata) == weightbus.METADATA_MAX


def test_bad_device_names_are_refused(client):
    topic = make_topic(client)
    with pytest.raises(ValueError, match="unknown device"):
        topic.alloc({"g": ((4,), "f32")}, device="tpu")
    with pytest.raises(ValueError, match="unknown dtype"):
        topic.alloc({"g": ((4,), "complex64")})


def test_copy_into_numpy_buffers_and_a_reused_plan(client):
    topic = make_topic(client)
    w, b = np.zeros((4, 8), np.float32), np.zeros(8, np.int64)
    plan = weightbus.CopyPlan({"w": w, "b": b})
    for step in (1, 2):
        topic.publish({"w": np.full((4, 8), step, np.float32), "b": np.full(8, step, np.int64)})
        with client.open_topic("model").snapshot() as s:
            s.copy_into(plan)
        assert (w == step).all() and (b == step).all()
    with client.open_topic("model").snapshot() as s:
        with pytest.raises(weightbus.InvalidArgumentError, match="WB_E_SIZE"):
            s.copy_into({"w": np.zeros(3, np.float32)})
        with pytest.raises(ValueError, match="writable"):
            s.copy_into({"w": np.asarray(s["w"])})
        with pytest.raises(weightbus.NotFoundError):
            s.copy_into({"missing": np.zeros(4, np.float32)})


def test_alloc_refuses_arrays_whose_values_it_would_ignore(client):
    topic = client.create_topic("model")
    with pytest.raises(weightbus.InvalidArgumentError) as e:
        topic.alloc({"w": ((4,), "f32"), "b": np.full(4, 7, np.float32)})
    assert e.value.code_name == "WB_E_INVAL"
    assert str(e.value).startswith("WB_E_INVAL: tensor 'b': alloc takes a shape and a dtype, not the values of a "
                                   "ndarray")
    assert "topic.publish({'b': array})" in str(e.value)
    assert topic.layout() == []  # all or nothing: "w" was not made either
    other = client.create_topic("other")
    other.alloc({"b": ((4,), np.float32)})
    topic.alloc({t.name: t for t in other.layout()})  # descriptions without values are taken
    assert [(t.name, t.dtype, t.shape) for t in topic.layout()] == [("b", "f32", (4,))]
    topic.publish({"b": np.full(4, 7, np.float32)})  # what the message tells the user to do
    with client.open_topic("model").snapshot() as s:
        assert list(np.asarray(s["b"])) == [7, 7, 7, 7]


def test_update_names_its_version_from_the_start_and_published_version_once_published(client):
    topic = make_topic(client)
    u = topic.update()
    assert u.version == 1 and u.published_version is None
    assert u.publish() == 1 == u.published_version == u.version
    with topic.update() as u:
        assert u.version == 2 and u.published_version is None
    assert u.published_version == 2
    with pytest.raises(RuntimeError):
        with topic.update() as u:
            raise RuntimeError("training step failed")
    assert u.version == 3 and u.published_version is None and topic.latest == 2  # aborted


def test_publish_copies_the_arrays_named_and_keeps_the_other_tensors(client):
    topic = make_topic(client)
    assert topic.publish({"w": np.full((4, 8), 1, np.float32), "b": np.arange(8)}, metadata=b"one") == 1
    assert topic.publish({"w": np.float32(2)}) == 2  # a shape that broadcasts to the tensor's
    with client.open_topic("model").snapshot() as s:
        assert (np.asarray(s["w"]) == 2).all() and list(np.asarray(s["b"])) == list(range(8))
        assert s["b"].version == 1 and s.metadata == b""
    with pytest.raises(TypeError, match="Cannot cast"):
        topic.publish({"w": np.zeros((4, 8), np.float64)})  # the dtype must be the tensor's
    with pytest.raises(ValueError, match="broadcast"):
        topic.publish({"b": np.zeros(3, np.int64)})
    with pytest.raises(weightbus.NotFoundError):
        topic.publish({"missing": np.zeros(3)})
    assert topic.latest == 2 and not topic.info().dirty  # each failure aborted its update
