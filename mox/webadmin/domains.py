"""Admin pages for domains and their aliases/lists, DNS records and dnscheck."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from mox.config.model import normalize_domain
from mox.dkim.keys import generate_key, key_file_name, selector_names, write_key
from mox.dns.check import CannotCheck, CheckOptions, run_checks
from mox.dns.expected import ExpectError, build_records, gather_facts
from mox.dns.zone import render_zone
from mox.web.session import Session
from mox.webaccount.configedit import EditError
from mox.webaccount.html import Child, el, form_text, post_form, table

if TYPE_CHECKING:
    from mox.webadmin.site import AdminSite

__all__ = [
    "add_alias",
    "add_domain",
    "alias_member",
    "dns_records",
    "dnscheck",
    "domain_page",
    "domain_settings",
    "list_domains",
    "remove_alias",
    "remove_domain",
]

DNSCHECK_SECONDS = 60.0  # the whole check; each query/connection has its own 5 s


def doc_domain_key(doc: Any, domain: str) -> str:
    """The key of `domain` in the document's `domains` (written in any case/with a dot)."""
    for key in doc.get("domains", {}):
        try:
            if normalize_domain(str(key)) == domain:
                return str(key)
        except ValueError:
            continue
    raise EditError([f"domain {domain!r} is not in the config"])


def _domain_usage(site: AdminSite, domain: str) -> list[str]:
    """Why a domain cannot be removed: accounts and addresses and aliases in it."""
    cfg = site.env.config.config
    users = [n for n, a in cfg.accounts.items() if normalize_domain(a.domain) == domain]
    addresses = [
        a
        for a, t in site.env.config.addresses.items()
        if a.rpartition("@")[2] == domain and t.account not in users
    ]
    out = []
    if users:
        out.append(f"accounts with {domain} as their domain: {', '.join(sorted(users))}")
    if addresses:
        out.append(f"addresses in {domain}: {', '.join(sorted(addresses))}")
    aliases = cfg.domains[domain].aliases if domain in cfg.domains else {}
    if aliases:
        out.append(f"aliases/lists in {domain}: {', '.join(sorted(aliases))}")
    return out


async def list_domains(
    site: AdminSite, request: Request, session: Session, problems: list[str] | None = None
) -> Response:
    cfg = site.env.config.config
    csrf = session.csrf
    rows: list[list[Child]] = []
    for name, dom in sorted(cfg.domains.items()):
        n_acc = sum(1 for a in site.env.config.addresses if a.rpartition("@")[2] == name)
        rows.append(
            [
                el("a", name, href=f"/admin/domains/{name}"),
                dom.description,
                "disabled" if dom.disabled else "active",
                str(n_acc),
                str(len(dom.aliases)),
                el("a", "DNS records", href=f"/admin/domains/{name}/dns"),
                post_form(
                    "/admin/domains/remove",
                    csrf,
                    el("input", type="hidden", name="domain", value=name),
                    submit="Remove",
                    confirm=f"Remove domain {name}?",
                    class_="inline",
                ),
            ]
        )
    body: list[Child] = [
        table(["Domain", "Description", "State", "Addresses", "Aliases", "DNS", ""], rows),
        el("h2", "Add a domain"),
        post_form(
            "/admin/domains/add",
            csrf,
            el("label", "Domain ", el("input", type="text", name="domain", required=True)),
            el("label", "Description ", el("input", type="text", name="description")),
            el(
                "label",
                el("input", type="checkbox", name="dkim", value="1", checked=True),
                " create DKIM keys (two RSA-2048 selectors)",
            ),
            submit="Add domain",
        ),
    ]
    return site.show(session, "Domains", body, problems=problems)


def _new_dkim_keys(base: Path, domain: str) -> dict[str, str]:
    """Two RSA keys as mox's quickstart makes them; returns selector -> file (relative)."""
    when = datetime.now(UTC)
    out: dict[str, str] = {}
    for sel in selector_names(when.date()):
        rel = f"dkim/{key_file_name(sel, domain, when, 'rsa2048')}"
        write_key(base / rel, generate_key("rsa2048"))
        out[sel] = rel
    return out


