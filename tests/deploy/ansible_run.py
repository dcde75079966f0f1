"""Run ansible-playbook against the sshd target with the repository's role, and build the wheel
that the role installs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.sshd import Sshd

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_DIR = ROOT / "ansible"
BIN = Path(sys.executable).parent
TARGET_PYTHON = "/usr/bin/python3"


def tool(name: str) -> str:
    """An Ansible tool from the environment running the tests (the `deploy` dependency group)."""
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: install the `deploy` dependency group (nox -s tests does)")
    return found


def build_wheel(directory: Path) -> Path:
    """A wheel of this checkout, built in-process by hatchling (no network, no pip)."""
    directory.mkdir(parents=True, exist_ok=True)
    code = "import sys, hatchling.build as b; print(b.build_wheel(sys.argv[1]))"
    res = subprocess.run(
        [sys.executable, "-c", code, str(directory)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, f"building the wheel failed:\n{res.stdout}\n{res.stderr}"
    return directory / res.stdout.strip().splitlines()[-1]


@dataclass
class PlayResult:
    returncode: int
    output: str

    def recap(self) -> dict[str, int]:
        """The PLAY RECAP counters of the one host: ok, changed, failed, ..."""
        match = re.search(r"^target\s+:\s+(.*)$", self.output, re.MULTILINE)
        assert match, f"no PLAY RECAP line in:\n{self.output[-3000:]}"
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))}


def ansible_env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MOX"))}
    env.update(
        {
            "ANSIBLE_HOME": str(work / "ansible-home"),
            "ANSIBLE_LOCAL_TEMP": str(work / "ansible-local"),
            "ANSIBLE_ROLES_PATH": str(ANSIBLE_DIR / "roles"),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(work / "cp"),
            "ANSIBLE_PIPELINING": "true",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "false",
            "ANSIBLE_DEPRECATION_WARNINGS": "false",
            "ANSIBLE_TIMEOUT": "30",
            "LC_ALL": "C.UTF-8",
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    return env


def write_inventory(work: Path, sshd: Sshd) -> Path:
    inventory = {
        "mox": {
            "hosts": {
                "target": {
                    "ansible_host": "127.0.0.1",
                    "ansible_port": sshd.port,
                    "ansible_user": "root",
                    "ansible_become": False,
                    "ansible_ssh_private_key_file": str(sshd.client_key),
                    "ansible_ssh_common_args": (
                        f"-o UserKnownHostsFile={sshd.known_hosts} -o StrictHostKeyChecking=yes"
                    ),
                    "ansible_python_interpreter": TARGET_PYTHON,
                    "ansible_remote_tmp": str(work / "ansible-remote"),
                }
            }
        }
    }
    path = work / "inventory.json"
    path.write_text(json.dumps(inventory, indent=2))
    return path


def run_playbook(
    work: Path, inventory: Path, variables: dict[str, Any], *, timeout: float = 300
) -> PlayResult:
    vars_file = work / "vars.json"
    vars_file.write_text(json.dumps(variables, indent=2))
    res = subprocess.run(
        [
            tool("ansible-playbook"),
            "-i",
            str(inventory),
            "-e",
            f"@{vars_file}",
            str(ANSIBLE_DIR / "site.yml"),
        ],
        cwd=work,
        env=ansible_env(work),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    return PlayResult(res.returncode, res.stdout)
