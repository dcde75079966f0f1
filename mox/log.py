"""Logging: package-named stdlib loggers rendered by structlog.

`mox serve` logs logfmt lines (journald-friendly), the CLI and localserve readable console lines.
Values under secret-looking keys are redacted before rendering, wherever they come from.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

__all__ = ["setup_logging"]

_SECRET_KEYS = ("password", "passwd", "secret", "token", "credentials", "authorization")
LEVELS = {
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": 5,
}
logging.addLevelName(5, "TRACE")


def _redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if any(s in key.lower() for s in _SECRET_KEYS):
            event[key] = "<redacted>"
    return event


def setup_logging(level: str = "info", fmt: Literal["logfmt", "console"] = "console") -> None:
    """Route all `logging` output through structlog, as logfmt or console lines, to stderr."""
    renderer: Any
    if fmt == "logfmt":
        renderer = structlog.processors.LogfmtRenderer(
            key_order=["time", "level", "logger", "event"], drop_missing=True
        )
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS.get(level, logging.INFO))
    # Library chatter stays at warning unless we trace.
    for noisy in ("mail.log", "asyncio", "sqlite_utils"):
        logging.getLogger(noisy).setLevel(logging.WARNING if level != "trace" else 5)