async def add_domain(site: AdminSite, request: Request, session: Session) -> Response:
    form = await request.form()

    async def again(problems: list[str]) -> Response:
        return await list_domains(site, request, session, problems)

    try:
        domain = normalize_domain(form_text(form, "domain", 255))
    except ValueError as exc:
        return await again([f"Domain: {exc}"])
    if not domain:
        return await again(["A domain name is required."])
    if domain in site.env.config.config.domains:
        return await again([f"Domain {domain} already exists."])
    entry: dict[str, Any] = {}
    description = form_text(form, "description", 500)
    if description:
        entry["description"] = description
    created: list[Path] = []
    if form.get("dkim"):
        base = site.env.config.base_dir
        try:
            selectors = await asyncio.to_thread(_new_dkim_keys, base, domain)
        except OSError as exc:
            return await again([f"Cannot write the DKIM keys: {exc}"])
        created = [base / p for p in selectors.values()]
        entry["dkim"] = {
            "sign": [next(iter(selectors))],
            "selectors": {s: {"private_key_file": p} for s, p in selectors.items()},
        }

    def change(doc: Any) -> None:
        doc.setdefault("domains", {})[domain] = entry

    async def failed(problems: list[str]) -> Response:
        for path in created:  # the keys of a domain that was not added
            path.unlink(missing_ok=True)
        return await again(problems)

    return await site.edit(session, change, f"Domain {domain} added.", "/admin/domains", failed)


async def remove_domain(site: AdminSite, request: Request, session: Session) -> Response:
    form = await request.form()
    domain = form_text(form, "domain", 255).lower()

    async def again(problems: list[str]) -> Response:
        return await list_domains(site, request, session, problems)

    usage = _domain_usage(site, domain)
    if usage:
        return await again([f"Domain {domain} is still used: " + "; ".join(usage)])

    def change(doc: Any) -> None:
        del doc["domains"][doc_domain_key(doc, domain)]

    return await site.edit(session, change, f"Domain {domain} removed.", "/admin/domains", again)


async def domain_page(
    site: AdminSite, request: Request, session: Session, problems: list[str] | None = None
) -> Response:
    domain = str(request.path_params.get("domain") or "").lower()
    cfg = site.env.config.config
    dom = cfg.domains.get(domain)
    if dom is None:
        return site.show(session, "Domain", el("p", f"No domain {domain!r}."), status=404)
    csrf = session.csrf
    addresses = sorted(
        (a, t.account)
        for a, t in site.env.config.addresses.items()
        if a.rpartition("@")[2] == domain
    )
    alias_rows: list[list[Child]] = []
    for local, alias in sorted(dom.aliases.items()):
        members: list[Child] = []
        for member in alias.addresses:
            members.append(
                el(
                    "li",
                    member,
                    " ",
                    post_form(
                        "/admin/aliases/member",
                        csrf,
                        el("input", type="hidden", name="domain", value=domain),
                        el("input", type="hidden", name="alias", value=local),
                        el("input", type="hidden", name="member", value=member),
                        el("input", type="hidden", name="op", value="remove"),
                        submit="Remove",
                        class_="inline",
                    ),
                )
            )
        add_member = post_form(
            "/admin/aliases/member",
            csrf,
            el("input", type="hidden", name="domain", value=domain),
            el("input", type="hidden", name="alias", value=local),
            el("input", type="hidden", name="op", value="add"),
            el("input", type="email", name="member", placeholder="member address", required=True),
            submit="Add member",
        )
        flags = [
            f
            for f, on in (
                ("anyone may post", alias.post_public),
                ("members see members", alias.list_members),
                ("members may send as it", alias.allow_msg_from),
            )
            if on
        ]
        alias_rows.append(
            [
                f"{local}@{domain}",
                ", ".join(flags),
                el("div", el("ul", *members), add_member),
                post_form(
                    "/admin/aliases/remove",
                    csrf,
                    el("input", type="hidden", name="domain", value=domain),
                    el("input", type="hidden", name="alias", value=local),
                    submit="Remove alias",
                    confirm=f"Remove alias {local}@{domain}?",
                ),
            ]
        )
    body: list[Child] = [
        el(
            "div",
            el("a", "DNS records for this domain", href=f"/admin/domains/{domain}/dns"),
            " · ",
            post_form(
                f"/admin/domains/{domain}/dnscheck", csrf, submit="Run DNS check", class_="inline"
            ),
        ),
        table(
            ["Description", "State", "DKIM selectors (signing)"],
            [
                [
                    dom.description,
                    "disabled" if dom.disabled else "active",
                    ", ".join(
                        f"{s}{' (signs)' if s in dom.dkim.sign else ''}" for s in dom.dkim.selectors
                    )
                    or "none",
                ]
            ],
        ),
        post_form(
            f"/admin/domains/{domain}/settings",
            csrf,
            el(
                "label",
                "Description ",
                el("input", type="text", name="description", value=dom.description, size=40),
            ),
            el(
                "label",
                el("input", type="checkbox", name="disabled", value="1", checked=dom.disabled),
                " disabled (mail for the domain is refused for now)",
            ),
            submit="Save settings",
        ),
        el("h2", "Addresses"),
        table(
            ["Address", "Account"],
            [[a, el("a", acc, href=f"/admin/accounts/{acc}")] for a, acc in addresses],
            empty="No account has an address in this domain.",
        ),
        el("h2", "Aliases and lists"),
        table(["Alias", "Settings", "Members", ""], alias_rows, empty="No aliases."),
        el("h3", "Add an alias"),
        post_form(
            "/admin/aliases/add",
            csrf,
            el("input", type="hidden", name="domain", value=domain),
            el("label", "Local part ", el("input", type="text", name="alias", required=True)),
            el(
                "label",
                "Members (addresses of accounts, comma separated) ",
                el("input", type="text", name="members", required=True, size=40),
            ),
            el(
                "label",
                el("input", type="checkbox", name="post_public", value="1"),
                " anyone may post",
            ),
            el(
                "label",
                el("input", type="checkbox", name="list_members", value="1"),
                " members see members",
            ),
            submit="Add alias",
        ),
    ]
    return site.show(session, f"Domain {domain}", body, problems=problems)


