"""Admin pages for accounts: list, add (with a first password), remove, addresses, password."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from mox.auth.password import derive_credentials
from mox.config.model import normalize_domain
from mox.web.session import Session
from mox.webaccount.configedit import EditError
from mox.webaccount.html import Child, el, form_text, post_form, redirect, table

if TYPE_CHECKING:
    from mox.webadmin.site import AdminSite

__all__ = [
    "account_page",
    "add_account",
    "address",
    "list_accounts",
    "password",
    "remove_account",
    "settings",
]

log = logging.getLogger(__name__)

MIN_PASSWORD = 8


def _account_entry(doc: Any, name: str) -> Any:
    try:
        return doc["accounts"][name]
    except KeyError:
        raise EditError([f"no account {name!r} in the config"]) from None


async def list_accounts(
    site: AdminSite, request: Request, session: Session, problems: list[str] | None = None
) -> Response:
    loaded = site.env.config
    csrf = session.csrf
    rows: list[list[Child]] = []
    for name, acc in sorted(loaded.config.accounts.items()):
        rows.append(
            [
                el("a", name, href=f"/admin/accounts/{name}"),
                acc.domain,
                ", ".join(sorted(loaded.account_addresses(name))),
                acc.full_name,
                "disabled" if acc.login_disabled else "",
                post_form(
                    "/admin/accounts/remove",
                    csrf,
                    el("input", type="hidden", name="name", value=name),
                    submit="Remove",
                    confirm=f"Remove account {name}? Its messages stay on disk.",
                    class_="inline",
                ),
            ]
        )
    body: list[Child] = [
        table(["Account", "Domain", "Addresses", "Full name", "Login", ""], rows),
        el("h2", "Add an account"),
        post_form(
            "/admin/accounts/add",
            csrf,
            el("label", "Name ", el("input", type="text", name="name", required=True)),
            el("label", "Address ", el("input", type="email", name="address", required=True)),
            el(
                "label",
                "Password ",
                el(
                    "input",
                    type="password",
                    name="password",
                    required=True,
                    minlength=MIN_PASSWORD,
                    autocomplete="new-password",
                ),
            ),
            submit="Add account",
        ),
    ]
    return site.show(session, "Accounts", body, problems=problems)


async def add_account(site: AdminSite, request: Request, session: Session) -> Response:
    form = await request.form()
    name, addr = form_text(form, "name", 64), form_text(form, "address", 500)
    pw = form_text(form, "password")

    async def again(problems: list[str]) -> Response:
        return await list_accounts(site, request, session, problems)

    if name in site.env.config.config.accounts:
        return await again([f"Account {name!r} already exists."])
    if len(pw) < MIN_PASSWORD:
        return await again([f"The password needs at least {MIN_PASSWORD} characters."])
    local, at, domain_text = addr.rpartition("@")
    try:
        domain = normalize_domain(domain_text) if at and local else ""
    except ValueError as exc:
        return await again([f"Address: {exc}"])
    if not domain:
        return await again(["The address must look like name@domain."])

    def change(doc: Any) -> None:
        accounts = doc.setdefault("accounts", {})
        if name in accounts:
            raise EditError([f"account {name!r} already exists"])
        accounts[name] = {"domain": domain, "destinations": {addr: {}}}

    response = await site.edit(
        session, change, f"Account {name} added with address {addr}.", "/admin/accounts", again
    )
    if response.status_code == 303:
        creds = await asyncio.to_thread(derive_credentials, pw)
        await site.env.store.account(name).set_credentials(creds)
        log.info("account added from the admin pages", extra={"account": name})
    return response


async def remove_account(site: AdminSite, request: Request, session: Session) -> Response:
    form = await request.form()
    name = form_text(form, "name", 64)

    async def again(problems: list[str]) -> Response:
        return await list_accounts(site, request, session, problems)

    def change(doc: Any) -> None:
        accounts = doc.get("accounts", {})
        if name not in accounts:
            raise EditError([f"no account {name!r} in the config"])
        del accounts[name]

    done = f"Account {name} removed; its messages stay in the data directory."
    response = await site.edit(session, change, done, "/admin/accounts", again)
    if response.status_code == 303:
        site.env.sessions.end_account(name)
    return response


async def account_page(
    site: AdminSite, request: Request, session: Session, problems: list[str] | None = None
) -> Response:
    name = str(request.path_params["name"])
    loaded = site.env.config
    acc = loaded.config.accounts.get(name)
    if acc is None:
        return site.show(session, "Account", el("p", f"No account {name!r}."), status=404)
    csrf = session.csrf
    base = f"/admin/accounts/{name}"
    rows: list[list[Child]] = []
    for addr, dest in acc.destinations.items():
        rows.append(
            [
                addr,
                dest.mailbox,
                str(len(getattr(dest, "rulesets", []))),
                post_form(
                    f"{base}/address",
                    csrf,
                    el("input", type="hidden", name="address", value=addr),
                    el("input", type="hidden", name="op", value="remove"),
                    submit="Remove",
                    class_="inline",
                ),
            ]
        )
    body: list[Child] = [
        table(
            ["Domain", "Full name", "Quota (bytes)", "Password"],
            [
                [
                    acc.domain,
                    acc.full_name,
                    str(acc.quota_bytes or "unlimited"),
                    f"file {acc.password_file}" if acc.password_file else "in the account store",
                ]
            ],
        ),
        post_form(
            f"{base}/settings",
            csrf,
            el(
                "label",
                "Full name ",
                el("input", type="text", name="full_name", value=acc.full_name),
            ),
            el(
                "label",
                "Refuse logins with this message (empty: logins allowed) ",
                el("input", type="text", name="login_disabled", value=acc.login_disabled, size=40),
            ),
            submit="Save settings",
        ),
        el("h2", "Addresses"),
        table(["Address", "Mailbox", "Rulesets", ""], rows),
        post_form(
            f"{base}/address",
            csrf,
            el("input", type="hidden", name="op", value="add"),
            el("label", "New address ", el("input", type="text", name="address", required=True)),
            submit="Add address",
        ),
        el("h2", "Set password"),
    ]
    if acc.password_file is not None:
        body.append(
            el("p", "The password is in a file named by the config; use `mox account passwd`.")
        )
    else:
        body.append(
            post_form(
                f"{base}/password",
                csrf,
                el(
                    "label",
                    "New password ",
                    el(
                        "input",
                        type="password",
                        name="password",
                        required=True,
                        minlength=MIN_PASSWORD,
                        autocomplete="new-password",
                    ),
                ),
                submit="Set password",
            )
        )
    history = await asyncio.to_thread(site.logins.recent, name, 20)
    body += [
        el("h2", "Recent web logins"),
        table(
            ["Time (UTC)", "Address", "IP", "Via", "Result"],
            [[r.time, r.login, r.ip, r.protocol, "ok" if r.success else "failed"] for r in history],
            empty="None recorded.",
        ),
    ]
    return site.show(session, f"Account {name}", body, problems=problems)


async def address(site: AdminSite, request: Request, session: Session) -> Response:
    name = str(request.path_params["name"])
    form = await request.form()
    addr, op = form_text(form, "address", 500), form_text(form, "op")

    async def again(problems: list[str]) -> Response:
        return await account_page(site, request, session, problems)

    def change(doc: Any) -> None:
        dests = _account_entry(doc, name).setdefault("destinations", {})
        if op == "add":
            if addr in dests:
                raise EditError([f"{addr} is already an address of {name}"])
            dests[addr] = {}
            return
        if addr not in dests:
            raise EditError([f"{addr} is not an address of {name}"])
        if len(dests) == 1:
            raise EditError(["an account keeps at least one address (remove the account instead)"])
        del dests[addr]

    done = f"Address {addr} {'added' if op == 'add' else 'removed'}."
    return await site.edit(session, change, done, f"/admin/accounts/{name}", again)


async def password(site: AdminSite, request: Request, session: Session) -> Response:
    name = str(request.path_params["name"])
    form = await request.form()
    pw = form_text(form, "password")
    acc = site.env.config.config.accounts.get(name)
    if acc is None or acc.password_file is not None:
        return await account_page(site, request, session, ["The password cannot be set here."])
    if len(pw) < MIN_PASSWORD:
        return await account_page(
            site, request, session, [f"The password needs at least {MIN_PASSWORD} characters."]
        )
    creds = await asyncio.to_thread(derive_credentials, pw)
    await site.env.store.account(name).set_credentials(creds)
    site.env.sessions.end_account(name)
    log.info("password set from the admin pages", extra={"account": name})
    site.notice(session, f"Password of {name} set; its web sessions were logged out.")
    return redirect(f"/admin/accounts/{name}")


async def settings(site: AdminSite, request: Request, session: Session) -> Response:
    name = str(request.path_params["name"])
    form = await request.form()
    full_name = form_text(form, "full_name", 200)
    login_disabled = form_text(form, "login_disabled", 500)

    async def again(problems: list[str]) -> Response:
        return await account_page(site, request, session, problems)

    def change(doc: Any) -> None:
        entry = _account_entry(doc, name)
        for key, value in (("full_name", full_name), ("login_disabled", login_disabled)):
            if value:
                entry[key] = value
            elif key in entry:
                del entry[key]

    response = await site.edit(
        session, change, f"Settings of {name} saved.", f"/admin/accounts/{name}", again
    )
    if response.status_code == 303 and login_disabled:
        site.env.sessions.end_account(name)
    return response
