"""SlicePlan.arm: a reader leases the version after the one it had before it is published; the publisher writes
and publishes it all the same (R = 1 in place), Armed.wait copies it, and its lease pins it from then on. A
version that is there already is copied at once; a timeout keeps the arm; release, the context manager and
closing the plan withdraw it."""
import threading
import time

import numpy as np
import pytest

import weightbus


def make_plan(client, replicas=1):
    topic = client.create_topic("model", replicas=replicas)
    topic.alloc({"w": ((4, 8), "f32")})
    topic.publish({"w": np.full((4, 8), 1, np.float32)})
    reader = client.open_topic("model")
    dst = np.zeros((4, 8), np.float32)
    plan = weightbus.SlicePlan(reader, [{"dst": dst, "parts": [{"name": "w", "extent": [4, 8]}]}])
    return topic, reader, plan, dst


def begin_blocks(topic):
    with pytest.raises(weightbus.WaitTimeoutError):
        with topic.update(timeout=0.1):
            pass


def test_arm_is_written_in_place_then_pinned_and_copied(client):
    topic, reader, plan, dst = make_plan(client)
    with plan.arm(1) as armed:
        assert armed.version == 2 and "version 2" in repr(armed)
        assert not armed.on_stream  # a host plan: the wait copies
        with pytest.raises(weightbus.WaitTimeoutError, match="armed version 2 not published"):
            armed.wait(timeout=0)
        topic.publish({"w": np.full((4, 8), 2, np.float32)})  # R = 1, in place: the arm keeps no one waiting
        begin_blocks(topic)  # published: the arm pins it
        with armed.wait(timeout=5) as snapshot:
            assert snapshot.version == 2 and (dst == 2).all()
            begin_blocks(topic)  # the snapshot holds the lease now
        assert "spent" in repr(armed)
        with pytest.raises(weightbus.StateError, match="spent"):
            armed.wait(timeout=0)
    topic.publish({"w": np.full((4, 8), 3, np.float32)})
    assert topic.latest == 3
    info = plan.info  # the plan counts its arms: a host arm here (the wait copied)
    assert (info.arms, info.gpu_arms, info.gpu_arms_claimed) == (1, 0, 0)


def test_wait_wakes_when_the_version_is_published(client):
    topic, reader, plan, dst = make_plan(client)
    armed = plan.arm(1)
    timer = threading.Timer(0.1, lambda: topic.publish({"w": np.full((4, 8), 5, np.float32)}))
    timer.start()
    started = time.monotonic()
    with armed.wait(timeout=10) as snapshot:
        assert 0.05 < time.monotonic() - started < 5
        assert snapshot.version == 2 and (dst == 5).all()
    timer.join()


def test_a_version_already_there_is_copied_at_once(client):
    topic, reader, plan, dst = make_plan(client, replicas=2)
    topic.publish({"w": np.full((4, 8), 7, np.float32)})
    for after in (0, 1):
        dst[:] = 0
        with plan.arm(after).wait(timeout=0) as snapshot:
            assert snapshot.version == 2 and (dst == 7).all()


def test_refusals_and_withdrawals(client):
    topic, reader, plan, dst = make_plan(client)
    with pytest.raises(weightbus.InvalidArgumentError, match="after=5 is beyond its latest version, 1"):
        plan.arm(5)
    armed = plan.arm(1)
    topic.publish({"w": np.full((4, 8), 2, np.float32)})
    begin_blocks(topic)
    armed.release()
    armed.release()  # twice: nothing more
    assert (dst == 0).all()  # withdrawn: nothing copied
    topic.publish({"w": np.full((4, 8), 3, np.float32)})  # nothing pinned
    armed = plan.arm(3)
    plan.close()  # withdraws its arms
    with pytest.raises(weightbus.StateError):
        armed.version
    with pytest.raises(weightbus.StateError, match="closed"):
        plan.arm(3)
    reader.close()


def test_gpu_arms_setting_is_checked_by_every_arm(client, monkeypatch):
    topic, reader, plan, dst = make_plan(client)
    for bad in ("yes", "0", "100ms"):
        monkeypatch.setenv("WEIGHTBUS_GPU_ARMS", bad)
        with pytest.raises(weightbus.InvalidArgumentError, match=f"WEIGHTBUS_GPU_ARMS='{bad}': give on, off, or how"):
            plan.arm(1)
    for good in ("on", "off", "250"):  # a host plan arms as ever
        monkeypatch.setenv("WEIGHTBUS_GPU_ARMS", good)
        with plan.arm(1) as armed:
            assert not armed.on_stream
    monkeypatch.delenv("WEIGHTBUS_GPU_ARMS")
    topic.publish({"w": np.full((4, 8), 2, np.float32)})
    with plan.arm(1).wait(timeout=5):
        assert (dst == 2).all()


def test_load_slices_after_arms_the_plan(client):
    torch = pytest.importorskip("torch")
    from weightbus.torch import load_slices

    topic = client.create_topic("model")
    topic.alloc({"w": ((4, 8), "f32")})
    topic.publish({"w": np.full((4, 8), 1, np.float32)})
    reader = client.open_topic("model")
    rows = torch.zeros(2, 8)
    plan = weightbus.SlicePlan(reader, [{"dst": rows, "parts": [{"name": "w", "offset": [2, 0], "extent": [2, 8]}]}])
    assert load_slices(reader, plan, after=0) == 1 and (rows == 1).all()  # newer already: no wait
    timer = threading.Timer(0.1, lambda: topic.publish({"w": np.full((4, 8), 2, np.float32)}))
    timer.start()
    assert load_slices(reader, plan, after=1, timeout=10) == 2 and (rows == 2).all()
    timer.join()
    with pytest.raises(weightbus.WaitTimeoutError):
        load_slices(reader, plan, after=2, timeout=0.05)
    with pytest.raises(ValueError, match="version=1 and after=0"):
        load_slices(reader, plan, version=1, after=0)
    topic.publish({"w": np.full((4, 8), 3, np.float32)})  # the timed-out arm was withdrawn: nothing pinned
    assert topic.latest == 3
