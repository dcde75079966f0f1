"""The config loader (mox.config.load): random documents and random TOML text give ConfigError
with readable problems, never another exception."""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mox.config.load import ConfigError, LoadedConfig, parse_config, read_config_data
from tests.conftest import minimal_config

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEYS = [
    "hostname",
    "postmaster",
    "listeners",
    "domains",
    "accounts",
    "ips",
    "smtp",
    "imap",
    "enabled",
    "port",
    "tls",
    "destinations",
    "mailbox",
    "limits",
    "data_dir",
    "dns",
    "nameservers",
    "aliases",
    "addresses",
    "log_level",
    "acme",
    "quota_bytes",
    "x",
]
leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
)
doc = st.recursive(
    leaf,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=25,
)


@FUZZ
@given(st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), doc, max_size=6))
def test_random_documents(data: dict[str, Any]) -> None:
    problems = load_problems(lambda: parse_config(data, NOWHERE, check_files=False))
    assert problems is None or (problems and all(isinstance(p, str) for p in problems))


NOWHERE = Path("/nonexistent/mox.toml")


def load_problems(fn: Callable[[], LoadedConfig]) -> list[str] | None:
    """None when the config loads, else the problems of the ConfigError (the only error
    allowed to escape)."""
    try:
        loaded = fn()
    except ConfigError as exc:
        return list(exc.problems)
    assert loaded.config.hostname
    return None


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    return out


@FUZZ
@given(st.data())
def test_one_value_of_a_valid_config_replaced(data: st.DataObject) -> None:
    cfg = minimal_config()
    path = data.draw(st.sampled_from(_paths(cfg)))
    mutated = copy.deepcopy(cfg)
    node = mutated
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = data.draw(doc)
    problems = load_problems(lambda: parse_config(mutated, NOWHERE, check_files=False))
    assert problems is None or problems


toml_text = st.lists(
    st.sampled_from(
        [
            "[listeners.a]",
            "hostname = ",
            '"mail.example.test"',
            "ips = [",
            "]",
            "=",
            "[[x]]",
            "port = 25",
            "\n",
            "'",
            '"""',
            "{",
            "}",
            "enabled = true",
            "# c",
            "\\u00e9",
            "\x00",
        ]
    )
    | st.text(max_size=10),
    max_size=20,
).map("".join)


@FUZZ
@given(toml_text)
def test_random_toml_text(text: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "mox.toml"
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        problems = load_problems(
            lambda: parse_config(read_config_data(path), path, check_files=False)
        )
        assert problems is None or problems
