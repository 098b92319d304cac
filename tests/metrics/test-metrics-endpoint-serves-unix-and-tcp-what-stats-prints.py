#!/usr/bin/python3
"""weightbusd --metrics serves GET /metrics (HTTP/1.0, Content-Type text/plain; version=0.0.4) on a Unix socket
(mode 0600, removed when the broker stops, a dead broker's left path taken over) and on tcp:PORT (127.0.0.1),
what prometheus_client's parser reads: the same families and, for what does not move between two reads, the same
values as `weightbus stats --prometheus` (sharded topics too); other paths are 404, other methods 405 (Allow: GET); a scraper that
closes its sending side after asking gets its whole answer; and the figures follow the segment (a publish shows
within the refresh interval)."""
import os
import socket
import stat
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from metrics_fixture import (Broker, Scenario, eventually, exchange, families, http_get, metric_parser,  # noqa: E402
                             scrape, value)

metric_parser()

# What moves between two reads, or differs because the CLI is a client too.
MOVING = {"weightbus_broker_uptime_seconds", "weightbus_topic_latest_age_seconds",
          "weightbus_topic_longest_lease_hold_seconds", "weightbus_broker_clients", "weightbus_broker_reclaims"}


def comparable(parsed):
    return {name: (kind, {k: v for k, v in samples.items() if "max-clients" not in str(k)})
            for name, (kind, samples) in parsed.items() if name not in MOVING}


def check_serves(broker, endpoint):
    body = scrape(endpoint)
    served = families(body)
    status, out, err = broker.cli("stats", "--prometheus")
    assert status == 0, err
    printed = families(out)
    assert served.keys() == printed.keys(), served.keys() ^ printed.keys()
    assert comparable(served) == comparable(printed), (comparable(served), comparable(printed))
    assert value(served, "weightbus_topic_latest_version", topic="policy") == 3
    assert value(served, "weightbus_topic_readers", topic="policy") == 2
    assert value(served, "weightbus_broker_uptime_seconds") > 0

    status, headers, body = http_get(endpoint, "/")
    assert status == 404 and "GET /metrics" in body, (status, body)
    answer = exchange(endpoint, b"POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n").decode()
    assert answer.startswith("HTTP/1.0 405 Method Not Allowed\r\n") and "\r\nAllow: GET\r\n" in answer, answer
    # HTTP/1.0 as a script would send it, a query string and bare newlines; then a scraper that closes its
    # sending side once it has asked, which still gets the whole answer.
    answer = exchange(endpoint, b"GET /metrics?x=1 HTTP/1.0\n\n").decode()
    assert answer.startswith("HTTP/1.0 200 OK\r\n") and "weightbus_broker_info{" in answer, answer[:200]
    head, _, body = exchange(endpoint, b"GET /metrics HTTP/1.0\r\n\r\n", half_close=True).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200 OK") and f"Content-Length: {len(body)}".encode() in head, head


with Broker("--metrics", "tcp:0") as broker:
    endpoint = broker.endpoint()
    assert endpoint.startswith("tcp:127.0.0.1:"), endpoint
    live = Scenario(broker, "live", "policy")
    ranks = Scenario(broker, "ranks", "model")  # sharded: the broker and the CLI tell a live publisher apart
    check_serves(broker, endpoint)
    assert value(families(scrape(endpoint)), "weightbus_topic_publisher_alive", topic="model-half") == 0
    # A new version shows in the next scrapes (the figures are read again after at most 100 ms).
    client = Scenario(broker, "dead", "later")
    eventually(lambda: value(families(scrape(endpoint)), "weightbus_topic_latest_version", topic="later") == 1,
               "a topic published after the first scrape shows")
    client.kill()
    live.finish()
    ranks.finish()

# Unix: a stale path (a dead broker's) is taken over, the socket is 0600, and it goes with the broker.
with tempfile.TemporaryDirectory(prefix="wb-metrics-") as directory:
    path = os.path.join(directory, "metrics.sock")
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(path)  # bound, never listening: what a killed broker leaves
    with Broker("--metrics", f"unix:{path}") as broker:
        assert broker.endpoint() == f"unix:{path}"
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        live = Scenario(broker, "live", "policy")
        check_serves(broker, broker.endpoint())
        live.finish()
    deadline = time.monotonic() + 5
    while os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not os.path.exists(path), "the metrics socket outlived its broker"
print("--metrics: unix and tcp serve what stats --prometheus prints")
