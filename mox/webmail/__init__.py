"""The webmail at /webmail/ (as mox's webmail): read, search, compose, move, flag, junk."""

from mox.webmail.app import routes

__all__ = ["routes"]
