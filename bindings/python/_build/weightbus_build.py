"""A PEP 517 build backend for the weightbus package that needs nothing but the standard library.

It packs weightbus/ into a pure-Python wheel (and the project into an sdist), so that
`pip install ./bindings/python` works without network access or setuptools.
"""
from __future__ import annotations

import base64
import hashlib
import io
import re
import tarfile
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "weightbus"
TAG = "py3-none-any"


def _project() -> Dict[str, str]:
    """name, version, description and requires-python from pyproject.toml's [project] table."""
    text = (ROOT / "pyproject.toml").read_text()
    table = text.split("[project]", 1)[1]
    return {key: value for key, value in re.findall(r'^([a-z-]+) = "([^"]*)"', table, re.MULTILINE)}


def _metadata() -> str:
    p = _project()
    readme = (ROOT / "README.md").read_text()
    return (f"Metadata-Version: 2.1\nName: {p['name']}\nVersion: {p['version']}\nSummary: {p['description']}\n"
            f"Requires-Python: {p['requires-python']}\nLicense: Apache-2.0\n"
            f"Description-Content-Type: text/markdown\n\n{readme}")


def _package_files() -> List[Path]:
    return sorted(f for f in (ROOT / PACKAGE).rglob("*")
                  if f.is_file() and "__pycache__" not in f.parts and f.suffix in (".py", ".typed"))


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _dist_info() -> str:
    p = _project()
    return f"{p['name']}-{p['version']}.dist-info"


def _dist_info_files() -> List[Tuple[str, bytes]]:
    wheel = f"Wheel-Version: 1.0\nGenerator: weightbus_build\nRoot-Is-Purelib: true\nTag: {TAG}\n"
    return [(f"{_dist_info()}/METADATA", _metadata().encode()), (f"{_dist_info()}/WHEEL", wheel.encode()),
            (f"{_dist_info()}/top_level.txt", f"{PACKAGE}\n".encode())]


def get_requires_for_build_wheel(config_settings: Optional[dict] = None) -> List[str]:
    return []


def get_requires_for_build_sdist(config_settings: Optional[dict] = None) -> List[str]:
    return []


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: Optional[dict] = None) -> str:
    target = Path(metadata_directory) / _dist_info()
    target.mkdir(parents=True, exist_ok=True)
    for name, data in _dist_info_files():
        (Path(metadata_directory) / name).write_bytes(data)
    return _dist_info()


def build_wheel(wheel_directory: str, config_settings: Optional[dict] = None,
                metadata_directory: Optional[str] = None) -> str:
    p = _project()
    filename = f"{p['name']}-{p['version']}-{TAG}.whl"
    entries = [(str(f.relative_to(ROOT)), f.read_bytes()) for f in _package_files()] + _dist_info_files()
    record = [_record_line(name, data) for name, data in entries] + [f"{_dist_info()}/RECORD,,"]
    with zipfile.ZipFile(Path(wheel_directory) / filename, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in entries:
            wheel.writestr(name, data)
        wheel.writestr(f"{_dist_info()}/RECORD", "\n".join(record) + "\n")
    return filename


def build_sdist(sdist_directory: str, config_settings: Optional[dict] = None) -> str:
    p = _project()
    base = f"{p['name']}-{p['version']}"
    files = [ROOT / "pyproject.toml", ROOT / "README.md", ROOT / "_build" / "weightbus_build.py"] + _package_files()
    with tarfile.open(Path(sdist_directory) / f"{base}.tar.gz", "w:gz") as sdist:
        for f in files:
            sdist.add(f, arcname=f"{base}/{f.relative_to(ROOT)}")
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        data = _metadata().encode()
        info.size = len(data)
        sdist.addfile(info, io.BytesIO(data))
    return f"{base}.tar.gz"
