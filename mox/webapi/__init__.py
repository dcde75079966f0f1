"""The web API at /webapi/v0/ (as mox's webapi): JSON over POST, HTTP basic auth."""

from mox.webapi.api import ApiError, WebApi

__all__ = ["ApiError", "WebApi"]
