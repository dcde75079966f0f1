"""dnscheck sections for what clients and senders find: MTA-STS (record and fetched policy), SRV
(RFC 6186, RFC 8314), autoconfig/autodiscover and CAA (RFC 8659)."""

from __future__ import annotations

from mox.dns.check.connect import TlsFailure, client_context, https_get
from mox.dns.check.context import Context
from mox.dns.check.model import Section
from mox.dns.expected import mta_sts_id, mta_sts_policy
from mox.dns.records import Caa, MtaStsPolicy, MtaStsRecord, Mx, RecordError, Srv
from mox.dns.resolver import DnsError, NotFound

__all__ = ["check_autoconfig", "check_caa", "check_mta_sts", "check_srv"]

DAY = 86400


async def check_mta_sts(ctx: Context, domain: str) -> Section:
    sec = Section("MTA-STS", domain)
    dom = ctx.domain(domain)
    fix = ctx.fix("MTA-STS", domain)
    policy = mta_sts_policy(ctx.facts, dom)
    ident = mta_sts_id(ctx.facts, dom)
    if policy is None or ident is None:
        sec.warn(
            "MTA-STS is not configured (domains.*.mta_sts): senders deliver with unverified TLS "
            "unless they use DANE"
        )
        return sec
    try:
        records = await ctx.txt(f"_mta-sts.{domain}", "v=STSv1")
    except DnsError as exc:
        sec.error(f"lookup failed: {exc.reason}")
        return sec
    if len(records) != 1:
        what = "no MTA-STS record" if not records else f"{len(records)} MTA-STS records"
        sec.error(f"{what} at _mta-sts.{domain}; there must be one (RFC 8461 §3.1)", fix)
        return sec
    try:
        record = MtaStsRecord.parse(records[0])
    except RecordError as exc:
        sec.error(str(exc), fix)
        return sec
    if record.id != ident:
        sec.error(
            f"the published id {record.id} is not the id of the configured policy ({ident}): "
            "senders only fetch the policy again when the id changes, so the id must follow "
            "the policy (RFC 8461 §3.1)",
            fix,
        )
    else:
        sec.ok(f"_mta-sts record with id {ident}")
    host = f"mta-sts.{domain}"
    ips = [ctx.options.connect_ip] if ctx.options.connect_ip else await ctx.ips(host)
    if not ips:
        sec.error(f"{host} has no addresses: the policy cannot be fetched", fix)
        return sec
    cafile = str(ctx.options.tls_ca) if ctx.options.tls_ca else None
    url = f"https://{host}/.well-known/mta-sts.txt"
    try:
        resp = await https_get(
            ips[0],
            ctx.options.https_port,
            host,
            "/.well-known/mta-sts.txt",
            client_context(cafile),
            ctx.options.timeout,
        )
    except TlsFailure as exc:
        sec.error(f"fetching {url}: {exc}")
        return sec
    if resp.status != 200:  # RFC 8461 §3.3: only 200, no redirects
        sec.error(f"fetching {url}: HTTP status {resp.status}, expected 200")
        return sec
    if not resp.headers.get("content-type", "").lower().startswith("text/plain"):
        sec.warn(f"{url} is served as {resp.headers.get('content-type')!r}, not text/plain")
    try:
        served = MtaStsPolicy.parse(resp.body.decode("utf-8", "replace"))
    except RecordError as exc:
        sec.error(f"{url}: {exc}")
        return sec
    if served != policy:
        sec.error(
            f"the served policy (mode {served.mode}, max_age {served.max_age}, mx "
            f"{', '.join(served.mx)}) differs from the configured one (mode {policy.mode}, "
            f"max_age {policy.max_age}, mx {', '.join(policy.mx)})"
        )
    if served.mode != "enforce":
        sec.warn(f"policy mode is {served.mode}: senders do not enforce TLS; use enforce")
    if served.max_age < DAY:
        sec.warn(f"policy max_age is {served.max_age}s; RFC 8461 §3.2 suggests weeks")
    if not served.matches(ctx.facts.hostname):
        sec.error(f"the policy's mx lines do not allow our host {ctx.facts.hostname}")
    try:
        mxs = [Mx.parse(r) for r in (await ctx.resolver.query(domain, "MX")).records]
    except (DnsError, RecordError):
        mxs = []
    for mx in mxs:
        if not mx.is_null and not served.matches(mx.host):
            sec.error(f"MX host {mx.host} is not allowed by the policy: delivery to it fails")
    if served == policy and served.mode == "enforce":
        mx_list = ", ".join(served.mx)
        sec.ok(f"policy at {url}: mode enforce, max_age {served.max_age}, mx {mx_list}")
    return sec


