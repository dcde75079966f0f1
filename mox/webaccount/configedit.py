"""Editing the config file from the web pages (admin and account), safely.

An edit reads the file as it is now (TOML with tomlkit, so comments and layout stay; JSON with
json), applies one change to the document, and checks the whole result with
`mox.config.load.parse_config`, the same checks as `mox config check`. Only a config that passes
is written: to a temporary file in the same directory, fsynced, renamed over the old one (atomic
on POSIX), and the directory fsynced. Then the running server re-reads it (`reload_config`), so
a new account can log in at once. A refused edit leaves the file byte for byte as it was and
returns every problem, for the page to show.

Edits are serialised per server (one lock), so two admins cannot lose each other's change.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomlkit

from mox.config.load import ConfigError, LoadedConfig, parse_config
from mox.web.session import Sessions

if TYPE_CHECKING:
    from mox.web.sites import SiteEnv

__all__ = ["EditError", "edit_config"]

Change = Callable[[Any], None]

_locks: weakref.WeakKeyDictionary[Sessions, asyncio.Lock] = weakref.WeakKeyDictionary()


class EditError(Exception):
    """The edit was refused; nothing was written. `problems` are lines for the page."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _is_json(path: Path, text: str) -> bool:
    return path.suffix.lower() == ".json" or text.lstrip().startswith("{")


def _write_atomic(path: Path, data: bytes) -> None:
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _edit(path: Path, change: Change) -> LoadedConfig:
    text = path.read_text("utf-8")
    as_json = _is_json(path, text)
    doc: Any = json.loads(text) if as_json else tomlkit.parse(text)
    change(doc)  # raises EditError for refusals of its own
    new_text = (
        json.dumps(doc, indent=2, ensure_ascii=False) + "\n" if as_json else tomlkit.dumps(doc)
    )
    plain = json.loads(new_text) if as_json else tomlkit.parse(new_text).unwrap()
    try:
        loaded = parse_config(plain, path)
    except ConfigError as exc:
        raise EditError(exc.problems) from None
    if new_text != text:
        _write_atomic(path, new_text.encode("utf-8"))
    return loaded


async def edit_config(env: SiteEnv, change: Change) -> LoadedConfig:
    """Apply `change` to the config document, check, write, reload; raises EditError."""
    lock = _locks.setdefault(env.sessions, asyncio.Lock())
    async with lock:
        try:
            loaded = await asyncio.to_thread(_edit, env.config.path, change)
        except (OSError, ValueError) as exc:  # unreadable file, TOML/JSON syntax
            raise EditError([f"{env.config.path}: {exc}"]) from None
        if env.reload_config is not None:
            try:
                await env.reload_config()
            except ConfigError as exc:  # changed on disk meanwhile by someone else
                raise EditError(exc.problems) from None
        return loaded
