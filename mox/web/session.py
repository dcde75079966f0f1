"""Login sessions for the web pages (webmail, account, admin): cookies, CSRF tokens, throttling.

As mox: a successful password login creates a session; the browser holds only a random token in
a cookie that is HttpOnly, Secure (on HTTPS), SameSite=Strict and scoped to the site's path
(`/webmail/`, `/account/`, `/admin/`), so one site's cookie never reaches another. Each session
also has a CSRF token (RFC-less, OWASP "synchronizer token" pattern) that pages send back in the
`x-mox-csrf` header (JavaScript calls) or a `csrf` form field; every request that changes state
must carry it, and must come from our own origin (`Origin`/`Sec-Fetch-Site`, as browsers send).

Password checks go through the same `ConfigAuthenticator` as SMTP and IMAP, so failed web logins
count in the same per-IP throttle. Sessions live in memory: a server restart logs everyone out,
which is the safe direction. Idle sessions expire after a day, any session after 30 days.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["Session", "Sessions", "Site", "client_ip"]

Site = Literal["webmail", "account", "admin"]

IDLE_SECONDS = 24 * 3600
MAX_AGE_SECONDS = 30 * 24 * 3600
MAX_SESSIONS = 10_000  # memory bound; the oldest go first
CSRF_HEADER = "x-mox-csrf"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


@dataclass
class Session:
    site: Site
    account: str  # account name; "" for the admin site
    login: str  # the address (or "admin") used to log in
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    created: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.time)

    def expired(self, now: float) -> bool:
        return now - self.last_used > IDLE_SECONDS or now - self.created > MAX_AGE_SECONDS


def client_ip(request: Request) -> str:
    return request.client.host if request.client is not None else ""


def cookie_name(site: Site) -> str:
    return f"mox{site}session"


def cookie_path(site: Site) -> str:
    return f"/{site}/"


class Sessions:
    """All web sessions of the server, by token."""

    def __init__(self) -> None:
        self._by_token: dict[str, Session] = {}

    def create(self, site: Site, account: str, login: str) -> tuple[str, Session]:
        now = time.time()
        if len(self._by_token) >= MAX_SESSIONS:
            self._sweep(now)
            while len(self._by_token) >= MAX_SESSIONS:
                oldest = min(self._by_token, key=lambda t: self._by_token[t].last_used)
                del self._by_token[oldest]
        token = secrets.token_urlsafe(32)
        session = Session(site, account, login)
        self._by_token[token] = session
        return token, session

    def _sweep(self, now: float) -> None:
        for token in [t for t, s in self._by_token.items() if s.expired(now)]:
            del self._by_token[token]

    def get(self, request: Request, site: Site) -> Session | None:
        """The request's live session for `site`, or None."""
        token = request.cookies.get(cookie_name(site), "")
        session = self._by_token.get(token) if token else None
        if session is None or session.site != site:
            return None
        now = time.time()
        if session.expired(now):
            del self._by_token[token]
            return None
        session.last_used = now
        return session

    def end(self, request: Request, site: Site) -> None:
        token = request.cookies.get(cookie_name(site), "")
        self._by_token.pop(token, None)

    def end_account(self, account: str) -> None:
        """Log out every session of an account (password changed, account removed)."""
        for token in [t for t, s in self._by_token.items() if s.account == account]:
            del self._by_token[token]

    @staticmethod
    def set_cookie(response: Response, request: Request, site: Site, token: str) -> None:
        response.set_cookie(
            cookie_name(site),
            token,
            max_age=MAX_AGE_SECONDS,
            path=cookie_path(site),
            httponly=True,
            secure=request.url.scheme == "https",
            samesite="strict",
        )

    @staticmethod
    def clear_cookie(response: Response, site: Site) -> None:
        response.delete_cookie(cookie_name(site), path=cookie_path(site))


def same_origin(request: Request) -> bool:
    """Whether a state-changing request comes from a page of ours. Browsers send
    `Sec-Fetch-Site` (Fetch Metadata) and/or `Origin` on POSTs; a request with neither is not from a
    browser page of another site, so it passes (the CSRF token still has to match)."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin == f"{request.url.scheme}://{host}"


def csrf_ok(request: Request, session: Session, form_value: str | None = None) -> bool:
    """Whether a state-changing request carries the session's CSRF token and our origin."""
    if request.method in _SAFE_METHODS:
        return True
    given = request.headers.get(CSRF_HEADER) or form_value or ""
    return same_origin(request) and hmac.compare_digest(given.encode(), session.csrf.encode())


Handler = Callable[[Request, Session], Awaitable[Response]]


def authenticated(
    sessions: Sessions,
    site: Site,
    on_missing: Callable[[Request], Response],
) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap a handler so it runs only with a live session of `site` and, for methods other than
    GET/HEAD, our origin and the CSRF token (header `x-mox-csrf`, or form field `csrf` of a
    urlencoded/multipart form post); `on_missing` answers when there is no session (a redirect
    to the login page for pages, 401 JSON for API calls). The handler can read the form again
    with `await request.form()` (starlette keeps it)."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            session = sessions.get(request, site)
            if session is None:
                return on_missing(request)
            form_value = None
            ctype = request.headers.get("content-type", "")
            if request.method not in _SAFE_METHODS and (
                ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data"))
            ):
                value = (await request.form()).get("csrf")
                form_value = value if isinstance(value, str) else None
            if not csrf_ok(request, session, form_value):
                return Response("bad or missing CSRF token\n", 403, media_type="text/plain")
            return await handler(request, session)

        return endpoint

    return wrap