async def check_srv(ctx: Context, domain: str) -> Section:
    """SRV records for IMAP and submission (RFC 6186 §3, RFC 8314 §5.1)."""
    sec = Section("SRV", domain)
    for spec in ctx.expected("SRV", domain):
        fix = ctx.fix("SRV", domain, spec.name)
        want = Srv.parse(spec.value)
        report = sec.error if spec.need == "required" else sec.warn
        try:
            answer = await ctx.resolver.query(spec.name, "SRV")
            found = [Srv.parse(r) for r in answer.records]
        except NotFound:
            if spec.need == "optional":
                report = sec.warn
            report(f"no SRV record at {spec.name}", fix)
            continue
        except (DnsError, RecordError) as exc:
            report(f"{spec.name}: {exc}", fix)
            continue
        if want.unavailable:
            if all(s.unavailable for s in found):
                sec.ok(f"{spec.name}: service marked as not offered")
            else:
                sec.warn(f"{spec.name} points to a service we do not offer", fix)
            continue
        if any(s.target == want.target and s.port == want.port for s in found):
            sec.ok(f"{spec.name}: {want.target} port {want.port}")
        else:
            report(
                f"{spec.name} is {', '.join(s.to_text() for s in found)}, expected "
                f"{want.to_text()}",
                fix,
            )
    return sec


async def check_autoconfig(ctx: Context, domain: str) -> Section:
    """autoconfig.<domain>, the client settings host and `_autodiscover._tcp` reach our IPs."""
    sec = Section("Autoconfig", domain)
    specs = ctx.expected("Autoconfig", domain)
    if not specs:
        sec.warn("no HTTPS listener in the config, so no autoconfig/autodiscover to publish")
        return sec
    for spec in specs:
        fix = ctx.fix("Autoconfig", domain, spec.name)
        if spec.rtype == "CNAME":
            ips = await ctx.ips(spec.name)
            if not ips:
                sec.error(f"{spec.name} does not resolve", fix)
            elif not all(ctx.our_ip(ip) for ip in ips):
                sec.error(f"{spec.name} resolves to {', '.join(ips)}, not only to our IPs", fix)
            else:
                sec.ok(f"{spec.name} resolves to our IPs")
            continue
        want = Srv.parse(spec.value)
        try:
            found = [Srv.parse(r) for r in (await ctx.resolver.query(spec.name, "SRV")).records]
        except (DnsError, RecordError) as exc:
            msg = "no SRV record" if isinstance(exc, NotFound) else str(exc)
            sec.warn(f"{spec.name}: {msg}", fix)
            continue
        good = [s for s in found if s.port == want.port and not s.unavailable]
        if not good:
            sec.warn(f"{spec.name} does not point to port {want.port}", fix)
        elif not all(ctx.our_ip(ip) for ip in await ctx.ips(good[0].target) or ["-"]):
            sec.warn(f"{spec.name} points to {good[0].target}, which is not our host", fix)
        else:
            sec.ok(f"{spec.name} points to {good[0].target} port {want.port}")
    return sec


async def _caa_set(ctx: Context, name: str, stop: str) -> tuple[str, list[Caa]]:
    """The relevant CAA RRset: climb from name up to (and including) `stop` (RFC 8659 §3)."""
    labels = name.split(".")
    for i in range(len(labels)):
        candidate = ".".join(labels[i:])
        try:
            answer = await ctx.resolver.query(candidate, "CAA")
        except NotFound:
            answer = None
        if answer is not None and answer.records:
            return candidate, [Caa.parse(r) for r in answer.records]
        if candidate == stop:
            break
    return "", []


async def check_caa(ctx: Context, domain: str) -> Section:
    """CAA records, if any, allow the CA that issues our certificates (RFC 8659 §4.2)."""
    sec = Section("CAA", domain)
    fix = ctx.fix("CAA", domain)
    issuers = ctx.facts.caa_issuers
    names = [domain, ctx.facts.hostname] if ctx.facts.hostname.endswith("." + domain) else [domain]
    for name in names:
        try:
            where, caa = await _caa_set(ctx, name, domain)
        except (DnsError, RecordError) as exc:
            sec.error(f"CAA lookup for {name}: {exc}")
            continue
        allowed = {c.issuer for c in caa if c.tag == "issue"}
        if not caa or not any(c.tag == "issue" for c in caa):
            sec.ok(f"no CAA restriction for {name}: any CA may issue (optional record)")
            continue
        if not issuers:
            sec.warn(
                f"CAA at {where} allows only {', '.join(sorted(allowed)) or 'no CA'}: make sure "
                "the CA of your certificate is one of them (name it with --caa-issuer)"
            )
            continue
        denied = [i for i in issuers if i not in allowed]
        if denied:
            sec.error(
                f"CAA at {where} does not allow {', '.join(denied)}, which issues our "
                "certificates: renewal will fail",
                fix,
            )
        else:
            sec.ok(f"CAA for {name} (at {where}) allows {', '.join(issuers)}")
    return sec
