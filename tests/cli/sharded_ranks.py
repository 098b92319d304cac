#!/usr/bin/python3
"""Publishes sharded topic TOPIC as both its ranks, then leaves a version pending, until told to stop:
sharded_ranks.py TOPIC READY_FILE STOP_FILE. Rank 0 holds rows [0:2] of f32 "w" [4, 2], rank 1 rows [2:4];
both hold "norm" [2] replicated. Version 1 is committed; rank 0 then publishes version 2, which waits for rank 1.
The broker is found through $WEIGHTBUS_SOCKET, the library through $WEIGHTBUS_LIBRARY, the package through
$PYTHONPATH."""
import os
import sys
import time

import weightbus

topic_name, ready, stop = sys.argv[1:4]
clients = [weightbus.connect(client_name=f"rank{r}") for r in range(2)]
ranks = [c.create_rank(topic_name, r, 2) for r, c in enumerate(clients)]
for r, topic in enumerate(ranks):
    topic.alloc_shards([{"name": "w", "dtype": "f32", "logical_shape": (4, 2), "offset": (2 * r, 0), "extent": (2, 2)},
                        {"name": "norm", "dtype": "f32", "logical_shape": (2,), "replicated": True}])
for topic in ranks:
    topic.seal_rank(timeout=5)
for r, topic in enumerate(ranks):
    with topic.update(timeout=5) as u:
        u.shard("w").numpy()[:] = 1.0
        u.shard("norm").numpy()[:] = 1.0
        u.metadata = b"step 1" if r == 0 else b""  # the version's metadata is rank 0's
reader = clients[0].open_topic(topic_name)
reader.wait(after=0, timeout=5)
with ranks[0].update(timeout=5):
    pass  # version 2, waiting for rank 1
open(ready, "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(stop) and time.monotonic() < deadline:
    time.sleep(0.02)
reader.close()
for c in clients:
    c.close()
