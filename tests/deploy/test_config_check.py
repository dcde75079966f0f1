"""What the deployers need from `mox config check`: a suffix-less JSON copy (Ansible's
`validate: … %s`) is read as JSON, and `--skip-file-checks` (the Nix build, where keys are made at
service start) checks everything but the existence of the files the config names."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from mox.cli import app
from tests.conftest import minimal_config


def test_suffixless_json_is_read_as_json(tmp_path: Path) -> None:
    path = tmp_path / "source"
    path.write_text(json.dumps(minimal_config(), indent=2))
    res = CliRunner().invoke(app, ["config", "check", str(path)])
    assert res.exit_code == 0, res.output
    assert f"{path}: ok" in res.output
    data = minimal_config()
    data["listeners"]["internal"]["smtp"] = {"enabled": True, "port": "abc"}
    path.write_text(json.dumps(data))
    res = CliRunner().invoke(app, ["config", "check", str(path)])
    assert res.exit_code == 1
    assert f"{path}: listeners.internal.smtp.port: " in res.output


def test_skip_file_checks(tmp_path: Path) -> None:
    data = minimal_config()
    data["domains"]["example.test"]["dkim"] = {
        "sign": ["2026a"],
        "selectors": {"2026a": {"private_key_file": "/var/lib/mox/dkim/missing.pem"}},
    }
    path = tmp_path / "mox.json"
    path.write_text(json.dumps(data))
    res = CliRunner().invoke(app, ["config", "check", str(path)])
    assert res.exit_code == 1
    assert "private_key_file: file '/var/lib/mox/dkim/missing.pem' does not exist" in res.output
    res = CliRunner().invoke(app, ["config", "check", "--skip-file-checks", str(path)])
    assert res.exit_code == 0, res.output
    # Everything else is still checked.
    data["postmaster"] = "nobody"
    path.write_text(json.dumps(data))
    res = CliRunner().invoke(app, ["config", "check", "--skip-file-checks", str(path)])
    assert res.exit_code == 1
    assert "postmaster: account 'nobody' is not in `accounts`" in res.output
