#!/usr/bin/python3
"""weightbusd under systemd, without systemd: this harness does what systemd does for weightbusd.socket and a
Type=notify weightbusd.service. It binds the seqpacket socket, passes it as descriptor 3 with $LISTEN_FDS and
$LISTEN_PID, and listens on $NOTIFY_SOCKET.

Claims: the broker serves the socket it is passed (clients connect to its path) and says READY=1 only once
they can; it says STOPPING=1 on SIGTERM and leaves systemd's socket in place; with --on-stop keep the next
activated broker adopts the segment, with its topics. Variables meant for another pid are ignored. Two sockets,
a stream socket, an abstract socket, a --socket other than systemd's and a directory others can write are each
refused with their own message and exit status 1.

  test-broker-takes-systemds-socket-and-says-ready.py WEIGHTBUSD WEIGHTBUS_CLI
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

WEIGHTBUSD, CLI = sys.argv[1], sys.argv[2]
HERE = os.path.dirname(os.path.abspath(__file__))
NAME = f"sd-{os.getpid()}"
SEGMENT = f"/dev/shm/weightbus-{os.getuid()}-{NAME}"
passed = failed = 0
started = []  # every broker's pid: killed at the end if it still runs


def check(what, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL: {what}" + (f": {detail}" if detail else ""))


def start(sockets, notify_path, *args, listen_pid=None):
    """Forks weightbusd as systemd would: sockets become descriptors 3, 4, ...; returns (pid, stderr path)."""
    err_path = os.path.join(work, f"broker-{len(os.listdir(work))}.err")
    pid = os.fork()
    if pid == 0:
        try:
            err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(err, 2)
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # not the test's stdout: ctest waits for its end
            fds = [s.fileno() for s in sockets]
            moved = [os.dup(fd) for fd in fds]  # out of the way of 3, 4, ... first
            for i, fd in enumerate(moved):
                os.dup2(fd, 3 + i)  # dup2 clears close-on-exec on the copy
            env = dict(os.environ, LISTEN_FDS=str(len(sockets)), LISTEN_PID=str(listen_pid or os.getpid()),
                       NOTIFY_SOCKET=notify_path)
            os.execve(WEIGHTBUSD, [WEIGHTBUSD, "--foreground", "--name", NAME, *args], env)
        finally:
            os._exit(127)
    started.append(pid)
    return pid, err_path


def seqpacket(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.bind(path)
    s.listen(16)
    return s


def notices(notify, timeout=30.0):
    """The next datagram on the notify socket, as text ('' after timeout seconds)."""
    notify.settimeout(timeout)
    try:
        return notify.recv(4096).decode()
    except socket.timeout:
        return ""


def cli(*args):
    return subprocess.run([CLI, "--socket", sock_path, *args], capture_output=True, text=True, timeout=60)


def exit_status(pid):
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def refused(what, sockets, expected, *args, listen_pid=None):
    """A broker started so exits 1 before it is ready, saying expected on stderr."""
    pid, err_path = start(sockets, notify_path, *args, listen_pid=listen_pid)
    status = exit_status(pid)
    err = open(err_path).read()
    check(f"{what}: exit status 1", status == 1, f"{status}; stderr: {err}")
    check(f"{what}: says why", expected in err, err)


work = tempfile.mkdtemp()
os.chmod(work, 0o700)
sock_path = os.path.join(work, "b.sock")
notify_path = os.path.join(work, "notify")
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.bind(notify_path)
listener = seqpacket(sock_path)
try:
    # Activated: ready only once clients can connect, serving systemd's socket.
    broker, err_path = start([listener], notify_path, "--on-stop", "keep")
    ready = notices(notify)
    check("READY=1 after start", "READY=1" in ready, repr(ready))
    check("the status names the socket", f"serving {sock_path}" in ready, repr(ready))
    ls = cli("ls")
    check("a client connects at once after READY=1", ls.returncode == 0, ls.stderr)
    fixture = os.path.join(HERE, "..", "cli", "safetensors_fixture.py")
    subprocess.run(["/usr/bin/python3", fixture, "model", os.path.join(work, "m.safetensors"), "1"], check=True)
    load = cli("load", os.path.join(work, "m.safetensors"), "--topic", "policy")
    check("load through systemd's socket", load.returncode == 0, load.stderr)

    # SIGTERM (systemctl stop or restart): STOPPING=1, a clean exit, systemd's socket and the segment stay.
    os.kill(broker, signal.SIGTERM)
    stopping = notices(notify)
    check("STOPPING=1 on SIGTERM", "STOPPING=1" in stopping, repr(stopping))
    status = exit_status(broker)
    check("a clean exit", status == 0, str(status))
    check("systemd's socket is left in place", os.path.exists(sock_path))
    check("--on-stop keep leaves the segment", os.path.exists(SEGMENT))

    # The next activation adopts it: the topic is there.
    broker, _ = start([listener], notify_path, "--on-stop", "keep")
    ready = notices(notify)
    check("READY=1 again, adopted", "READY=1" in ready and "(adopted)" in ready, repr(ready))
    info = cli("info", "policy", "--json")
    check("the topic survived the restart", info.returncode == 0 and '"latest":1' in info.stdout.replace(" ", ""),
          info.stdout + info.stderr)
    stop = cli("stop", "--remove")
    check("stop --remove", stop.returncode == 0, stop.stderr)
    check("stop --remove: a clean exit", exit_status(broker) == 0)
    check("STOPPING=1 on stop --remove", "STOPPING=1" in notices(notify))
    check("stop --remove removes the segment", not os.path.exists(SEGMENT))
    check("systemd's socket is still left in place", os.path.exists(sock_path))

    # $LISTEN_PID of another process: the variables are not ours, the broker binds its own socket.
    own = os.path.join(work, "own.sock")
    broker, _ = start([listener], notify_path, "--socket", own, listen_pid=1)
    ready = notices(notify)
    check("another pid's LISTEN_FDS is ignored", f"serving {own}" in ready, repr(ready))
    os.kill(broker, signal.SIGTERM)
    notices(notify)
    check("and it stops cleanly", exit_status(broker) == 0)

    # Each refusal.
    second = seqpacket(os.path.join(work, "second.sock"))
    refused("two sockets", [listener, second], "systemd passed 2 sockets; weightbusd serves one")
    stream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stream.bind(os.path.join(work, "stream.sock"))
    stream.listen(1)
    refused("a stream socket", [stream], "is not a listening Unix seqpacket socket (the socket unit needs "
            "ListenSequentialPacket=)")
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    abstract.bind(f"\0weightbus-test-{os.getpid()}")
    abstract.listen(1)
    refused("an abstract socket", [abstract], "the socket has no path (an abstract socket)")
    refused("another --socket", [listener], f"systemd's socket is {sock_path}, not --socket {work}/other.sock",
            "--socket", f"{work}/other.sock")
    open_dir = os.path.join(work, "open")
    os.mkdir(open_dir)
    os.chmod(open_dir, 0o777)
    in_open = seqpacket(os.path.join(open_dir, "b.sock"))
    refused("a directory others can write", [in_open], "is writable by others")
finally:
    for pid in started:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    if os.path.exists(SEGMENT):
        subprocess.run(f"rm -f {SEGMENT} {SEGMENT}.a*", shell=True)
    shutil.rmtree(work, ignore_errors=True)

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
