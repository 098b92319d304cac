"""What the metrics tests share: a private weightbusd (whose log says where --metrics listens), plain HTTP
requests to that endpoint over TCP or a Unix socket, the CLI, the topic states of scenario.py, and
prometheus_client's parser. ctest gives the paths: $WEIGHTBUSD, $WEIGHTBUS_CLI, $WEIGHTBUS_LIBRARY (the library
scenario.py loads through the Python binding, bindings/python on $PYTHONPATH)."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
SKIP = 77  # ctest's SKIP_RETURN_CODE for these tests


def metric_parser():
    """prometheus_client's parser of the text format, or an exit that ctest reports as a skip, saying why."""
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        print("SKIP: prometheus_client is not installed (Debian: python3-prometheus-client; bash dev.sh installs it)")
        sys.exit(SKIP)
    return text_string_to_metric_families


def families(text):
    """The exposition parsed: {family name: (type, {(sample name, frozenset of labels): value})}, with
    documentation required of every family."""
    parsed = {}
    for family in metric_parser()(text):
        assert family.documentation, f"{family.name} has no HELP"
        samples = {(s.name, frozenset(s.labels.items())): s.value for s in family.samples}
        parsed[family.name] = (family.type, samples)
    return parsed


def value(parsed, family, sample=None, **labels):
    """The value of one sample (sample defaults to the family's name), or None when it is absent."""
    return parsed[family][1].get((sample or family, frozenset(labels.items())))


class Broker:
    """A weightbusd in the foreground on a socket of its own, with the given options; stopped with SIGTERM by
    stop(), which fails unless it exits 0 (a sanitizer's report at exit fails it too) leaving no shared memory."""

    def __init__(self, *args):
        self.dir = Path(tempfile.mkdtemp(prefix="wb-metrics-"))
        self.socket = str(self.dir / "broker.sock")
        self.name = f"metrics-{uuid.uuid4().hex[:12]}"
        self.log = self.dir / "broker.log"
        self.command = [os.environ["WEIGHTBUSD"], "--foreground", "--socket", self.socket, "--name", self.name,
                        "--log-level", "info", *args]
        self.scenarios = []  # scenario.py processes, killed by stop() if a failed test left them running
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(self.command, stderr=log)
        # "listening on" is logged once the signal handlers are in place: the socket exists a moment earlier, and a
        # SIGTERM then would kill the broker instead of stopping it.
        deadline = time.monotonic() + 10
        while "listening on" not in self.log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"weightbusd did not start: {self.log.read_text()}")
            time.sleep(0.01)

    def endpoint(self):
        """Where --metrics listens, as the log names it: "tcp:127.0.0.1:PORT" (the port the kernel chose for
        tcp:0) or "unix:PATH"."""
        found = re.search(r"metrics: GET /metrics on (\S+)", self.log.read_text())
        assert found, f"the broker's log names no metrics endpoint:\n{self.log.read_text()}"
        return found.group(1)

    def env(self):
        return dict(os.environ, WEIGHTBUS_SOCKET=self.socket)

    def cli(self, *args):
        """Runs the CLI against this broker: (exit status, stdout, stderr)."""
        done = subprocess.run([os.environ["WEIGHTBUS_CLI"], *args], env=self.env(), capture_output=True, text=True,
                              timeout=60)
        return done.returncode, done.stdout, done.stderr

    def stop(self):
        for scenario in self.scenarios:
            if scenario.process.poll() is None:
                scenario.kill()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        prefix = f"weightbus-{os.getuid()}-{self.name}"
        leftovers = [p for p in Path("/dev/shm").glob(prefix + "*")
                     if p.name == prefix or p.name.startswith(prefix + ".a")]
        for leftover in leftovers:
            leftover.unlink(missing_ok=True)
        log = self.log.read_text()
        shutil.rmtree(self.dir, ignore_errors=True)
        assert self.process.returncode == 0, f"weightbusd exited {self.process.returncode} on SIGTERM:\n{log}"
        assert not leftovers, f"{self.name} stopped cleanly but left {leftovers}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def connect(endpoint, timeout=10.0):
    """A socket connected to the endpoint the log names."""
    kind, _, where = endpoint.partition(":")
    if kind == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(where)
        return sock
    host, _, port = where.rpartition(":")
    sock = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def read_all(sock):
    """Everything the peer sends until it closes; b"" for a reset."""
    chunks = []
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    except ConnectionResetError:
        return b""
    return b"".join(chunks)


def exchange(endpoint, request, half_close=False):
    """Sends request bytes as they are (then closes the sending side, with half_close) and returns what comes
    back before the broker closes."""
    with connect(endpoint) as sock:
        try:
            sock.sendall(request)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed at once: an answer may wait in our receive buffer all the same
        return read_all(sock)


def http_get(endpoint, path="/metrics"):
    """GET path over HTTP/1.1 as Prometheus asks: (status, {lower-case header: value}, body text)."""
    answer = exchange(endpoint, f"GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain\r\n"
                                f"User-Agent: metrics-test\r\n\r\n".encode())
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    assert int(headers["content-length"]) == len(body), f"Content-Length {headers['content-length']}, {len(body)} bytes"
    return status, headers, body.decode()


def scrape(endpoint):
    """The body of a successful GET /metrics, after checking status and Content-Type."""
    status, headers, body = http_get(endpoint)
    assert status == 200, f"GET /metrics: {status} {body}"
    assert headers["content-type"].startswith("text/plain; version=0.0.4"), headers["content-type"]
    return body


def scenario_env(broker):
    """The environment of scenario.py: the broker's socket, and the sanitizer runtime the library needs loaded
    first in a sanitized build (python3 does not load it by itself)."""
    env = broker.env()
    library = os.environ["WEIGHTBUS_LIBRARY"]
    ldd = subprocess.run(["ldd", library], capture_output=True, text=True).stdout
    runtime = [line.split()[2] for line in ldd.splitlines() if re.search(r"lib(asan|tsan)", line)]
    if runtime:
        env.update(LD_PRELOAD=runtime[0], ASAN_OPTIONS="detect_leaks=0")
    return env


class Scenario:
    """A scenario.py ROLE process: started by start(), which returns once its topics are in their state."""

    def __init__(self, broker, role, topic):
        self.ready = broker.dir / f"{role}.ready"
        self.stop_file = broker.dir / f"{role}.stop"
        self.process = subprocess.Popen([sys.executable, str(HERE / "scenario.py"), role, topic, str(self.ready),
                                         str(self.stop_file)], env=scenario_env(broker))
        broker.scenarios.append(self)
        deadline = time.monotonic() + 30
        while not self.ready.exists():
            assert self.process.poll() is None, f"scenario {role} exited {self.process.returncode}"
            assert time.monotonic() < deadline, f"scenario {role} did not get ready"
            time.sleep(0.02)

    def kill(self):
        """SIGKILL: the process dies with whatever it holds."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def finish(self):
        """Lets it release what it holds and detach."""
        self.stop_file.touch()
        assert self.process.wait(30) == 0


def eventually(check, what, timeout=10.0):
    """Calls check() until it returns a true value, which it returns; fails naming `what` after timeout s."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.05)
