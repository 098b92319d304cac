#!/usr/bin/python3
"""weightbusd listens for metrics only when --metrics asks: without it the control socket is its only listening
socket. A --metrics value of no known form is a usage error (exit 2) naming the value and the forms, before
anything is made; an endpoint it cannot take (a port in use, a path that is a file, a Unix socket someone listens
on) stops it at start (exit 1) naming the endpoint and why, leaving neither its socket nor its segment."""
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from metrics_fixture import Broker  # noqa: E402


def listening_inodes():
    """Inodes of every listening socket of the network namespace: TCP in state LISTEN (0A), Unix with the
    listening flag (__SO_ACCEPTCON, 0x10000)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if os.path.exists(table):
            for row in Path(table).read_text().splitlines()[1:]:
                fields = row.split()
                if fields[3] == "0A":
                    inodes.add(fields[9])
    for row in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = row.split()
        if int(fields[3], 16) & 0x10000:
            inodes.add(fields[6])
    return inodes


def socket_inodes(pid):
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def start_fails(*args):
    """Runs weightbusd with args in a fresh directory: (exit status, its stderr, what it left there)."""
    with tempfile.TemporaryDirectory(prefix="wb-metrics-") as directory:
        sock = os.path.join(directory, "broker.sock")
        name = f"metrics-refused-{os.getpid()}"
        done = subprocess.run([os.environ["WEIGHTBUSD"], "--foreground", "--socket", sock, "--name", name, *args],
                              capture_output=True, text=True, timeout=30)
        left = sorted(os.listdir(directory)) + sorted(p.name for p in Path("/dev/shm").glob(f"weightbus-*-{name}*"))
        return done.returncode, done.stderr, left


# Off by default: one listening socket, the control socket.
with Broker() as broker:
    mine = socket_inodes(broker.process.pid) & listening_inodes()
    assert len(mine) == 1, f"weightbusd without --metrics listens on {len(mine)} sockets"
    assert "metrics:" not in broker.log.read_text()

# Values of no known form: a usage error naming the value, before anything is made.
for bad in ["", "tcp:", "tcp:65536", "tcp:-1", "tcp:port", "tcp:localhost:9464", "tcp:::1:9464", "tcp:[::1]",
            "tcp:1.2.3:80", "unix:", "unix:" + "x" * 108, "http://127.0.0.1:9464/metrics", "9464"]:
    status, err, left = start_fails("--metrics", bad)
    assert status == 2, f"--metrics {bad!r}: exit {status}: {err}"
    assert f"--metrics '{bad}' is not unix:PATH, tcp:PORT or tcp:ADDR:PORT" in err, err
    assert left == [], f"--metrics {bad!r} left {left}"
status, err, _ = start_fails("--metrics")
assert status == 2 and "--metrics needs a value" in err, err

# A port another process listens on.
with socket.socket() as taken:
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    status, err, left = start_fails("--metrics", f"tcp:127.0.0.1:{port}")
    assert status == 1, f"a taken port: exit {status}: {err}"
    assert f"--metrics tcp:127.0.0.1:{port}: cannot listen there: Address already in use" in err, err
    assert left == [], f"a taken port left {left}"

# A path that is a file, and a Unix socket a live process listens on.
with tempfile.TemporaryDirectory(prefix="wb-metrics-") as directory:
    plain = os.path.join(directory, "plain")
    Path(plain).write_text("not a socket")
    status, err, left = start_fails("--metrics", f"unix:{plain}")
    assert status == 1 and f"--metrics unix:{plain}: the path exists and is not a socket" in err, (status, err)
    assert Path(plain).read_text() == "not a socket"
    busy = os.path.join(directory, "busy")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(busy)
        listener.listen()
        status, err, left = start_fails("--metrics", f"unix:{busy}")
        assert status == 1 and f"--metrics unix:{busy}: a process already listens there" in err, (status, err)
print("--metrics: off by default, bad values and taken endpoints refused")
