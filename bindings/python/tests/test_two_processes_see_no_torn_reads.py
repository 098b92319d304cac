"""A publisher process and a reader process over 1,000 versions: every snapshot the reader takes holds one
whole version (each element equals the version number the snapshot reports), for R = 1 and R = 2."""
import subprocess
import sys
import textwrap

import pytest

VERSIONS = 1000
ELEMENTS = 1 << 16

PUBLISHER = textwrap.dedent("""
    import sys, time, numpy as np, weightbus
    client = weightbus.connect(sys.argv[1], client_name="publisher")
    topic = client.create_topic("model", replicas=int(sys.argv[2]))
    topic.alloc({"a": ((%(n)d,), "u64"), "b": ((%(n)d,), "u64")})
    print("ready", flush=True)
    sys.stdin.readline()
    for _ in range(%(versions)d):
        with topic.update(timeout=10.0) as u:
            for name in ("a", "b"):
                np.asarray(u[name])[:] = u.version
            u.metadata = str(u.version).encode()
        if u.version %% 25 == 0:
            time.sleep(0.002)  # lets the reader in, on a loaded machine too
    client.close()
""") % {"n": ELEMENTS, "versions": VERSIONS}

READER = textwrap.dedent("""
    import sys, numpy as np, weightbus
    client = weightbus.connect(sys.argv[1], client_name="reader")
    topic = client.open_topic("model")
    print("ready", flush=True)
    seen = checked = 0
    while seen < %(versions)d:
        seen = topic.wait(after=seen, timeout=20.0)
        with topic.snapshot(timeout=10.0) as s:
            for name in ("a", "b"):
                array = np.asarray(s[name])
                if not (array == s.version).all() or s.metadata != str(s.version).encode():
                    print("TORN", s.version, name, np.unique(array)[:5], flush=True)
                    sys.exit(1)
            del array
            checked += 1
    print("checked", checked, flush=True)
    client.close()
""") % {"versions": VERSIONS}


@pytest.mark.parametrize("replicas", [1, 2])
def test_two_processes_see_no_torn_reads(broker, replicas):
    publisher = subprocess.Popen([sys.executable, "-c", PUBLISHER, broker.socket, str(replicas)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert publisher.stdout.readline().strip() == "ready"
    reader = subprocess.Popen([sys.executable, "-c", READER, broker.socket], stdout=subprocess.PIPE, text=True)
    assert reader.stdout.readline().strip() == "ready"
    publisher.stdin.write("go\n")
    publisher.stdin.flush()
    try:
        assert publisher.wait(120) == 0
        out, _ = reader.communicate(timeout=120)
    finally:
        for p in (publisher, reader):
            if p.poll() is None:
                p.kill()
    assert reader.returncode == 0, out
    checked = int(out.split()[-1])
    assert checked >= 5, out  # the reader really overlapped the publisher
    print(f"R = {replicas}: the reader checked {checked} snapshots of {VERSIONS} versions")