async def domain_settings(site: AdminSite, request: Request, session: Session) -> Response:
    domain = str(request.path_params["domain"]).lower()
    form = await request.form()
    description = form_text(form, "description", 500)
    disabled = bool(form.get("disabled"))

    async def again(problems: list[str]) -> Response:
        return await domain_page(site, request, session, problems)

    def change(doc: Any) -> None:
        dom = doc["domains"][doc_domain_key(doc, domain)]
        dom["description"] = description
        if disabled:
            dom["disabled"] = True
        elif "disabled" in dom:
            del dom["disabled"]

    back = f"/admin/domains/{domain}"
    return await site.edit(session, change, f"Settings of {domain} saved.", back, again)


def _alias_entry(doc: Any, domain: str, alias: str) -> Any:
    dom = doc["domains"][doc_domain_key(doc, domain)]
    aliases = dom.get("aliases", {})
    for key in aliases:
        if str(key).lower() == alias.lower():
            return aliases, str(key)
    raise EditError([f"no alias {alias}@{domain}"])


async def add_alias(site: AdminSite, request: Request, session: Session) -> Response:
    form = await request.form()
    domain, alias = form_text(form, "domain", 255).lower(), form_text(form, "alias", 200)
    members = [m.strip() for m in form_text(form, "members", 10_000).split(",") if m.strip()]
    back = f"/admin/domains/{domain}"

    async def again(problems: list[str]) -> Response:
        request.path_params["domain"] = domain
        return await domain_page(site, request, session, problems)

    if not alias or "@" in alias or any(c.isspace() for c in alias):
        return await again(["The alias needs a local part without '@' or spaces."])
    entry: dict[str, Any] = {"addresses": members}
    if form.get("post_public"):
        entry["post_public"] = True
    if form.get("list_members"):
        entry["list_members"] = True

    def change(doc: Any) -> None:
        dom = doc["domains"][doc_domain_key(doc, domain)]
        aliases = dom.setdefault("aliases", {})
        if any(str(k).lower() == alias.lower() for k in aliases):
            raise EditError([f"alias {alias}@{domain} already exists"])
        aliases[alias] = entry

    return await site.edit(session, change, f"Alias {alias}@{domain} added.", back, again)


