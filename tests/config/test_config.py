"""The declarative config: validation errors with key paths, cross-field rules, lookups, CLI."""

from __future__ import annotations

import json
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
import tomlkit

from mox.config.describe import describe
from mox.config.load import ConfigError, load_config, parse_config
from mox.config.model import Config
from mox.config.schema import schema_json
from tests.conftest import MOX, minimal_config

ROOT = Path(__file__).resolve().parents[2]


def problems_of(data: dict[str, object], path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, path)
    return info.value.problems


def test_minimal_config_loads(tmp_path: Path) -> None:
    loaded = parse_config(minimal_config(), tmp_path / "mox.toml")
    assert loaded.config.hostname == "mail.example.test"
    assert loaded.data_dir == tmp_path / "data"
    assert loaded.lookup("alice@example.test") is not None


def test_wrong_type_names_file_and_key_path(tmp_path: Path) -> None:
    data = minimal_config()
    data["listeners"]["internal"]["smtp"] = {"enabled": True, "port": "twenty-five"}
    problems = problems_of(data, tmp_path / "mox.toml")
    assert len(problems) == 1
    assert problems[0].startswith(f"{tmp_path / 'mox.toml'}: listeners.internal.smtp.port: ")
    assert "integer" in problems[0]


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    data = minimal_config()
    data["accounts"]["alice"]["pasword_file"] = "x"
    problems = problems_of(data, tmp_path / "mox.toml")
    assert problems == [
        f"{tmp_path / 'mox.toml'}: accounts.alice.pasword_file: unknown key "
        "(not part of the config format; see `mox config describe`)"
    ]


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    data = minimal_config()
    data["hostname"] = "not a host"
    data["listeners"]["internal"]["ips"] = ["300.1.1.1"]
    problems = problems_of(data, tmp_path / "mox.toml")
    keys = sorted(p.split(": ")[1] for p in problems)
    assert keys == ["hostname", "listeners.internal.ips[0]"]


def test_cross_field_rules(tmp_path: Path) -> None:
    data = minimal_config()
    data["postmaster"] = "nobody"
    data["accounts"]["bob"] = {
        "domain": "other.test",
        "destinations": {"ALICE@example.test": {}, "bob@elsewhere.test": {}},
    }
    data["listeners"]["internal"]["imaps"] = {"enabled": True}
    problems = problems_of(data, tmp_path / "mox.toml")
    text = "\n".join(problems)
    assert "postmaster: account 'nobody' is not in `accounts`" in text
    assert "accounts.bob.domain: domain 'other.test' is not in `domains`" in text
    assert "address already belongs to account 'alice'" in text
    assert "domain 'elsewhere.test' is not in `domains`" in text
    assert "listeners.internal.imaps: needs TLS" in text


def test_port_clash_detected(tmp_path: Path) -> None:
    data = minimal_config()
    data["listeners"]["internal"]["smtp"] = {"enabled": True, "port": 2525}
    data["listeners"]["internal"]["submission"] = {"enabled": True, "port": 2525}
    problems = problems_of(data, tmp_path / "mox.toml")
    assert any(
        "port 2525 on 127.0.0.1 is also used by listeners.internal.smtp" in p for p in problems
    )


def test_missing_files_named(tmp_path: Path) -> None:
    data = minimal_config()
    data["accounts"]["alice"]["password_file"] = "secrets/alice"
    problems = problems_of(data, tmp_path / "mox.toml")
    assert problems == [
        f"{tmp_path / 'mox.toml'}: accounts.alice.password_file: "
        "file 'secrets/alice' does not exist"
    ]


def test_lookup_subaddress_catchall_postmaster_case(tmp_path: Path) -> None:
    data = minimal_config()
    data["accounts"]["bob"] = {
        "domain": "example.test",
        "destinations": {"@example.test": {"mailbox": "Catchall"}},
    }
    loaded = parse_config(data, tmp_path / "mox.toml")

    def account(address: str) -> str | None:
        target = loaded.lookup(address)
        return None if target is None else target.account

    assert account("Alice+news@Example.TEST") == "alice"
    catch = loaded.lookup("someone@example.test")
    assert catch is not None
    assert (catch.account, catch.destination.mailbox) == ("bob", "Catchall")
    assert account("postmaster@example.test") == "alice"
    assert loaded.lookup("alice@other.test") is None
    assert loaded.lookup("no-at-sign") is None


def test_idna_domain_normalised(tmp_path: Path) -> None:
    data = minimal_config()
    data["domains"] = {"Bücher.example": {}}
    data["accounts"]["alice"] = {
        "domain": "xn--bcher-kva.example",
        "destinations": {"alice@bücher.example": {}},
    }
    loaded = parse_config(data, tmp_path / "mox.toml")
    assert list(loaded.config.domains) == ["xn--bcher-kva.example"]
    assert loaded.lookup("alice@BÜCHER.example") is not None


def test_toml_syntax_error(write_config: Callable[..., Path]) -> None:
    path = write_config('hostname = "x\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems[0].startswith(f"{path}: TOML syntax: ")


def test_json_config_accepted(write_config: Callable[..., Path]) -> None:
    path = write_config(json.dumps(minimal_config()), "mox.json")
    assert load_config(path).config.postmaster == "alice"


def test_describe_is_a_valid_documented_config() -> None:
    text = describe()
    data = tomllib.loads(text)
    cfg = Config.model_validate(data)
    assert cfg.hostname == "mail.example.com"
    # Every field of every model is shown with its description.
    schema = json.loads(schema_json())
    for model in [schema, *schema["$defs"].values()]:
        for name, prop in model.get("properties", {}).items():
            assert prop.get("description"), f"{model.get('title')}.{name} has no description"
            shown = (f"{name} =", f"[{name}]", f"[{name}.", f".{name}]", f".{name}.")
            assert any(s in text for s in shown), name


def test_schema_committed_matches_models() -> None:
    committed = (ROOT / "schemas" / "mox.schema.json").read_text()
    assert committed == schema_json(), "run: nox -s schema -- --fix"


@pytest.mark.integration
def test_cli_check_exit_codes(write_config: Callable[..., Path], mox_env: dict[str, str]) -> None:
    good = write_config(tomlkit.dumps(minimal_config()), "good.toml")
    res = subprocess.run(
        [*MOX, "config", "check", str(good)],
        capture_output=True,
        text=True,
        env=mox_env,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert "ok" in res.stdout

    bad = minimal_config()
    bad["limits"] = {"max_recipients": "many"}
    bad["accounts"]["alice"]["destinations"]["alice@example.test"] = {"mailboxx": "x"}
    path = write_config(tomlkit.dumps(bad), "bad.toml")
    res = subprocess.run(
        [*MOX, "config", "check", str(path)],
        capture_output=True,
        text=True,
        env=mox_env,
        timeout=60,
    )
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert sorted(line.split(": ")[1] for line in lines) == [
        'accounts.alice.destinations."alice@example.test".mailboxx',
        "limits.max_recipients",
    ]
    assert all(line.startswith(f"{path}: ") for line in lines)


@pytest.mark.integration
def test_cli_schema_equals_committed(mox_env: dict[str, str]) -> None:
    res = subprocess.run(
        [*MOX, "config", "schema"],
        capture_output=True,
        text=True,
        env=mox_env,
        timeout=60,
        check=True,
    )
    assert res.stdout == (ROOT / "schemas" / "mox.schema.json").read_text()
