"""The account pages at /account/: password, addresses, destinations and rulesets, suppression
list, import and export, login history (reference §1.9, webaccount).

Logged in with one of the account's addresses and its password (the same check, and the same
per-IP throttle, as SMTP and IMAP). Every change posts a form with the session's CSRF token.
Changes to addresses' mailboxes and rulesets edit the config file through
mox.webaccount.configedit, checked before writing.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from mox.auth.password import derive_credentials
from mox.queue.suppression import SuppressionError
from mox.web.session import Session, authenticated, client_ip, same_origin
from mox.webaccount import importing, suppressions
from mox.webaccount.configedit import EditError, edit_config
from mox.webaccount.html import (
    STATIC_DIR,
    Child,
    PageSite,
    Safe,
    cross_site_refused,
    el,
    form_text,
    page,
    post_form,
    redirect,
    table,
)

if TYPE_CHECKING:
    from mox.web.sites import SiteEnv

__all__ = ["account_routes"]

log = logging.getLogger(__name__)

SITE: Literal["account"] = "account"
MIN_PASSWORD = 8
NAV = [("/account/", "Account"), ("/account/import", "Import and export")]


def _destinations(doc: Any, account: str) -> Any:
    try:
        return doc["accounts"][account]["destinations"]
    except KeyError:
        raise EditError([f"account {account!r} is no longer in the config"]) from None


class AccountSite(PageSite):
    SITE = SITE
    NAV = NAV

    def __init__(self, env: SiteEnv) -> None:
        super().__init__(env)
        self.jobs = importing.ImportJobs()

    # --- login ---

    def login_page(self, problems: list[str] | None = None, status: int = 200) -> Response:
        body = el(
            "form",
            el(
                "label",
                "Email address",
                el(
                    "input",
                    type="email",
                    name="username",
                    required=True,
                    autocomplete="username",
                    autofocus=True,
                ),
            ),
            el(
                "label",
                "Password",
                el(
                    "input",
                    type="password",
                    name="password",
                    required=True,
                    autocomplete="current-password",
                ),
            ),
            el("button", "Log in", type="submit"),
            method="post",
            action="/account/login",
            class_="login",
        )
        return page("Account login", body, site=SITE, problems=problems or [], status=status)

    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            return redirect("/account/") if self.logged_in(request) else self.login_page()
        if not same_origin(request):
            return cross_site_refused()
        form = await request.form()
        username, password = form_text(form, "username", 300), form_text(form, "password")
        ip = client_ip(request)
        auth = self.env.authenticator
        account = await auth.login(username, password, remote_ip=ip, protocol="webaccount")
        known = account or auth.account_for(username)
        if known is not None:
            await asyncio.to_thread(
                self.logins.record, known, username, ip, "webaccount", account is not None
            )
        if account is None:
            return self.login_page(["Login failed: wrong address or password."], 401)
        return self.start_session(request, account, username)

    # --- overview ---

    async def index(self, request: Request, session: Session) -> Response:
        return await self.overview(session)

    async def overview(self, session: Session, problems: list[str] | None = None) -> Response:
        loaded = self.env.config
        acc_cfg = loaded.config.accounts.get(session.account)
        if acc_cfg is None:
            return self.show(
                session, "Account", el("p", "This account no longer exists."), status=404
            )
        csrf = session.csrf
        addresses = loaded.account_addresses(session.account)
        parts: list[Child] = [
            table(
                ["Account", "Full name", "Addresses"],
                [[session.account, acc_cfg.full_name or "(none)", ", ".join(sorted(addresses))]],
            ),
            post_form(
                "/account/fullname",
                csrf,
                el(
                    "label",
                    "Full name ",
                    el("input", type="text", name="full_name", value=acc_cfg.full_name),
                ),
                submit="Save full name",
            ),
            el("h2", "Password"),
        ]
        if acc_cfg.password_file is not None:
            parts.append(
                el(
                    "p",
                    "This account's password is kept in a file named by the config "
                    f"({acc_cfg.password_file}); it cannot be changed here. Ask the admin.",
                )
            )
        else:
            parts.append(
                post_form(
                    "/account/password",
                    csrf,
                    el(
                        "label",
                        "Current password ",
                        el(
                            "input",
                            type="password",
                            name="current",
                            required=True,
                            autocomplete="current-password",
                        ),
                    ),
                    el(
                        "label",
                        "New password ",
                        el(
                            "input",
                            type="password",
                            name="new",
                            required=True,
                            minlength=MIN_PASSWORD,
                            autocomplete="new-password",
                        ),
                    ),
                    el(
                        "label",
                        "Repeat new password ",
                        el(
                            "input",
                            type="password",
                            name="repeat",
                            required=True,
                            minlength=MIN_PASSWORD,
                            autocomplete="new-password",
                        ),
                    ),
                    submit="Change password",
                )
            )
        parts.append(el("h2", "Addresses and where their mail goes"))
        rows = []
        for address, dest in acc_cfg.destinations.items():
            rows.append(
                [
                    address,
                    post_form(
                        "/account/destination",
                        csrf,
                        el("input", type="hidden", name="address", value=address),
                        el(
                            "label",
                            "Mailbox ",
                            el(
                                "input",
                                type="text",
                                name="mailbox",
                                value=dest.mailbox,
                                required=True,
                            ),
                        ),
                        el(
                            "label",
                            "Name ",
                            el("input", type="text", name="full_name", value=dest.full_name),
                        ),
                        submit="Save",
                        class_="inline",
                    ),
                    self.rulesets(csrf, address, dest),
                ]
            )
        parts.append(table(["Address", "Delivery", "Rulesets"], rows))
        queue = self.env.queue
        found = None if queue is None else await queue.suppression_list(session.account)
        parts += suppressions.section(csrf, found)
        history = await asyncio.to_thread(self.logins.recent, session.account, 30)
        parts += [
            el("h2", "Recent logins to these pages"),
            table(
                ["Time (UTC)", "Address", "IP", "Via", "Result"],
                [
                    [r.time, r.login, r.ip, r.protocol, "ok" if r.success else "failed"]
                    for r in history
                ],
                empty="No logins recorded yet.",
            ),
        ]
        return self.show(session, f"Account {session.account}", parts, problems=problems)

    def rulesets(self, csrf: str, address: str, dest: Any) -> Safe:
        items: list[Child] = []
        for i, rs in enumerate(getattr(dest, "rulesets", [])):
            what = []
            if rs.smtp_mail_from_regexp:
                what.append(f"MAIL FROM ~ {rs.smtp_mail_from_regexp}")
            if rs.msg_from_regexp:
                what.append(f"From ~ {rs.msg_from_regexp}")
            if rs.verified_domain:
                what.append(f"verified {rs.verified_domain}")
            what += [f"{k}: ~ {v}" for k, v in rs.headers_regexp.items()]
            items.append(
                el(
                    "li",
                    "; ".join(what),
                    f" → {rs.mailbox} ",
                    post_form(
                        "/account/ruleset/remove",
                        csrf,
                        el("input", type="hidden", name="address", value=address),
                        el("input", type="hidden", name="index", value=str(i)),
                        submit="Remove",
                        class_="inline",
                    ),
                )
            )
        if not hasattr(dest, "rulesets"):
            return Safe("")
        add = post_form(
            "/account/ruleset/add",
            csrf,
            el("input", type="hidden", name="address", value=address),
            el(
                "label",
                "Header ",
                el("input", type="text", name="header", placeholder="list-id", size=10),
            ),
            el(
                "label",
                "matches ",
                el("input", type="text", name="value", placeholder="regexp", size=14),
            ),
            el(
                "label", "or MAIL FROM matches ", el("input", type="text", name="mailfrom", size=14)
            ),
            el(
                "label",
                "→ mailbox ",
                el("input", type="text", name="mailbox", required=True, size=10),
            ),
            submit="Add ruleset",
        )
        return el("div", el("ul", *items) if items else None, add)

    # --- changes ---

    async def _edit(self, session: Session, change: Callable[[Any], None], done: str) -> Response:
        try:
            await edit_config(self.env, change)
        except EditError as exc:
            return await self.overview(session, exc.problems)
        self.notice(session, done)
        return redirect("/account/")

    async def set_full_name(self, request: Request, session: Session) -> Response:
        form = await request.form()
        name = form_text(form, "full_name", 200)

        def change(doc: Any) -> None:
            try:
                doc["accounts"][session.account]["full_name"] = name
            except KeyError:
                raise EditError(
                    [f"account {session.account!r} is no longer in the config"]
                ) from None

        return await self._edit(session, change, "Full name saved.")

    async def set_destination(self, request: Request, session: Session) -> Response:
        form = await request.form()
        address, mailbox = form_text(form, "address"), form_text(form, "mailbox", 500)
        full_name = form_text(form, "full_name", 200)
        if not mailbox:
            return await self.overview(session, ["A mailbox name is required."])

        def change(doc: Any) -> None:
            dests = _destinations(doc, session.account)
            if address not in dests:
                raise EditError([f"{address} is not an address of this account"])
            dests[address]["mailbox"] = mailbox
            dests[address]["full_name"] = full_name

        return await self._edit(session, change, f"Delivery of {address} saved.")

    async def add_ruleset(self, request: Request, session: Session) -> Response:
        form = await request.form()
        address, mailbox = form_text(form, "address"), form_text(form, "mailbox", 500)
        header, value = form_text(form, "header", 200).lower(), form_text(form, "value", 500)
        mailfrom = form_text(form, "mailfrom", 500)
        ruleset: dict[str, Any] = {"mailbox": mailbox}
        if header:
            ruleset["headers_regexp"] = {f"^{header}$": value.lower() or "."}
        if mailfrom:
            ruleset["smtp_mail_from_regexp"] = mailfrom

        def change(doc: Any) -> None:
            dests = _destinations(doc, session.account)
            if address not in dests:
                raise EditError([f"{address} is not an address of this account"])
            rulesets = dests[address].setdefault("rulesets", [])
            rulesets.append(ruleset)

        return await self._edit(session, change, f"Ruleset for {address} added.")

    async def remove_ruleset(self, request: Request, session: Session) -> Response:
        form = await request.form()
        address, index = form_text(form, "address"), form_text(form, "index")

        def change(doc: Any) -> None:
            dests = _destinations(doc, session.account)
            rulesets = dests.get(address, {}).get("rulesets", [])
            if not index.isdigit() or int(index) >= len(rulesets):
                raise EditError(["That ruleset no longer exists."])
            del rulesets[int(index)]

        return await self._edit(session, change, f"Ruleset of {address} removed.")

    async def change_password(self, request: Request, session: Session) -> Response:
        form = await request.form()
        current, new, repeat = (
            form_text(form, "current"),
            form_text(form, "new"),
            form_text(form, "repeat"),
        )
        acc_cfg = self.env.config.config.accounts.get(session.account)
        if acc_cfg is None or acc_cfg.password_file is not None:
            return await self.overview(session, ["The password cannot be changed here."])
        if new != repeat:
            return await self.overview(session, ["The new passwords differ."])
        if len(new) < MIN_PASSWORD:
            return await self.overview(
                session, [f"The new password needs at least {MIN_PASSWORD} characters."]
            )
        ip = client_ip(request)
        who = await self.env.authenticator.login(
            session.login, current, remote_ip=ip, protocol="webaccount"
        )
        if who != session.account:
            return await self.overview(session, ["The current password is not right."])
        creds = await asyncio.to_thread(derive_credentials, new)
        await self.env.store.account(session.account).set_credentials(creds)
        log.info("password changed", extra={"account": session.account, "ip": ip})
        # Every other session of the account ends; this browser gets a new one.
        self.env.sessions.end_account(session.account)
        token, fresh = self.env.sessions.create(SITE, session.account, session.login)
        self.notice(fresh, "Password changed. Other sessions of this account were logged out.")
        response = redirect("/account/")
        self.env.sessions.set_cookie(response, request, SITE, token)
        return response

    # --- suppression list (mox.webaccount.suppressions) ---

    async def add_suppression(self, request: Request, session: Session) -> Response:
        form = await request.form()
        address, reason = form_text(form, "address", 500), form_text(form, "reason", 500)
        if self.env.queue is None:
            return await self.overview(session, ["This server has no suppression list."])
        if not address:
            return await self.overview(session, ["An address is required."])
        try:
            await self.env.queue.suppression_add(
                session.account, address, manual=True, reason=reason
            )
        except SuppressionError as exc:
            return await self.overview(session, [str(exc)])
        log.info("suppression added", extra={"account": session.account})
        self.notice(session, f"{address} added to the suppression list.")
        return redirect("/account/")

    async def remove_suppression(self, request: Request, session: Session) -> Response:
        form = await request.form()
        address = form_text(form, "address", 500)
        if self.env.queue is None:
            return await self.overview(session, ["This server has no suppression list."])
        try:
            removed = await self.env.queue.suppression_remove(session.account, address)
        except SuppressionError as exc:
            return await self.overview(session, [str(exc)])
        if not removed:
            return await self.overview(session, [f"{address} is not on the suppression list."])
        self.notice(session, f"{address} removed from the suppression list.")
        return redirect("/account/")

    # --- import and export ---

    async def import_page(
        self, request: Request, session: Session, problems: list[str] | None = None
    ) -> Response:
        csrf = session.csrf
        acc = self.env.store.account(session.account)
        mailboxes = [mb.name for mb in acc.list_mailboxes()]
        jobs = [j for j in self.jobs.jobs.values() if j.account == session.account]
        body: list[Child] = [
            el("h2", "Import"),
            el(
                "p",
                "Upload an mbox file, or a .zip or .tgz archive with mbox files and/or Maildirs. "
                "Messages already imported before are skipped.",
            ),
            post_form(
                "/account/import",
                csrf,
                el("label", "File ", el("input", type="file", name="file", required=True)),
                el(
                    "label",
                    "Mailbox for an mbox file ",
                    el("input", type="text", name="mailbox", value="Inbox", required=True),
                ),
                submit="Import",
                multipart=True,
            ),
        ]
        if jobs:
            body.append(
                table(
                    ["File", "Status"],
                    [[j.filename, el("a", j.text(), href=f"/account/import/{j.id}")] for j in jobs],
                )
            )
        options = [el("option", "all mailboxes", value="")] + [
            el("option", m, value=m) for m in mailboxes
        ]
        body += [
            el("h2", "Export"),
            el(
                "form",
                el("label", "Mailbox ", el("select", *options, name="mailbox")),
                el(
                    "label",
                    "Format ",
                    el(
                        "select",
                        el("option", "mbox", value="mbox"),
                        el("option", "Maildir", value="maildir"),
                        name="format",
                    ),
                ),
                el(
                    "label",
                    "Archive ",
                    el(
                        "select",
                        el("option", "zip", value="zip"),
                        el("option", "tgz", value="tgz"),
                        name="archive",
                    ),
                ),
                el("button", "Download", type="submit"),
                method="get",
                action="/account/export",
            ),
        ]
        return self.show(session, "Import and export", body, problems=problems)

    async def start_import(self, request: Request, session: Session) -> Response:
        form = await request.form()
        try:
            return await self._start_import(request, session, form)
        finally:
            await form.close()  # the spooled upload files

    async def _start_import(self, request: Request, session: Session, form: Any) -> Response:
        upload = form.get("file")
        mailbox = form_text(form, "mailbox", 500) or "Inbox"
        if not isinstance(upload, UploadFile) or not upload.filename:
            return await self.import_page(request, session, ["Choose a file to upload."])
        if any(j.account == session.account and not j.done for j in self.jobs.jobs.values()):
            return await self.import_page(
                request, session, ["An import is still running; wait until it has finished."]
            )
        work = importing.new_workdir(self.env.config.data_dir)
        target = work / "upload"
        size = 0
        try:
            with target.open("xb") as out:
                while chunk := await upload.read(importing.CHUNK):
                    size += len(chunk)
                    if size > importing.MAX_UPLOAD:
                        raise importing.UploadError(
                            f"the file is larger than {importing.MAX_UPLOAD >> 20} MiB"
                        )
                    await asyncio.to_thread(out.write, chunk)
        except (importing.UploadError, OSError) as exc:
            shutil.rmtree(work, ignore_errors=True)
            return await self.import_page(request, session, [str(exc)])
        job = self.jobs.new(session.account, Path(upload.filename).name)
        job.total = size
        acc = self.env.store.account(session.account)
        self.jobs.start(job, acc, mailbox, target, work)
        return redirect(f"/account/import/{job.id}")

    async def import_status(self, request: Request, session: Session) -> Response:
        job_id = str(request.path_params["job"]).removesuffix(".json")
        job = self.jobs.get(session.account, job_id)
        if job is None:
            return self.show(session, "Import", el("p", "No such import."), status=404)
        if request.url.path.endswith(".json"):
            return JSONResponse(job.status(), headers={"cache-control": "no-store"})
        body: list[Child] = [
            el("p", f"File: {job.filename}"),
            el("p", job.text(), data_import_text=True),
        ]
        if not job.done:
            body.append(
                el(
                    "progress",
                    max=str(job.total or 1),
                    value=str(job.bytes),
                    data_import_status=f"/account/import/{job.id}.json",
                )
            )
        else:
            if job.mailboxes:
                body.append(el("p", "Mailboxes: " + ", ".join(job.mailboxes)))
            body.append(el("p", el("a", "Back to import and export", href="/account/import")))
        return self.show(
            session,
            "Import",
            body,
            problems=job.problems if job.done else None,
            refresh=None if job.done else 2,
        )

    async def export(self, request: Request, session: Session) -> Response:
        q = request.query_params
        fmt: Literal["mbox", "maildir"] = "maildir" if q.get("format") == "maildir" else "mbox"
        archive: Literal["zip", "tgz"] = "tgz" if q.get("archive") == "tgz" else "zip"
        mailbox = q.get("mailbox") or None
        acc = self.env.store.account(session.account)
        work = importing.new_workdir(self.env.config.data_dir)
        try:
            path = await asyncio.to_thread(
                importing.export_archive, session.account, acc.dir, fmt, archive, mailbox, work
            )
        except (OSError, importing.UploadError) as exc:
            shutil.rmtree(work, ignore_errors=True)
            return await self.import_page(request, session, [f"Export failed: {exc}"])
        return FileResponse(
            path,
            media_type="application/zip" if archive == "zip" else "application/gzip",
            filename=path.name,
            background=BackgroundTask(shutil.rmtree, work, ignore_errors=True),
        )

    # --- routes ---

    def routes(self) -> list[BaseRoute]:
        def to_login(request: Request) -> Response:
            return redirect("/account/login")

        async def to_index(request: Request) -> Response:
            return redirect("/account/")

        auth = authenticated(self.env.sessions, SITE, to_login)
        post = ["POST"]
        return [
            Route("/account/login", self.login, methods=["GET", "POST"]),
            Route("/account/logout", auth(self.logout), methods=post),
            Route("/account/", auth(self.index)),
            Route("/account/fullname", auth(self.set_full_name), methods=post),
            Route("/account/password", auth(self.change_password), methods=post),
            Route("/account/destination", auth(self.set_destination), methods=post),
            Route("/account/ruleset/add", auth(self.add_ruleset), methods=post),
            Route("/account/ruleset/remove", auth(self.remove_ruleset), methods=post),
            Route("/account/suppression/add", auth(self.add_suppression), methods=post),
            Route("/account/suppression/remove", auth(self.remove_suppression), methods=post),
            Route("/account/import", auth(self.import_page)),
            Route("/account/import", auth(self.start_import), methods=post),
            Route("/account/import/{job}", auth(self.import_status)),
            Route("/account/export", auth(self.export)),
            Mount("/account/static", StaticFiles(directory=STATIC_DIR), name="account-static"),
            Route("/account", to_index),
        ]


def account_routes(env: SiteEnv) -> list[BaseRoute]:
    return AccountSite(env).routes()
