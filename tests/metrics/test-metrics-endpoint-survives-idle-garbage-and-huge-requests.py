#!/usr/bin/python3
"""No scraper stalls weightbusd --metrics, nor the broker behind it: while a connection that sends nothing is
open, others are answered at once, and the broker closes it after its deadline (5 s); garbage is answered 400 and
closed; a request over 8 KiB is answered 431 (or reset) and closed; twelve silent connections, more than the eight
served at once, leave clients answered at once and a scrape served once the first ones time out; after each,
GET /metrics works at once."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from metrics_fixture import Broker, connect, exchange, read_all, scrape  # noqa: E402

DEADLINE_S = 5  # MetricsServer::kDeadlineMs


def timed(call):
    start = time.monotonic()
    result = call()
    return result, time.monotonic() - start


def scrape_works(endpoint, within):
    body, took = timed(lambda: scrape(endpoint))
    assert "weightbus_broker_info{" in body
    assert took < within, f"a scrape took {took:.2f} s"


with Broker("--metrics", "tcp:0") as broker:
    endpoint = broker.endpoint()

    # Connected, silent: others are served meanwhile, and the broker closes it at its deadline.
    idle = connect(endpoint, timeout=DEADLINE_S + 5)
    scrape_works(endpoint, 1.0)
    (status, _, err), took = timed(lambda: broker.cli("ls"))
    assert status == 0 and took < 2, (status, took, err)
    closed_after = timed(lambda: read_all(idle))[1]
    idle.close()
    assert DEADLINE_S - 1 < closed_after < DEADLINE_S + 3, f"the silent connection closed after {closed_after:.1f} s"

    # Garbage: a line that is no request is answered 400 at once; bytes without a line end at the close.
    answer, took = timed(lambda: exchange(endpoint, b"\x16\x03\x01\x02\x00garbage\xff\r\n\r\n"))
    assert answer.startswith(b"HTTP/1.0 400 Bad Request\r\n") and took < 2, (answer[:100], took)
    assert exchange(endpoint, b"GET /metrics HTTP/2\r\n\r\n").startswith(b"HTTP/1.0 400 ")
    with connect(endpoint) as sock:
        sock.sendall(os.urandom(1000).replace(b"\n", b"."))
    scrape_works(endpoint, 1.0)

    # Huge: a request line and headers past 8 KiB, then 1 MiB without a line end.
    answer = exchange(endpoint, b"GET /metrics HTTP/1.1\r\n" + b"X-Filler: " + b"a" * 100000 + b"\r\n\r\n")
    assert answer == b"" or answer.startswith(b"HTTP/1.0 431 "), answer[:100]
    answer = exchange(endpoint, b"A" * (1 << 20))
    assert answer == b"" or answer.startswith(b"HTTP/1.0 431 "), answer[:100]
    scrape_works(endpoint, 1.0)

    # More silent connections than are served at once: the broker goes on answering clients, and a scrape waits
    # in the listen backlog until the first eight time out.
    crowd = [connect(endpoint, timeout=3 * DEADLINE_S) for _ in range(12)]
    (status, _, err), took = timed(lambda: broker.cli("stats"))
    assert status == 0 and took < 2, (status, took, err)
    scrape_works(endpoint, DEADLINE_S + 3)
    for sock in crowd:
        sock.close()
    scrape_works(endpoint, 1.0)
    assert broker.process.poll() is None, "the broker died"
print("--metrics: idle, garbage, huge and crowds of scrapers stall nothing")