async def remove_alias(site: AdminSite, request: Request, session: Session) -> Response:
    form = await request.form()
    domain, alias = form_text(form, "domain", 255).lower(), form_text(form, "alias", 200)

    async def again(problems: list[str]) -> Response:
        request.path_params["domain"] = domain
        return await domain_page(site, request, session, problems)

    def change(doc: Any) -> None:
        aliases, key = _alias_entry(doc, domain, alias)
        del aliases[key]

    back = f"/admin/domains/{domain}"
    return await site.edit(session, change, f"Alias {alias}@{domain} removed.", back, again)


async def alias_member(site: AdminSite, request: Request, session: Session) -> Response:
    form = await request.form()
    domain, alias = form_text(form, "domain", 255).lower(), form_text(form, "alias", 200)
    member, op = form_text(form, "member", 500), form_text(form, "op")

    async def again(problems: list[str]) -> Response:
        request.path_params["domain"] = domain
        return await domain_page(site, request, session, problems)

    def change(doc: Any) -> None:
        aliases, key = _alias_entry(doc, domain, alias)
        members = aliases[key].setdefault("addresses", [])
        present = [m for m in members if str(m).lower() == member.lower()]
        if op == "add":
            if present:
                raise EditError([f"{member} is already a member"])
            members.append(member)
        elif present:
            members.remove(present[0])
        else:
            raise EditError([f"{member} is not a member"])

    done = f"{member} {'added to' if op == 'add' else 'removed from'} {alias}@{domain}."
    return await site.edit(session, change, done, f"/admin/domains/{domain}", again)


async def dns_records(site: AdminSite, request: Request, session: Session) -> Response:
    domain = str(request.path_params["domain"]).lower()
    if domain not in site.env.config.config.domains:
        return site.show(session, "DNS records", el("p", f"No domain {domain!r}."), status=404)
    try:
        facts = await asyncio.to_thread(gather_facts, site.env.config, [domain])
    except ExpectError as exc:
        return site.show(session, f"DNS records for {domain}", "", problems=[str(exc)])
    text = render_zone(build_records(facts), hostname=facts.hostname)
    body: list[Child] = [
        el(
            "p",
            "The records this domain needs, as a zone file (the same as `mox dns zone`). "
            "Publish them at your DNS provider; ",
            el("a", "back to the domain", href=f"/admin/domains/{domain}"),
            ".",
        ),
        el("pre", text, class_="zone"),
    ]
    return site.show(session, f"DNS records for {domain}", body)


async def dnscheck(site: AdminSite, request: Request, session: Session) -> Response:
    domain = str(request.path_params["domain"]).lower()
    title = f"DNS check for {domain}"
    if domain not in site.env.config.config.domains:
        return site.show(session, title, el("p", f"No domain {domain!r}."), status=404)
    queue = site.env.queue
    resolver = queue.resolver if queue is not None else None
    if resolver is None:
        return site.show(
            session, title, "", problems=["No DNS resolver in this server (localserve)."]
        )
    try:
        facts = await asyncio.to_thread(gather_facts, site.env.config, [domain])
        report = await asyncio.wait_for(
            run_checks(facts, resolver, CheckOptions(timeout=5.0), resolver_name="the server's"),
            DNSCHECK_SECONDS,
        )
    except ExpectError as exc:
        return site.show(session, title, "", problems=[str(exc)])
    except CannotCheck as exc:
        return site.show(session, title, "", problems=[f"Cannot check: {exc}"])
    except TimeoutError:
        return site.show(
            session, title, "", problems=[f"The check took over {DNSCHECK_SECONDS:.0f} s."]
        )
    rows: list[list[Child]] = []
    for sec in report.sections:
        findings = [
            el(
                "li",
                el("span", f.status, class_=f"status-{f.status}"),
                f": {f.message}",
                el("pre", "\n".join(f.fix)) if f.fix else None,
            )
            for f in sec.findings
        ]
        rows.append(
            [
                sec.name,
                sec.target,
                el("span", sec.status, class_=f"status-{sec.status}"),
                el("ul", *findings),
            ]
        )
    summary = ", ".join(f"{report.count(s)} {s}" for s in ("error", "warning", "pass"))
    body: list[Child] = [
        el(
            "p",
            f"Results: {summary}. ",
            el("a", "Back to the domain", href=f"/admin/domains/{domain}"),
        ),
        table(["Check", "For", "Status", "Findings"], rows),
    ]
    return site.show(session, title, body)
