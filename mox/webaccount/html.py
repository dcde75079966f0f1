"""Small HTML builders for the server-rendered account and admin pages (no template engine).

Every text goes through `html.escape` unless it is `Safe` (already built by these functions), so
a value from the config, a message or a form can never inject markup. Pages carry their own
strict Content-Security-Policy: scripts and styles only from our own static files (no inline
code, no CDN), forms may only post back to us, and nothing may frame the page.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from mox.webaccount.logins import LoginLog

if TYPE_CHECKING:
    from mox.web.session import Session, Site
    from mox.web.sites import SiteEnv

__all__ = [
    "CSP",
    "STATIC_DIR",
    "Safe",
    "el",
    "form_text",
    "hidden",
    "page",
    "post_form",
    "redirect",
    "render",
    "table",
]

STATIC_DIR = Path(__file__).parent / "static"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

_VOID = frozenset({"input", "br", "meta", "link", "img", "hr"})

Child = object  # str (escaped), Safe, None (nothing), or an iterable of those


class Safe(str):
    """Markup that is already escaped."""

    __slots__ = ()


def render(value: Child) -> Safe:
    if isinstance(value, Safe):
        return value
    if value is None or value is False:
        return Safe("")
    if isinstance(value, (list, tuple)):
        return Safe("".join(render(v) for v in value))
    return Safe(html.escape(str(value)))


def _attr_name(key: str) -> str:
    return key.rstrip("_").replace("_", "-")


def el(tag: str, /, *children: Child, **attrs: str | int | bool | None) -> Safe:
    """`<tag attrs>children</tag>`; attribute `class_` is `class`, `data_x` is `data-x`; True
    gives a bare attribute, False/None leaves it out."""
    parts = [tag]
    for key, value in attrs.items():
        if value is None or value is False:
            continue
        if value is True:
            parts.append(_attr_name(key))
        else:
            parts.append(f'{_attr_name(key)}="{html.escape(str(value), quote=True)}"')
    start = f"<{' '.join(parts)}>"
    if tag in _VOID:
        return Safe(start)
    return Safe(start + render(list(children)) + f"</{tag}>")


def hidden(name: str, value: str) -> Safe:
    return el("input", type="hidden", name=name, value=value)


def post_form(
    action: str,
    csrf: str,
    *fields: Child,
    submit: str = "Save",
    confirm: str | None = None,
    class_: str | None = None,
    multipart: bool = False,
) -> Safe:
    """A POST form carrying the session's CSRF token; `confirm` asks before submitting (with
    JavaScript; without it the form just posts)."""
    return el(
        "form",
        hidden("csrf", csrf),
        *fields,
        el("button", submit, type="submit"),
        method="post",
        action=action,
        class_=class_,
        enctype="multipart/form-data" if multipart else None,
        data_confirm=confirm,
    )


def table(headers: Sequence[str], rows: Iterable[Sequence[Child]], *, empty: str = "") -> Safe:
    body = [el("tr", *(el("td", c) for c in row)) for row in rows]
    if not body and empty:
        return el("p", empty, class_="empty")
    return el(
        "table",
        el("thead", el("tr", *(el("th", h) for h in headers))),
        el("tbody", *body),
    )


def page(
    title: str,
    body: Child,
    *,
    site: str,
    nav: Sequence[tuple[str, str]] = (),
    csrf: str | None = None,
    notice: str = "",
    problems: Sequence[str] = (),
    status: int = 200,
    refresh: int | None = None,
) -> HTMLResponse:
    """A whole page with the site's navigation, a notice (success) or problems (errors) on top."""
    logout = (
        post_form(f"/{site}/logout", csrf, submit="Log out", class_="logout")
        if csrf is not None
        else None
    )
    header = el(
        "header",
        el("nav", *(el("a", label, href=href) for href, label in nav)),
        logout,
    )
    messages = []
    if notice:
        messages.append(el("p", notice, class_="notice", role="status"))
    if problems:
        messages.append(
            el("div", el("ul", *(el("li", p) for p in problems)), class_="problems", role="alert")
        )
    head = el(
        "head",
        el("meta", charset="utf-8"),
        el("meta", name="viewport", content="width=device-width, initial-scale=1"),
        el("meta", http_equiv="refresh", content=str(refresh)) if refresh is not None else None,
        el("title", f"{title} - mox"),
        el("link", rel="stylesheet", href=f"/{site}/static/style.css"),
        el("script", type="module", src=f"/{site}/static/site.js"),
    )
    doc = Safe(
        "<!doctype html>\n"
        + el(
            "html",
            head,
            el("body", header, el("main", el("h1", title), *messages, body)),
            lang="en",
        )
    )
    return HTMLResponse(
        doc,
        status,
        headers={
            "content-security-policy": CSP,
            "x-frame-options": "DENY",
            "cache-control": "no-store",
            # Not the default no-referrer: with it, Chromium sends "Origin: null" on our own
            # form posts, which the origin check (mox.web.session.same_origin) must refuse.
            # Other sites still get no referrer.
            "referrer-policy": "same-origin",
        },
    )


class PageSite:
    """What the account and admin sites share: the site's name and navigation, a notice shown
    once after a redirect (by the session's CSRF token), the login history, and `show` for a
    page of the logged-in session."""

    SITE: Site
    NAV: Sequence[tuple[str, str]] = ()

    def __init__(self, env: SiteEnv) -> None:
        self.env = env
        self.notices: dict[str, str] = {}  # by session CSRF token: shown once after a redirect
        self._logins: LoginLog | None = None

    @property
    def logins(self) -> LoginLog:
        if self._logins is None:
            self._logins = LoginLog.in_data_dir(self.env.config.data_dir)
        return self._logins

    def logged_in(self, request: Request) -> bool:
        return self.env.sessions.get(request, self.SITE) is not None

    def start_session(self, request: Request, account: str, login: str) -> RedirectResponse:
        """After a successful login: a new session, its cookie, and the site's first page."""
        token, _ = self.env.sessions.create(self.SITE, account, login)
        response = redirect(f"/{self.SITE}/")
        self.env.sessions.set_cookie(response, request, self.SITE, token)
        return response

    async def logout(self, request: Request, session: Session) -> Response:
        self.env.sessions.end(request, self.SITE)
        response = redirect(f"/{self.SITE}/login")
        self.env.sessions.clear_cookie(response, self.SITE)
        return response

    def notice(self, session: Session, text: str) -> None:
        if len(self.notices) > 10_000:
            self.notices.clear()
        self.notices[session.csrf] = text

    def show(
        self,
        session: Session,
        title: str,
        body: Child,
        *,
        problems: list[str] | None = None,
        status: int = 200,
        refresh: int | None = None,
    ) -> HTMLResponse:
        """The page; with problems, status 400 unless another error status is given."""
        return page(
            title,
            body,
            site=self.SITE,
            nav=self.NAV,
            csrf=session.csrf,
            notice=self.notices.pop(session.csrf, ""),
            problems=problems or [],
            status=400 if problems and status == 200 else status,
            refresh=refresh,
        )


def cross_site_refused() -> Response:
    """A login form posted from another site (mox.web.session.same_origin said no)."""
    return Response("cross-site login refused\n", 403, media_type="text/plain")


def redirect(url: str) -> RedirectResponse:
    """After a POST: 303 so the browser GETs the page (no re-post on reload)."""
    return RedirectResponse(url, 303)


def form_text(form: Any, name: str, limit: int = 1000) -> str:
    """A text field of a posted form, stripped and cut to `limit` characters ("" if absent)."""
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""
