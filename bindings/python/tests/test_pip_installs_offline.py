"""`pip install --no-build-isolation ./bindings/python` works without network (Debian's flit_core builds the
wheel), and the installed package finds the library through WEIGHTBUS_LIBRARY or next to itself. Here into a
directory of the system's Python (--target), which pip fills with every dependency unless told --no-deps: NumPy
comes from Debian instead."""
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode != 0:
        pytest.fail("pip is missing: install python3-pip (dev.sh test does)")
    if importlib.util.find_spec("flit_core") is None:
        pytest.fail("flit_core, which builds the package, is missing: install Debian's flit (dev.sh test does)")
    target = tmp_path_factory.mktemp("site")
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--no-cache-dir",
                             "--no-build-isolation", "--no-deps", "--target", str(target), str(PACKAGE_DIR)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return target


def run_installed(target, code, **env):
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "WEIGHTBUS_LIBRARY")}
    clean.update(env, PYTHONPATH=str(target))
    return subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True, cwd="/")


def test_installed_package_has_its_modules_and_metadata(installed):
    assert (installed / "weightbus" / "__init__.py").exists() and (installed / "weightbus" / "py.typed").exists()
    metadata = (installed / "weightbus-0.1.0.dist-info" / "METADATA").read_text()
    assert "Name: weightbus" in metadata and "Version: 0.1.0" in metadata
    assert not (installed / "tests").exists()


def test_installed_package_loads_the_library_from_the_environment(installed):
    result = run_installed(installed, "import weightbus; print(weightbus.library_version(), weightbus.__file__)",
                           WEIGHTBUS_LIBRARY=os.environ["WEIGHTBUS_LIBRARY"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("0.1.0 " + str(installed))


def test_installed_package_loads_a_library_placed_next_to_it(installed, tmp_path):
    shutil.copy(os.environ["WEIGHTBUS_LIBRARY"], installed / "weightbus" / "libweightbus.so.0")
    try:
        result = run_installed(installed, "import weightbus; print(weightbus._library._name)")
    finally:
        (installed / "weightbus" / "libweightbus.so.0").unlink()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(installed / "weightbus" / "libweightbus.so.0")
