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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


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
