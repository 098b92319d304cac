"""The README's install of the package on Debian 12, whose pip refuses to install into the system's Python
(PEP 668): a virtual environment with --system-site-packages (python3-venv), then its pip installs the package
offline; there the package imports from the environment and Debian's NumPy is seen."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]


def test_pip_installs_into_a_venv_with_the_system_site_packages(tmp_path):
    venv = tmp_path / "wb-env"
    made = subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, "python3 -m venv (Debian: python3-venv): " + made.stdout + made.stderr
    source = tmp_path / "src" / "python"
    shutil.copytree(PACKAGE_DIR, source, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"  # no look at PyPI for a newer pip: the machine may be offline
    installed = subprocess.run([str(venv / "bin" / "pip"), "install", str(source)], env=env, capture_output=True,
                               text=True, timeout=120)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    code = "import numpy, weightbus; print(weightbus.library_version(), weightbus.__file__)"
    imported = subprocess.run([str(venv / "bin" / "python"), "-c", code], env=env, capture_output=True, text=True,
                              cwd="/")
    assert imported.returncode == 0, imported.stderr
    version, path = imported.stdout.split()
    assert version == "0.1.0" and path.startswith(str(venv))
