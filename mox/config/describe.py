"""`mox config describe`: an annotated example config, generated from the models.

Every field appears with its description as a comment; fields the example sets are active lines,
the others are commented out with their default. The output is a valid config (a test loads it).
"""

from __future__ import annotations

import json
import textwrap
import types
import typing
from pathlib import Path
from typing import Any

import tomlkit
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from mox.config.model import Config

__all__ = ["EXAMPLE", "describe"]

EXAMPLE: dict[str, Any] = {
    "hostname": "mail.example.com",
    "data_dir": "data",
    "public_ips": ["198.51.100.10", "2001:db8::10"],
    "postmaster": "alice",
    "listeners": {
        "public": {
            "ips": ["0.0.0.0", "::"],  # noqa: S104 (an example for a public listener)
            "tls": {
                "cert_file": "tls/mail.example.com.crt",
                "key_file": "tls/mail.example.com.key",
            },
            "smtp": {"enabled": True},
            "submissions": {"enabled": True},
            "imaps": {"enabled": True},
        },
        "internal": {
            "ips": ["127.0.0.1", "::1"],
            "submission": {"enabled": True, "require_starttls": False},
            "imap": {"enabled": True, "require_starttls": False},
        },
    },
    "domains": {
        "example.com": {
            "dkim": {
                "selectors": {
                    "2026a": {
                        "private_key_file": "dkim/2026a._domainkey.example.com.rsa2048.pkcs8.pem"
                    },
                },
                "sign": ["2026a"],
            },
            "dmarc": {"localpart": "dmarcreports", "account": "alice", "mailbox": "DMARC"},
            "mta_sts": {"policy_id": "20261125T000000", "mode": "enforce"},
            "aliases": {"team": {"addresses": ["alice@example.com"]}},
        },
    },
    "accounts": {
        "alice": {
            "domain": "example.com",
            "destinations": {"alice@example.com": {}, "@example.com": {"mailbox": "Catchall"}},
            "full_name": "Alice Example",
        },
    },
}


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None


def _dict_model_of(annotation: Any) -> type[BaseModel] | None:
    if typing.get_origin(annotation) is dict:
        return _model_of(typing.get_args(annotation)[1])
    return None


def _list_model_of(annotation: Any) -> type[BaseModel] | None:
    if typing.get_origin(annotation) is list:
        return _model_of(typing.get_args(annotation)[0])
    return None


def _value_text(value: Any) -> str:
    if isinstance(value, Path):
        value = str(value)
    text: str = tomlkit.item(value).as_string()
    return text


def _default_text(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
        if isinstance(value, BaseModel):
            return "{}"
        return _value_text(value)
    if info.default is PydanticUndefined:
        return '"..."  # required'
    if info.default is None:
        return '"..."  # not set by default'
    return _value_text(info.default)


def _comment(lines: list[str], text: str | None, prefix: str = "") -> None:
    for line in textwrap.wrap(text or "", 96):
        lines.append(f"{prefix}# {line}")


def _key(name: str) -> str:
    return name if name.replace("_", "").replace("-", "").isalnum() else json.dumps(name)


def _emit(
    lines: list[str], model: type[BaseModel], data: dict[str, Any] | None, path: list[str]
) -> None:
    off = "" if data is not None else "# "
    nested: list[tuple[str, FieldInfo]] = []
    for name, info in model.model_fields.items():
        if (
            _model_of(info.annotation)
            or _dict_model_of(info.annotation)
            or _list_model_of(info.annotation)
        ):
            nested.append((name, info))
            continue
        _comment(lines, info.description, off)
        if data is not None and name in data:
            lines.append(f"{name} = {_value_text(data[name])}")
        else:
            lines.append(f"# {name} = {_default_text(info)}")
    for name, info in nested:
        sub = _model_of(info.annotation)
        lines.append("")
        if sub is not None:
            sub_data = data.get(name) if data is not None else None
            hdr = "# " if sub_data is None else ""
            _comment(lines, info.description, "")
            lines.append(f"{hdr}[{'.'.join([*path, _key(name)])}]")
            _emit(lines, sub, sub_data, [*path, _key(name)])
            continue
        list_model = _list_model_of(info.annotation)
        if list_model is not None:
            items = (data or {}).get(name) or [None]
            for item in items:
                _comment(lines, info.description, "")
                hdr = "# " if item is None else ""
                lines.append(f"{hdr}[[{'.'.join([*path, _key(name)])}]]")
                _emit(lines, list_model, item, [*path, _key(name)])
                lines.append("")
            continue
        item_model = _dict_model_of(info.annotation)
        if item_model is None:
            raise TypeError(f"{name}: not a model or dict of models")
        entries = (data or {}).get(name) or {"<name>": None}
        for key, entry in entries.items():
            _comment(lines, info.description, "")
            hdr = "# " if entry is None else ""
            lines.append(f"{hdr}[{'.'.join([*path, _key(name), _key(key)])}]")
            _emit(lines, item_model, entry, [*path, _key(name), _key(key)])
            lines.append("")


def describe() -> str:
    """The annotated example config as TOML text."""
    lines = [
        "# mox.toml: an annotated example. Every key of the format is shown with its meaning;",
        "# commented-out keys show their default. Paths are relative to this file's directory.",
        "# Validate with `mox config check mox.toml`; the JSON Schema is `mox config schema`.",
        "",
    ]
    _emit(lines, Config, EXAMPLE, [])
    text = "\n".join(lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.rstrip("\n") + "\n"
