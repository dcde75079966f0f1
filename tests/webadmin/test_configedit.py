"""mox.webaccount.configedit on real files: TOML comments survive, JSON configs work, a refused
edit leaves the file byte for byte, and the running server is told to reload."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mox.config.load import load_config
from mox.web.session import Sessions
from mox.webaccount.configedit import EditError, edit_config

TOML = """# The mail server of example.test.
hostname = "mail.example.test"  # the MX
postmaster = "alice"

[listeners.internal]
ips = ["127.0.0.1"]

[domains."example.test"]  # our only domain

# Alice runs the place.
[accounts.alice]
domain = "example.test"
destinations = { "alice@example.test" = {} }
"""


def _env(path: Path) -> tuple[Any, list[int]]:
    reloads: list[int] = []

    async def reload() -> None:
        reloads.append(1)

    env = SimpleNamespace(config=load_config(path), sessions=Sessions(), reload_config=reload)
    return env, reloads


def test_toml_comments_survive_and_reload(tmp_path: Path) -> None:
    path = tmp_path / "mox.toml"
    path.write_text(TOML)
    env, reloads = _env(path)

    def change(doc: Any) -> None:
        doc["accounts"]["alice"]["destinations"]["alice2@example.test"] = {"mailbox": "Two"}
        doc["accounts"]["bob"] = {
            "domain": "example.test",
            "destinations": {"bob@example.test": {}},
        }

    loaded = asyncio.run(edit_config(env, change))
    text = path.read_text()
    for comment in ("# The mail server", "# the MX", "# our only domain", "# Alice runs"):
        assert comment in text
    assert loaded.lookup("bob@example.test") is not None
    dests = load_config(path).config.accounts["alice"].destinations
    assert dests["alice2@example.test"].mailbox == "Two"
    assert reloads == [1]


def test_refused_edit_keeps_bytes(tmp_path: Path) -> None:
    path = tmp_path / "mox.toml"
    path.write_text(TOML)
    path.chmod(0o640)
    before = path.read_bytes()
    env, reloads = _env(path)

    def bad(doc: Any) -> None:
        doc["accounts"]["alice"]["domain"] = "nowhere.test"

    with pytest.raises(EditError) as exc:
        asyncio.run(edit_config(env, bad))
    assert any("nowhere.test" in p and "not in `domains`" in p for p in exc.value.problems)
    assert path.read_bytes() == before
    assert reloads == []

    def ok(doc: Any) -> None:
        doc["accounts"]["alice"]["full_name"] = "Alice"

    asyncio.run(edit_config(env, ok))
    assert path.stat().st_mode & 0o777 == 0o640  # the file keeps its permissions
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mox.toml"]  # no temporary files


def test_json_config(tmp_path: Path) -> None:
    path = tmp_path / "mox.json"
    data = {
        "hostname": "mail.example.test",
        "postmaster": "alice",
        "listeners": {"internal": {"ips": ["127.0.0.1"]}},
        "domains": {"example.test": {}},
        "accounts": {
            "alice": {"domain": "example.test", "destinations": {"alice@example.test": {}}}
        },
    }
    path.write_text(json.dumps(data))
    env, _ = _env(path)

    def change(doc: Any) -> None:
        doc["domains"]["example.test"]["aliases"] = {"team": {"addresses": ["alice@example.test"]}}

    asyncio.run(edit_config(env, change))
    assert json.loads(path.read_text())["domains"]["example.test"]["aliases"]["team"]
    assert load_config(path).lookup_alias("team@example.test") is not None
