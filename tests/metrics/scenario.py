#!/usr/bin/python3
"""Puts topics into a state for the metrics tests, then waits: scenario.py ROLE TOPIC READY_FILE STOP_FILE. Once
the state is made it creates READY_FILE; once STOP_FILE exists it releases what it holds and detaches (the tests
kill the roles whose death is the state). The broker is found through $WEIGHTBUS_SOCKET.
  live   TOPIC (R = 3) published 3 times by a live publisher; one reader leases version 1, another version 3;
         a topic named TOPIC + ' "odd" \\ µ' published once; TOPIC + '-never' made and never published.
  dirty  TOPIC (R = 1) published once, then version 2 half-written in place: killed, it leaves the topic dirty.
  dead   TOPIC (R = 2) published once: killed, it leaves the topic whole without a publisher.
  ranks  TOPIC + '-whole' and TOPIC + '-half', sharded over 2 ranks (a client each), version 1 committed; then
         rank 1 of TOPIC + '-half' detaches."""
import os
import sys
import time

import numpy

import weightbus

role, topic_name, ready, stop = sys.argv[1:5]
ELEMENTS = 1024


def make(client, name, replicas):
    topic = client.create_topic(name, replicas=replicas)
    topic.alloc({"w": ((ELEMENTS,), "f32")})
    return topic


def publish(topic, value):
    return topic.publish({"w": numpy.full(ELEMENTS, value, numpy.float32)})


def sharded(name):
    """Both ranks' clients, after version 1 of `name` is committed (rows [512 r, 512 r + 512) of "w" each)."""
    clients = [weightbus.connect(client_name=f"rank{r}") for r in range(2)]
    ranks = [c.create_rank(name, r, 2) for r, c in enumerate(clients)]
    for r, topic in enumerate(ranks):
        topic.alloc_shards([{"name": "w", "dtype": "f32", "logical_shape": (ELEMENTS,), "offset": (r * ELEMENTS // 2,),
                             "extent": (ELEMENTS // 2,)}])
    for topic in ranks:
        topic.seal_rank(timeout=5)
    for topic in ranks:
        with topic.update(timeout=5) as u:
            u.shard("w").numpy()[:] = 1.0
    clients[0].open_topic(name).wait(after=0, timeout=5)
    return clients


held = []  # snapshots, released at the end
kept = []  # clients that must stay attached until then
publisher = weightbus.connect(client_name=f"{role}-publisher")
if role == "live":
    topic = make(publisher, topic_name, 3)
    publish(topic, 1.0)
    first_reader = weightbus.connect(client_name="reader-1")
    held.append(first_reader.open_topic(topic_name).snapshot(1))
    publish(topic, 2.0)
    publish(topic, 3.0)
    second_reader = weightbus.connect(client_name="reader-2")
    held.append(second_reader.open_topic(topic_name).snapshot(3))
    publish(make(publisher, topic_name + ' "odd" \\ µ', 2), 1.0)
    make(publisher, topic_name + "-never", 2)
elif role == "dirty":
    topic = make(publisher, topic_name, 1)
    publish(topic, 1.0)
    update = topic.update(timeout=5)
    numpy.asarray(update.tensor("w"))[: ELEMENTS // 2] = 2.0
elif role == "dead":
    publish(make(publisher, topic_name, 2), 1.0)
elif role == "ranks":
    kept.extend(sharded(topic_name + "-whole"))
    half = sharded(topic_name + "-half")
    half[1].close()
    kept.append(half[0])
else:
    sys.exit(f"scenario.py: unknown role {role}")
open(ready, "w").close()
deadline = time.monotonic() + 120
while not os.path.exists(stop) and time.monotonic() < deadline:
    time.sleep(0.02)
for snapshot in held:
    snapshot.release()
