"""`mox dkim ensure-keys`, `mox dkim txt` and `mox dmarc reports` on a config in a temp dir."""

from __future__ import annotations

from pathlib import Path

import tomlkit
from typer.testing import CliRunner

from mox.cli import app
from mox.dkim.keys import load_private_key, public_record
from mox.dns.records import DkimKey
from tests.conftest import minimal_config

runner = CliRunner()


def write(tmp_path: Path) -> Path:
    data = minimal_config()
    data["domains"]["example.test"]["dkim"] = {
        "selectors": {
            "2026a": {"private_key_file": "keys/2026a.rsa2048.privatekey.pkcs8.pem"},
            "2026e": {"private_key_file": "keys/2026e.ed25519.privatekey.pkcs8.pem"},
        },
        "sign": ["2026a"],
    }
    path = tmp_path / "mox.toml"
    path.write_text(tomlkit.dumps(data))
    return path


def test_ensure_keys_then_txt(tmp_path: Path) -> None:
    config = write(tmp_path)
    out = runner.invoke(app, ["dkim", "ensure-keys", "--config", str(config)])
    assert out.exit_code == 0, out.output
    assert "created rsa2048 key for 2026a._domainkey.example.test" in out.output
    assert "created ed25519 key for 2026e._domainkey.example.test" in out.output
    rsa_file = tmp_path / "keys/2026a.rsa2048.privatekey.pkcs8.pem"
    assert rsa_file.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert rsa_file.stat().st_mode & 0o777 == 0o600
    before = rsa_file.read_bytes()
    again = runner.invoke(app, ["dkim", "ensure-keys", "--config", str(config)])
    assert again.output == "all DKIM keys exist\n"
    assert rsa_file.read_bytes() == before
    txt = runner.invoke(app, ["dkim", "txt", "2026e", "--config", str(config)])
    assert txt.exit_code == 0, txt.output
    name, value = txt.output.strip().split(" TXT ")
    assert name == "2026e._domainkey.example.test."
    key = load_private_key(tmp_path / "keys/2026e.ed25519.privatekey.pkcs8.pem")
    assert DkimKey.parse(value.strip('"')) == public_record(key)
    long = runner.invoke(app, ["dkim", "txt", "2026a", "--config", str(config)])
    strings = long.output.strip().split(" TXT ")[1]
    assert strings.count('" "') == 1  # RSA-2048: two strings of at most 255 (RFC 1035 §3.3.14)
    missing = runner.invoke(app, ["dkim", "txt", "nope", "--config", str(config)])
    assert missing.exit_code == 1
    assert "no selector 'nope'" in missing.output


def test_dmarc_reports_empty(tmp_path: Path) -> None:
    config = write(tmp_path)
    out = runner.invoke(app, ["dmarc", "reports", "--config", str(config)], catch_exceptions=False)
    assert out.exit_code == 1  # the key files do not exist yet: the config does not load
    runner.invoke(app, ["dkim", "ensure-keys", "--config", str(config)])
    out = runner.invoke(app, ["dmarc", "reports", "--config", str(config)])
    assert (out.exit_code, out.output) == (0, "no DMARC reports\n")
