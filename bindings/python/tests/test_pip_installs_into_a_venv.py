"""The README's install of the package on Debian 12, whose pip refuses to install into the system's Python
(PEP 668): a virtual environment with --system-site-packages (python3-venv), then its pip installs the package
offline, built by Debian's flit_core (--no-build-isolation: pip takes the flit_core it sees instead of fetching
one). Both kinds of install: a regular one (a wheel), and an editable one (-e) that imports the source tree."""
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1]
LICENSE = Path(__file__).resolve().parents[3] / "LICENSE"
# No look at PyPI for a newer pip, and no PYTHONPATH (conftest's points at the source tree): what the venv
# imports must come from the install.
ENV = dict({k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, PIP_DISABLE_PIP_VERSION_CHECK="1")


def make_venv(path):
    if importlib.util.find_spec("flit_core") is None:
        pytest.fail("flit_core, which builds the package, is missing: install Debian's flit (dev.sh test does)")
    made = subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, "python3 -m venv (Debian: python3-venv): " + made.stdout + made.stderr
    return path


def pip_install(venv, *args):
    installed = subprocess.run([str(venv / "bin" / "pip"), "install", "--no-index", "--no-build-isolation", *args],
                               env=ENV, capture_output=True, text=True, timeout=180)
    assert installed.returncode == 0, installed.stdout + installed.stderr


def run_in(venv, code):
    ran = subprocess.run([str(venv / "bin" / "python"), "-c", code], env=ENV, capture_output=True, text=True,
                         cwd="/")
    assert ran.returncode == 0, ran.stderr
    return ran.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A venv with the package installed from the source tree as users do (LICENSE there is a link)."""
    venv = make_venv(tmp_path_factory.mktemp("regular") / "wb-env")
    pip_install(venv, str(PACKAGE_DIR))
    return venv


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A copy of the source tree, which the tests may change."""
    copy = tmp_path_factory.mktemp("src") / "python"
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    return copy


@pytest.fixture(scope="module")
def editable(tmp_path_factory, source):
    """A venv with an editable install of the copy of the source tree."""
    venv = make_venv(tmp_path_factory.mktemp("editable") / "wb-env")
    pip_install(venv, "-e", str(source))
    return venv


def test_a_regular_install_imports_from_the_venv_and_sees_debians_numpy(installed):
    out = run_in(installed, "import numpy, weightbus; print(weightbus.library_version(), weightbus.__file__)")
    version, path = out.split()
    assert version == "0.1.0" and path.startswith(str(installed))


def test_an_editable_install_imports_the_source_tree_and_sees_its_changes(editable, source):
    with open(source / "weightbus" / "__init__.py", "a") as f:
        f.write("\nEDITED_AFTER_INSTALL = True\n")
    out = run_in(editable, "import weightbus; print(weightbus.__file__, weightbus.EDITED_AFTER_INSTALL)")
    assert out.split() == [str(source / "weightbus" / "__init__.py"), "True"]


METADATA = """import importlib.metadata as m
d = m.distribution("weightbus")
for key in ("Name", "Version", "Requires-Dist", "Provides-Extra", "Classifier", "Project-URL"):
    for value in d.metadata.get_all(key) or []:
        print(f"{key}: {value}")
"""


@pytest.mark.parametrize("kind", ["installed", "editable"])
def test_the_metadata_names_numpy_the_torch_extra_the_license_and_the_project_urls(kind, request):
    """The license is in the classifier: flit_core 3.8 writes no License field (it ignores [project]'s
    license.text), and the wheel carries the LICENSE file itself (next test)."""
    venv = request.getfixturevalue(kind)
    lines = set(run_in(venv, METADATA).splitlines())
    assert {"Name: weightbus", "Version: 0.1.0", "Requires-Dist: numpy", 'Requires-Dist: torch ; extra == "torch"',
            "Provides-Extra: torch", "Classifier: License :: OSI Approved :: Apache Software License",
            "Project-URL: Homepage, https://github.com/weightbus/weightbus",
            "Project-URL: Source, https://github.com/weightbus/weightbus"} <= lines


@pytest.mark.parametrize("kind", ["installed", "editable"])
def test_the_dist_info_holds_the_repositorys_license(kind, request):
    venv = request.getfixturevalue(kind)
    code = ("import importlib.metadata as m; "
            "print(m.distribution('weightbus').read_text('LICENSE'), end='')")
    assert run_in(venv, code) == LICENSE.read_text()
