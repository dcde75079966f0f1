"""Errors of the web API and request checks shared by its method families.

An error is JSON `{"Code": ..., "Message": ...}` (mox's webapi.Error) with status 400 for bad
input, 401 for bad credentials (with `WWW-Authenticate`, RFC 9110 §11.6.1), 403 for a browser
request from another site, 404 for an unknown method, mailbox, message or part, 413 for a request
that is too large.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

__all__ = ["REALM", "ApiError", "bad", "check_keys", "error_response", "not_found"]

REALM = 'Basic realm="mox webapi", charset="UTF-8"'  # RFC 7617 §2, §2.1


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def bad(message: str, code: str = "badRequest") -> ApiError:
    return ApiError(400, code, message)


def not_found(message: str, code: str = "notFound") -> ApiError:
    return ApiError(404, code, message)


def check_keys(obj: Any, allowed: set[str], what: str) -> dict[str, Any]:
    """obj as a JSON object with only the allowed keys (as mox: unknown fields are an error)."""
    if not isinstance(obj, dict):
        raise bad(f"{what} must be a JSON object")
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise bad(f"unknown field(s) in {what}: {', '.join(unknown)}")
    return obj


def error_response(err: ApiError) -> Response:
    headers = {"WWW-Authenticate": REALM} if err.status == 401 else None
    return JSONResponse({"Code": err.code, "Message": err.message}, err.status, headers=headers)
