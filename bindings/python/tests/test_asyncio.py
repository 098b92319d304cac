"""await topic.wait_async(): wakes on a publish from another thread or process, times out, serves several
coroutines at once, sleeps through a broker restart and reports the broker's death; the notify fd and
notify_ack() it is built on."""
import asyncio
import os
import select
import signal
import threading
import time

import pytest

import weightbus


def publish_later(topic, delay=0.05, count=1):
    """Publishes from another thread after `delay` s; join the thread before the test ends."""
    def run():
        for _ in range(count):
            topic.publish({})
    timer = threading.Timer(delay, run)
    timer.start()
    return timer


def test_wait_async_wakes_on_publish(client):
    topic = client.create_topic("model")
    reader = client.open_topic("model")

    async def main():
        publisher = publish_later(topic)
        version = await reader.wait_async(after=0, timeout=5.0)
        publisher.join()
        return version

    assert asyncio.run(main()) == 1


def test_wait_async_returns_at_once_when_a_version_is_newer(client):
    topic = client.create_topic("model")
    topic.publish({})
    topic.publish({})
    assert asyncio.run(topic.wait_async(after=1, timeout=0)) == 2


def test_wait_async_times_out(client):
    topic = client.create_topic("model")

    async def main():
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(weightbus.WaitTimeoutError, match="no version after 0"):
            await topic.wait_async(after=0, timeout=0.1)
        return loop.time() - start

    assert 0.09 <= asyncio.run(main()) < 2.0


def test_several_coroutines_wait_on_one_topic(client):
    topic = client.create_topic("model")
    reader = client.open_topic("model")

    async def main():
        publisher = publish_later(topic, count=3)
        first = asyncio.gather(*(reader.wait_async(after=0, timeout=5.0) for _ in range(4)))
        later = reader.wait_async(after=2, timeout=5.0)
        result = await first, await later
        publisher.join()
        return result

    woken, last = asyncio.run(main())
    assert all(v >= 1 for v in woken) and last == 3


def test_the_loop_keeps_running_while_waiting(client):
    topic = client.create_topic("model")
    ticks = []

    async def ticker():
        while True:
            ticks.append(1)
            await asyncio.sleep(0.01)

    async def main():
        task = asyncio.ensure_future(ticker())
        publisher = publish_later(topic, delay=0.2)
        version = await topic.wait_async(after=0, timeout=5.0)
        task.cancel()
        publisher.join()
        return version

    assert asyncio.run(main()) == 1 and len(ticks) >= 5


def test_wait_async_raises_broker_gone_when_no_successor_comes(broker):
    client = broker.connect(timeout=0.3)
    topic = client.create_topic("model")

    async def main():
        threading.Timer(0.1, lambda: os.kill(broker.process.pid, signal.SIGKILL)).start()
        await topic.wait_async(after=0, timeout=10.0)

    with pytest.raises(weightbus.BrokerGoneError):
        asyncio.run(main())


def test_wait_async_goes_on_across_a_broker_restart(broker, published):
    topic, watched = published

    async def main():
        waiting = asyncio.ensure_future(watched.wait_async(after=1, timeout=10.0))
        await asyncio.sleep(0.1)
        broker.kill_and_restart()
        await asyncio.sleep(0.2)
        with topic.update():  # the publisher resumes with the successor
            pass
        return await waiting

    assert asyncio.run(main()) == 2


def test_wait_async_sleeps_while_the_broker_is_down(broker, published):
    topic, watched = published
    acks = []
    ack = watched.notify_ack
    watched.notify_ack = lambda: acks.append(time.monotonic()) or ack()

    async def main():
        waiting = asyncio.ensure_future(watched.wait_async(after=1, timeout=10.0))
        await asyncio.sleep(0.1)
        broker.process.kill()
        broker.process.wait()
        outage_began = time.monotonic()
        await asyncio.sleep(1.0)
        woken = len([t for t in acks if t >= outage_began])
        broker.kill_and_restart()  # the dead one stays dead: this starts its successor
        with topic.update():
            pass
        return await waiting, woken

    version, woken = asyncio.run(main())
    assert version == 2
    assert woken <= 10, f"{woken} wake-ups in a 1 s outage"


def test_notify_fd_is_one_fd_acknowledged_with_notify_ack(broker, published):
    topic, watched = published
    fd = watched.notify_fd()
    assert watched.notify_fd() == fd
    assert select.select([fd], [], [], 0.05)[0] == []
    with topic.update():
        pass
    assert select.select([fd], [], [], 5.0)[0] == [fd]
    assert watched.notify_ack() == 2
    assert select.select([fd], [], [], 0)[0] == []
    broker.kill_and_restart()
    with topic.update():
        pass
    deadline = time.monotonic() + 5.0
    latest = 2
    while latest < 3 and select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
        latest = watched.notify_ack()
    assert latest == 3 and watched.notify_fd() == fd
