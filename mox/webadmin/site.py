"""The admin pages at /admin/ (reference §1.9, webadmin): domains, accounts, aliases, DNS
records and dnscheck, the queue, DMARC and TLS reports, and a chart of deliveries and junk.

Enabled only when the config names an `admin_password_file` (written by `mox admin passwd`);
otherwise every admin URL answers 404. The admin password is checked against the derived
credentials in that file, and failures count in the same per-IP throttle as SMTP, IMAP and the
other web logins. Pages are server-rendered HTML (mox.webaccount.html); every change is a form
POST with the session's CSRF token, and config changes go through mox.webaccount.configedit
(checked before writing, written atomically, applied to the running server at once).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from mox import metrics
from mox.auth.password import Credentials, verify_password
from mox.web.session import Session, authenticated, client_ip, same_origin
from mox.webaccount.configedit import Change, EditError, edit_config
from mox.webaccount.html import (
    STATIC_DIR,
    Child,
    PageSite,
    cross_site_refused,
    el,
    form_text,
    page,
    redirect,
    table,
)
from mox.webaccount.logins import ADMIN
from mox.webadmin import accounts, domains, ops
from mox.webadmin.stats import daily_counts, svg_chart

if TYPE_CHECKING:
    from mox.web.sites import SiteEnv

__all__ = ["AdminSite", "admin_routes"]

log = logging.getLogger(__name__)

SITE: Literal["admin"] = "admin"
NAV = [
    ("/admin/", "Overview"),
    ("/admin/domains", "Domains"),
    ("/admin/accounts", "Accounts"),
    ("/admin/queue", "Queue"),
    ("/admin/reports", "Reports"),
]

Handler = Callable[["AdminSite", Request, Session], Awaitable[Response]]


class AdminSite(PageSite):
    SITE = SITE
    NAV = NAV

    @property
    def enabled(self) -> bool:
        return self.env.config.config.admin_password_file is not None

    async def edit(
        self,
        session: Session,
        change: Change,
        done: str,
        back: str,
        on_error: Callable[[list[str]], Awaitable[Response]],
    ) -> Response:
        """Apply a config change; on success a notice and a redirect to `back`, else the page
        again with the problems (the file is untouched)."""
        try:
            await edit_config(self.env, change)
        except EditError as exc:
            return await on_error(exc.problems)
        log.info("config changed from the admin pages", extra={"change": done})
        self.notice(session, done)
        return redirect(back)

    # --- login ---

    def disabled(self) -> Response:
        return page(
            "Admin pages disabled",
            el(
                "p",
                "The admin pages are disabled: the config has no admin_password_file. "
                "Set one and run `mox admin passwd` to enable them.",
            ),
            site=SITE,
            status=404,
        )

    def login_page(self, problems: list[str] | None = None, status: int = 200) -> Response:
        body = el(
            "form",
            el(
                "label",
                "Admin password",
                el(
                    "input",
                    type="password",
                    name="password",
                    required=True,
                    autocomplete="current-password",
                    autofocus=True,
                ),
            ),
            el("button", "Log in", type="submit"),
            method="post",
            action="/admin/login",
            class_="login",
        )
        return page("Admin login", body, site=SITE, problems=problems or [], status=status)

    async def check_password(self, password: str, ip: str) -> bool:
        """The admin password against the file; failures go through the shared throttle
        (`conclude`, which also delays); a throttled IP is refused without a check."""
        auth = self.env.authenticator
        name = self.env.config.config.admin_password_file
        ok = False
        if name is not None and not auth.throttled(ip):
            path = self.env.config.resolve(name)
            try:
                creds = Credentials.from_text(path.read_text().strip())
            except (OSError, ValueError) as exc:
                log.error("cannot read the admin password file", extra={"err": str(exc)})
            else:
                ok = await asyncio.to_thread(verify_password, creds, password)
        if ok:
            metrics.auth_result("webadmin", True)
            return True
        await auth.conclude("admin", False, remote_ip=ip, protocol="webadmin")
        return False

    async def login(self, request: Request) -> Response:
        if not self.enabled:
            return self.disabled()
        if request.method == "GET":
            return redirect("/admin/") if self.logged_in(request) else self.login_page()
        if not same_origin(request):
            return cross_site_refused()
        form = await request.form()
        ip = client_ip(request)
        ok = await self.check_password(form_text(form, "password"), ip)
        await asyncio.to_thread(self.logins.record, ADMIN, "admin", ip, "webadmin", ok)
        if not ok:
            return self.login_page(["Login failed: wrong password."], 401)
        log.info("admin logged in", extra={"ip": ip})
        return self.start_session(request, "", "admin")

    # --- overview ---

    async def overview(self, request: Request, session: Session) -> Response:
        cfg = self.env.config.config
        counts = await asyncio.to_thread(daily_counts, self.env.config)
        history = await asyncio.to_thread(self.logins.recent, ADMIN, 20)
        total_del = sum(c.delivered for c in counts)
        total_junk = sum(c.junk for c in counts)
        body: list[Child] = [
            table(
                ["Host name", "Domains", "Accounts"],
                [[cfg.hostname, str(len(cfg.domains)), str(len(cfg.accounts))]],
            ),
            el("h2", "Incoming mail, last 30 days"),
            el(
                "p",
                el("span", f"■ delivered ({total_del})", class_="legend-delivered"),
                " ",
                el("span", f"■ junk ({total_junk})", class_="legend-junk"),
            ),
            svg_chart(counts),
            el("h2", "Recent admin logins"),
            table(
                ["Time (UTC)", "IP", "Result"],
                [[r.time, r.ip, "ok" if r.success else "failed"] for r in history],
                empty="No admin logins recorded yet.",
            ),
        ]
        return self.show(session, "Admin", body)

    # --- routes ---

    def routes(self) -> list[BaseRoute]:
        def to_login(request: Request) -> Response:
            return redirect("/admin/login")

        auth = authenticated(self.env.sessions, SITE, to_login)

        def guard(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
            inner = auth(functools.partial(handler, self))

            async def endpoint(request: Request) -> Response:
                if not self.enabled:
                    return self.disabled()
                return await inner(request)

            return endpoint

        async def to_index(request: Request) -> Response:
            return redirect("/admin/") if self.enabled else self.disabled()

        post = ["POST"]
        return [
            Route("/admin/login", self.login, methods=["GET", "POST"]),
            Route("/admin/logout", guard(AdminSite.logout), methods=post),
            Route("/admin/", guard(AdminSite.overview)),
            Route("/admin/domains", guard(domains.list_domains)),
            Route("/admin/domains/add", guard(domains.add_domain), methods=post),
            Route("/admin/domains/remove", guard(domains.remove_domain), methods=post),
            Route("/admin/domains/{domain}", guard(domains.domain_page)),
            Route("/admin/domains/{domain}/dns", guard(domains.dns_records)),
            Route("/admin/domains/{domain}/settings", guard(domains.domain_settings), methods=post),
            Route("/admin/domains/{domain}/dnscheck", guard(domains.dnscheck), methods=post),
            Route("/admin/aliases/add", guard(domains.add_alias), methods=post),
            Route("/admin/aliases/remove", guard(domains.remove_alias), methods=post),
            Route("/admin/aliases/member", guard(domains.alias_member), methods=post),
            Route("/admin/accounts", guard(accounts.list_accounts)),
            Route("/admin/accounts/add", guard(accounts.add_account), methods=post),
            Route("/admin/accounts/remove", guard(accounts.remove_account), methods=post),
            Route("/admin/accounts/{name}", guard(accounts.account_page)),
            Route("/admin/accounts/{name}/address", guard(accounts.address), methods=post),
            Route("/admin/accounts/{name}/password", guard(accounts.password), methods=post),
            Route("/admin/accounts/{name}/settings", guard(accounts.settings), methods=post),
            Route("/admin/queue", guard(ops.queue_page)),
            Route("/admin/queue", guard(ops.queue_action), methods=post),
            Route("/admin/reports", guard(ops.reports)),
            Mount("/admin/static", StaticFiles(directory=STATIC_DIR), name="admin-static"),
            Route("/admin", to_index),
        ]


def admin_routes(env: SiteEnv) -> list[BaseRoute]:
    return AdminSite(env).routes()
