"""The examples run end to end against a private broker (on the CPU here; on the GPU in tests/gpu/run.sh)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(script, broker, *args, timeout=120):
    env = dict(os.environ, WEIGHTBUS_SOCKET=broker.socket)
    return subprocess.Popen([sys.executable, str(EXAMPLES / script), *args], env=env, cwd=EXAMPLES,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_trainer_and_server(broker):
    trainer = run("trainer.py", broker, "--steps", "200", "--interval", "0.02")
    first = trainer.stdout.readline()
    assert "published as version 1" in first, first + trainer.communicate(timeout=60)[0]
    server = run("server.py", broker, "--requests", "5", "--interval", "0.01")
    server_out, _ = server.communicate(timeout=120)
    trainer_out, _ = trainer.communicate(timeout=120)
    assert server.returncode == 0, server_out
    assert trainer.returncode == 0, trainer_out
    lines = [line for line in server_out.splitlines() if line.startswith("server: request")]
    assert len(lines) == 5 and "from version" in lines[0] and "step=" in lines[0]


def test_vllm_shaped_engine(broker):
    p = run("vllm_weight_transfer.py", broker)
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 0, out
    assert out.count("worker weights equal the trainer's: True") == 3
