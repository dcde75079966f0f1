#!/usr/bin/env python3
"""Create .venv with mox installed, using nothing but the python3 standard library.

Works on a fresh Debian machine without python3-venv or pip: when the venv module cannot install
pip (Debian strips ensurepip), the venv is made without pip and pip is fetched from PyPI as a wheel,
which runs directly from the zip file to install itself. Re-running is cheap: nothing is reinstalled
unless pyproject.toml changed.

Usage: scripts/bootstrap.py [--dev]     (--dev adds the test, lint and nox tooling)
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"


def log(msg: str) -> None:
    print(f"bootstrap: {msg}", file=sys.stderr, flush=True)


def ensure_pip() -> None:
    if subprocess.run([str(PY), "-m", "pip", "--version"], capture_output=True).returncode == 0:
        return
    log("the venv has no pip (no ensurepip here); fetching pip from PyPI")
    index = os.environ.get("MOX_PYPI_JSON", "https://pypi.org/pypi/pip/json")
    with urllib.request.urlopen(index, timeout=60) as resp:  # noqa: S310 (https or a mirror)
        info = json.load(resp)
    wheel = next(u for u in info["urls"] if u["packagetype"] == "bdist_wheel")
    url = urllib.parse.urljoin(index, wheel["url"])  # mirrors may answer with relative URLs
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / wheel["filename"]
        with urllib.request.urlopen(url, timeout=120) as resp:  # noqa: S310
            data = resp.read()
        if hashlib.sha256(data).hexdigest() != wheel["digests"]["sha256"]:
            sys.exit("bootstrap: pip wheel checksum mismatch")
        path.write_bytes(data)
        subprocess.run([str(PY), f"{path}/pip", "install", "--quiet", str(path)], check=True)


def main() -> None:
    dev = "--dev" in sys.argv[1:]
    stamp_text = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp_text += " dev" if dev else ""
    stamp = VENV / ".mox-installed"
    if PY.exists() and stamp.exists():
        have = stamp.read_text()
        if have == stamp_text or (not dev and have.startswith(stamp_text.split()[0])):
            return
    if not PY.exists():
        log(f"creating {VENV}")
        try:
            venv.create(VENV, with_pip=True)
        except (subprocess.CalledProcessError, OSError):
            venv.create(VENV, with_pip=False, clear=True)
    ensure_pip()
    pip = [str(PY), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip>=25.1"], check=True)
    log("installing mox" + (" with the development tools" if dev else ""))
    subprocess.run(
        [*pip, "-e", str(ROOT), *(["--group", "dev"] if dev else [])],
        check=True,
        env={**os.environ, "PIP_NO_INPUT": "1"},
    )
    stamp.write_text(stamp_text)


if __name__ == "__main__":
    main()
