"""Checks of the deployment files that run everywhere CI runs: every .nix file parses (Debian's
nix-bin; Nix cannot fetch nixpkgs here, so nothing is evaluated or built), the Ansible role passes
ansible-lint's production profile and the playbook passes --syntax-check, and the README documents
every NixOS module option."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.ansible_run import ANSIBLE_DIR, ROOT, ansible_env, tool

NIX_FILES = sorted(
    p for p in ROOT.rglob("*.nix") if not any(part.startswith(".") for part in p.parts)
)


def test_there_are_nix_files() -> None:
    names = {str(p.relative_to(ROOT)) for p in NIX_FILES}
    assert {"flake.nix", "nix/package.nix", "nix/module.nix", "nix/tests/vm.nix"} <= names


@pytest.mark.integration
@pytest.mark.parametrize("path", NIX_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_nix_file_parses(path: Path) -> None:
    exe = shutil.which("nix-instantiate")
    if exe is None:
        pytest.fail("nix-instantiate not found: install Debian's nix-bin (scripts/system_deps.py)")
    res = subprocess.run([exe, "--parse", str(path)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip(), "nix-instantiate printed no expression"


def test_nix_parse_catches_errors(tmp_path: Path) -> None:
    """The parse check can fail: a broken expression is refused."""
    exe = shutil.which("nix-instantiate")
    if exe is None:
        pytest.fail("nix-instantiate not found: install Debian's nix-bin (scripts/system_deps.py)")
    bad = tmp_path / "bad.nix"
    bad.write_text("{ a = 1; b = ; }\n")
    res = subprocess.run([exe, "--parse", str(bad)], capture_output=True, text=True, timeout=60)
    assert res.returncode != 0
    assert "syntax error" in res.stderr


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ansible_lint_production(tmp_path: Path) -> None:
    res = subprocess.run(
        [tool("ansible-lint"), "--offline", "--profile", "production", "--nocolor"],
        cwd=ANSIBLE_DIR,
        env=ansible_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Profile 'production' was required, and it passed" in res.stdout + res.stderr


@pytest.mark.integration
def test_playbook_syntax_check(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text((ANSIBLE_DIR / "inventory" / "hosts.example.yml").read_text())
    res = subprocess.run(
        [tool("ansible-playbook"), "--syntax-check", "-i", str(inventory), "site.yml"],
        cwd=ANSIBLE_DIR,
        env=ansible_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "playbook: site.yml" in res.stdout


def test_readme_documents_every_module_option() -> None:
    module = (ROOT / "nix" / "module.nix").read_text()
    options = re.findall(r"^    (\w+) = lib\.mk(?:Option|EnableOption)\b", module, re.MULTILINE)
    assert {"enable", "package", "settings", "openFirewall"} <= set(options)
    readme = (ROOT / "README.md").read_text()
    missing = [o for o in options if f"`services.mox.{o}`" not in readme]
    assert not missing, f"README.md does not document services.mox options: {missing}"


def test_unit_hardening_is_the_same_in_nix_and_ansible() -> None:
    """The NixOS unit and the Ansible unit template carry the same hardening settings."""
    template = (ANSIBLE_DIR / "roles" / "mox" / "templates" / "mox.service.j2").read_text()
    module = (ROOT / "nix" / "module.nix").read_text()
    keys = re.findall(
        r"^(Protect\w+|Restrict\w+|Private\w+|NoNewPrivileges|LockPersonality|"
        r"MemoryDenyWriteExecute|SystemCallFilter|SystemCallArchitectures|UMask|"
        r"CapabilityBoundingSet|AmbientCapabilities|RemoveIPC)=",
        template,
        re.M,
    )
    assert len(set(keys)) >= 20
    missing = [k for k in set(keys) if not re.search(rf"^\s+{k} = ", module, re.MULTILINE)]
    assert not missing, f"nix/module.nix lacks: {missing}"
