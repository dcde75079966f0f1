"""Shared fixtures: free ports, a minimal valid config, the mox command."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

MOX = [sys.executable, "-m", "mox"]


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A loopback port free now, and never one this process was given before: the kernel hands
    out a just-closed port again, so two calls before either port is bound could collide (a
    config with the same port twice was refused, seen in a full run)."""
    for _ in range(1000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError("no new free port")


def minimal_config() -> dict[str, Any]:
    return {
        "hostname": "mail.example.test",
        "postmaster": "alice",
        "listeners": {"internal": {"ips": ["127.0.0.1"]}},
        "domains": {"example.test": {}},
        "accounts": {
            "alice": {
                "domain": "example.test",
                "destinations": {"alice@example.test": {}},
            },
        },
    }


@pytest.fixture
def mox_env() -> dict[str, str]:
    """Environment for running `python -m mox` in a subprocess (no user config dir leaks in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOX")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    def write(text: str, name: str = "mox.toml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write
