"""Typed values for every DNS-published format, each with `parse(text)` and `to_text()`.

The zone generator (`mox.dns.zone`) renders them and `mox dnscheck` parses what is published, so
both sides agree on one definition. TXT-based records take the TXT strings already joined
(RFC 7208 §3.3, RFC 6376 §3.6.2.2); the others take the RDATA presentation format (RFC 1035 §5.1)
as a resolver or a zone file shows it.

- SPF, RFC 7208 §4.6 and §12 (`Spf`)
- DKIM key record, RFC 6376 §3.6.1 and RFC 8463 (`DkimKey`)
- DMARC, RFC 7489 §6.3 (`Dmarc`)
- MTA-STS TXT record and policy, RFC 8461 §3.1 and §3.2 (`MtaStsRecord`, `MtaStsPolicy`)
- SMTP TLS Reporting, RFC 8460 §3 (`TlsRpt`)
- TLSA, RFC 6698 §2 and RFC 7672 §3 (`Tlsa`)
- SRV, RFC 2782 and RFC 6186 (`Srv`); MX, RFC 1035 §3.3.9 and RFC 7505 (`Mx`)
- CAA, RFC 8659 §4 and RFC 8657 (`Caa`)
"""

from __future__ import annotations

import base64
import ipaddress
import re
from dataclasses import dataclass, field

__all__ = [
    "Caa",
    "DkimKey",
    "Dmarc",
    "MtaStsPolicy",
    "MtaStsRecord",
    "Mx",
    "RecordError",
    "Spf",
    "SpfDirective",
    "Srv",
    "TlsRpt",
    "Tlsa",
    "fqdn",
    "unfqdn",
]


class RecordError(ValueError):
    """A published value that does not parse; the message says what is wrong."""


def fqdn(name: str) -> str:
    """`name` with exactly one trailing dot, lower case (RFC 1035 §5.1 absolute names)."""
    return name.rstrip(".").lower() + "."


def unfqdn(name: str) -> str:
    return name.rstrip(".").lower()


def _tag_list(text: str, what: str) -> list[tuple[str, str]]:
    """`tag=value; tag=value` (RFC 6376 §3.2, also RFC 7489 §6.4 and RFC 8460 §3)."""
    tags: list[tuple[str, str]] = []
    seen: set[str] = set()
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue  # RFC 6376 §3.2: a trailing ";" is allowed
        tag, eq, value = part.partition("=")
        tag = tag.strip()
        if not eq or not tag:
            raise RecordError(f"{what}: expected tag=value, got {part!r}")
        if tag.lower() in seen:
            raise RecordError(f"{what}: tag {tag!r} appears twice")  # RFC 6376 §3.2
        seen.add(tag.lower())
        tags.append((tag, value.strip()))
    return tags


# --- SPF ---

_SPF_MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
_SPF_QUALIFIERS = "+-~?"


@dataclass(frozen=True, slots=True)
class SpfDirective:
    """One mechanism with its qualifier (RFC 7208 §4.6.2, §5)."""

    mechanism: str
    qualifier: str = "+"
    value: str | None = None  # domain-spec, or the address for ip4/ip6
    cidr4: int | None = None
    cidr6: int | None = None

    def to_text(self) -> str:
        out = "" if self.qualifier == "+" else self.qualifier
        out += self.mechanism
        if self.value is not None:
            out += ":" + self.value
        if self.mechanism in ("ip4", "ip6"):
            cidr = self.cidr4 if self.mechanism == "ip4" else self.cidr6
            return out + (f"/{cidr}" if cidr is not None else "")
        if self.cidr4 is not None:
            out += f"/{self.cidr4}"
        if self.cidr6 is not None:
            out += f"//{self.cidr6}"
        return out


def _parse_spf_term(term: str) -> SpfDirective:
    qualifier = "+"
    if term[0] in _SPF_QUALIFIERS:
        qualifier, term = term[0], term[1:]
    name, sep, rest = term.partition(":")
    cidr4: int | None = None
    cidr6: int | None = None
    if not sep:
        name, slash, cidrs = term.partition("/")
        rest = ""
        if slash:
            rest = "/" + cidrs
    name = name.lower()
    if name not in _SPF_MECHANISMS:
        raise RecordError(f"SPF: unknown mechanism {term!r}")  # RFC 7208 §4.6.1 permerror
    value: str | None = None
    if name in ("ip4", "ip6"):
        if not sep:
            raise RecordError(f"SPF: {name} needs an address")
        addr, _, cidr = rest.partition("/")
        try:
            ip = ipaddress.ip_address(addr)
            if (name == "ip4") != (ip.version == 4):
                raise ValueError
            limit = 32 if name == "ip4" else 128
            bits = int(cidr) if cidr else None
            if bits is not None and not 0 <= bits <= limit:  # RFC 7208 §5.6
                raise ValueError
        except ValueError:
            raise RecordError(f"SPF: bad {name} value {rest!r}") from None
        if name == "ip4":
            cidr4 = bits
        else:
            cidr6 = bits
        return SpfDirective(name, qualifier, str(ip), cidr4, cidr6)
    if name == "all":
        if sep or rest:
            raise RecordError("SPF: all takes no value")
        return SpfDirective(name, qualifier)
    # RFC 7208 §5.3, §5.4: domain-spec [ip4-cidr-length] [ "/" ip6-cidr-length ]
    if "//" in rest:
        rest, cidr6_text = rest.split("//", 1)
        cidr6 = _cidr(cidr6_text, 128)
    if "/" in rest and name in ("a", "mx"):
        rest, cidr4_text = rest.rsplit("/", 1)
        cidr4 = _cidr(cidr4_text, 32)
    if rest.startswith("/"):
        rest = rest[1:]
    if rest:
        value = rest
    elif sep or name in ("include", "exists"):
        raise RecordError(f"SPF: {name} needs a domain")
    return SpfDirective(name, qualifier, value, cidr4, cidr6)


def _cidr(text: str, limit: int) -> int:
    try:
        bits = int(text)
    except ValueError:
        raise RecordError(f"SPF: bad prefix length {text!r}") from None
    if not 0 <= bits <= limit:
        raise RecordError(f"SPF: prefix length {bits} out of range")
    return bits


@dataclass(frozen=True, slots=True)
class Spf:
    """An SPF record (RFC 7208 §4.5, §12): `v=spf1` followed by directives and modifiers."""

    directives: tuple[SpfDirective, ...] = ()
    redirect: str | None = None
    explanation: str | None = None
    other_modifiers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Spf:
        terms = text.split()
        if not terms or terms[0].lower() != "v=spf1":
            raise RecordError("SPF: does not start with v=spf1")  # RFC 7208 §4.5
        directives: list[SpfDirective] = []
        redirect: str | None = None
        explanation: str | None = None
        other: list[tuple[str, str]] = []
        for term in terms[1:]:
            name, eq, value = term.partition("=")
            if eq and re.fullmatch(r"[A-Za-z][A-Za-z0-9._-]*", name):
                key = name.lower()
                if key == "redirect":
                    if redirect is not None:
                        raise RecordError("SPF: redirect appears twice")  # RFC 7208 §6
                    redirect = value
                elif key == "exp":
                    if explanation is not None:
                        raise RecordError("SPF: exp appears twice")  # RFC 7208 §6
                    explanation = value
                else:
                    other.append((name, value))  # RFC 7208 §6: unknown modifiers are ignored
                continue
            directives.append(_parse_spf_term(term))
        return cls(tuple(directives), redirect, explanation, tuple(other))

    def to_text(self) -> str:
        parts = ["v=spf1", *(d.to_text() for d in self.directives)]
        if self.redirect is not None:
            parts.append(f"redirect={self.redirect}")
        if self.explanation is not None:
            parts.append(f"exp={self.explanation}")
        parts += [f"{k}={v}" for k, v in self.other_modifiers]
        return " ".join(parts)


# --- DKIM key record ---


@dataclass(frozen=True, slots=True)
class DkimKey:
    """A DKIM public key record at `<selector>._domainkey.<domain>` (RFC 6376 §3.6.1)."""

    public_key: bytes  # empty: revoked (RFC 6376 §3.6.1 p=)
    key_type: str = "rsa"  # RFC 6376 §3.6.1 k=, RFC 8463 §4 "ed25519"
    hashes: tuple[str, ...] = ()  # h=, empty means all
    version: str = "DKIM1"
    services: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    notes: str = ""

    @classmethod
    def parse(cls, text: str) -> DkimKey:
        tags = _tag_list(text, "DKIM")
        values = {k.lower(): v for k, v in tags}
        if "v" in values and tags[0][0].lower() != "v":
            raise RecordError("DKIM: v= must be the first tag")  # RFC 6376 §3.6.1
        version = values.get("v", "DKIM1")
        if version != "DKIM1":
            raise RecordError(f"DKIM: unknown version {version!r}")
        if "p" not in values:
            raise RecordError("DKIM: missing p= (public key)")  # RFC 6376 §3.6.1 p= REQUIRED
        key_text = re.sub(r"\s+", "", values["p"])
        try:
            key = base64.b64decode(key_text, validate=True)
        except ValueError:  # binascii.Error, and non-ASCII text (found by tests/fuzz)
            raise RecordError("DKIM: p= is not valid base64") from None

        def split(value: str | None, sep: str) -> tuple[str, ...]:
            return tuple(x.strip().lower() for x in value.split(sep) if x.strip()) if value else ()

        return cls(
            public_key=key,
            key_type=values.get("k", "rsa").lower(),
            hashes=split(values.get("h"), ":"),
            version=version,
            services=split(values.get("s"), ":"),
            flags=split(values.get("t"), ":"),
            notes=values.get("n", ""),
        )

    def to_text(self) -> str:
        # Field order and separators as mox: "v=DKIM1;h=sha256;k=ed25519;p=...".
        parts = [f"v={self.version}"]
        if self.hashes:
            parts.append("h=" + ":".join(self.hashes))
        if self.key_type != "rsa":
            parts.append(f"k={self.key_type}")
        if self.services:
            parts.append("s=" + ":".join(self.services))
        if self.flags:
            parts.append("t=" + ":".join(self.flags))
        if self.notes:
            parts.append(f"n={self.notes}")
        parts.append("p=" + base64.b64encode(self.public_key).decode("ascii"))
        return ";".join(parts)


# --- DMARC ---

_DMARC_POLICIES = ("none", "quarantine", "reject")


@dataclass(frozen=True, slots=True)
class Dmarc:
    """A DMARC policy record at `_dmarc.<domain>` (RFC 7489 §6.3)."""

    policy: str
    subdomain_policy: str | None = None
    rua: tuple[str, ...] = ()
    ruf: tuple[str, ...] = ()
    adkim: str = "r"
    aspf: str = "r"
    percentage: int = 100
    report_interval: int = 86400
    failure_options: str = "0"
    # np=, policy for non-existent subdomains (RFC 9091 §4.1); None: sp (or p) applies
    nonexistent_policy: str | None = None

    @classmethod
    def parse(cls, text: str) -> Dmarc:
        tags = _tag_list(text, "DMARC")
        # RFC 7489 §6.4: v=DMARC1 first, then p.
        if not tags or tags[0][0].lower() != "v" or tags[0][1] != "DMARC1":
            raise RecordError("DMARC: does not start with v=DMARC1")
        values = {k.lower(): v for k, v in tags}
        policy = values.get("p", "").lower()
        if policy not in _DMARC_POLICIES:
            raise RecordError(f"DMARC: p= must be none, quarantine or reject (got {policy!r})")
        sp = values.get("sp")
        if sp is not None and sp.lower() not in _DMARC_POLICIES:
            raise RecordError(f"DMARC: bad sp= {sp!r}")
        np = values.get("np")
        if np is not None and np.lower() not in _DMARC_POLICIES:
            raise RecordError(f"DMARC: bad np= {np!r}")  # RFC 9091 §4.1
        for key in ("adkim", "aspf"):
            if values.get(key, "r").lower() not in ("r", "s"):
                raise RecordError(f"DMARC: {key}= must be r or s")  # RFC 7489 §6.3
        try:
            pct = int(values.get("pct", "100"))
            ri = int(values.get("ri", "86400"))
        except ValueError:
            raise RecordError("DMARC: pct= and ri= must be numbers") from None
        if not 0 <= pct <= 100:
            raise RecordError("DMARC: pct= must be 0 to 100")

        def uris(value: str | None) -> tuple[str, ...]:
            return tuple(u.strip() for u in value.split(",") if u.strip()) if value else ()

        return cls(
            policy=policy,
            subdomain_policy=sp.lower() if sp else None,
            rua=uris(values.get("rua")),
            ruf=uris(values.get("ruf")),
            adkim=values.get("adkim", "r").lower(),
            aspf=values.get("aspf", "r").lower(),
            percentage=pct,
            report_interval=ri,
            failure_options=values.get("fo", "0"),
            nonexistent_policy=np.lower() if np else None,
        )

    def to_text(self) -> str:
        # mox's form: "v=DMARC1;p=reject;rua=mailto:dmarcreports@example.com!10m".
        parts = ["v=DMARC1", f"p={self.policy}"]
        if self.subdomain_policy is not None:
            parts.append(f"sp={self.subdomain_policy}")
        if self.rua:
            parts.append("rua=" + ",".join(self.rua))
        if self.ruf:
            parts.append("ruf=" + ",".join(self.ruf))
        if self.adkim != "r":
            parts.append(f"adkim={self.adkim}")
        if self.aspf != "r":
            parts.append(f"aspf={self.aspf}")
        if self.percentage != 100:
            parts.append(f"pct={self.percentage}")
        if self.report_interval != 86400:
            parts.append(f"ri={self.report_interval}")
        if self.failure_options != "0":
            parts.append(f"fo={self.failure_options}")
        if self.nonexistent_policy is not None:
            parts.append(f"np={self.nonexistent_policy}")
        return ";".join(parts)

    def rua_addresses(self) -> list[str]:
        """The mailto: addresses of rua, without the size limit (RFC 7489 §6.2)."""
        return _mailto_addresses(self.rua)


def _mailto_addresses(uris: tuple[str, ...]) -> list[str]:
    out = []
    for uri in uris:
        if uri.lower().startswith("mailto:"):
            out.append(uri[7:].split("!", 1)[0].lower())
    return out


# --- MTA-STS ---


@dataclass(frozen=True, slots=True)
class MtaStsRecord:
    """The `_mta-sts.<domain>` TXT record (RFC 8461 §3.1)."""

    id: str
    extensions: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> MtaStsRecord:
        tags = _tag_list(text, "MTA-STS")
        if not tags or tags[0] != ("v", "STSv1"):
            raise RecordError("MTA-STS: does not start with v=STSv1")  # RFC 8461 §3.1
        values = dict(tags[1:])
        ident = values.pop("id", "")
        if not re.fullmatch(r"[A-Za-z0-9]{1,32}", ident):
            raise RecordError("MTA-STS: id must be 1 to 32 letters and digits")  # RFC 8461 §3.1
        return cls(ident, tuple(values.items()))

    def to_text(self) -> str:
        return "; ".join(["v=STSv1", f"id={self.id}", *(f"{k}={v}" for k, v in self.extensions)])


@dataclass(frozen=True, slots=True)
class MtaStsPolicy:
    """The policy served at `https://mta-sts.<domain>/.well-known/mta-sts.txt` (RFC 8461 §3.2)."""

    mode: str
    max_age: int
    mx: tuple[str, ...] = ()
    extensions: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> MtaStsPolicy:
        values: dict[str, str] = {}
        mx: list[str] = []
        extensions: list[tuple[str, str]] = []
        for line in text.replace("\r\n", "\n").split("\n"):
            if not line.strip():
                continue
            key, colon, value = line.partition(":")
            if not colon:
                raise RecordError(f"MTA-STS policy: expected key: value, got {line!r}")
            key, value = key.strip(), value.strip()
            if key == "mx":
                mx.append(value.lower())
            elif key in ("version", "mode", "max_age"):
                if key in values:
                    raise RecordError(f"MTA-STS policy: {key} appears twice")
                values[key] = value
            else:
                extensions.append((key, value))
        if values.get("version") != "STSv1":
            raise RecordError("MTA-STS policy: version must be STSv1")  # RFC 8461 §3.2
        mode = values.get("mode", "")
        if mode not in ("enforce", "testing", "none"):
            raise RecordError(f"MTA-STS policy: bad mode {mode!r}")
        age = values.get("max_age", "")
        if not re.fullmatch(r"[0-9]{1,10}", age) or int(age) > 31557600:
            raise RecordError("MTA-STS policy: max_age must be 0 to 31557600")  # RFC 8461 §3.2
        if mode != "none" and not mx:
            raise RecordError("MTA-STS policy: no mx lines")
        return cls(mode, int(age), tuple(mx), tuple(extensions))

    def to_text(self) -> str:
        lines = ["version: STSv1", f"mode: {self.mode}", *(f"mx: {m}" for m in self.mx)]
        lines.append(f"max_age: {self.max_age}")
        lines += [f"{k}: {v}" for k, v in self.extensions]
        return "".join(line + "\r\n" for line in lines)  # RFC 8461 §3.2: CRLF line ends

    def matches(self, host: str) -> bool:
        """Whether an MX host name is allowed, with `*.` matching one label (RFC 8461 §4.1)."""
        host = unfqdn(host)
        for pattern in self.mx:
            pattern = unfqdn(pattern)
            if pattern.startswith("*."):
                if host.count(".") >= 1 and host.split(".", 1)[1] == pattern[2:]:
                    return True
            elif host == pattern:
                return True
        return False


# --- TLSRPT ---


@dataclass(frozen=True, slots=True)
class TlsRpt:
    """The `_smtp._tls.<domain>` TXT record (RFC 8460 §3)."""

    rua: tuple[str, ...]
    extensions: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> TlsRpt:
        tags = _tag_list(text, "TLSRPT")
        if not tags or tags[0] != ("v", "TLSRPTv1"):
            raise RecordError("TLSRPT: does not start with v=TLSRPTv1")  # RFC 8460 §3
        values = dict(tags[1:])
        rua = tuple(u.strip() for u in values.pop("rua", "").split(",") if u.strip())
        if not rua:
            raise RecordError("TLSRPT: rua= is missing")  # RFC 8460 §3: rua is required
        for uri in rua:
            if not uri.lower().startswith(("mailto:", "https:")):
                raise RecordError(f"TLSRPT: rua {uri!r} must be mailto: or https:")
        return cls(rua, tuple(values.items()))

    def to_text(self) -> str:
        parts = ["v=TLSRPTv1", "rua=" + ",".join(self.rua)]
        parts += [f"{k}={v}" for k, v in self.extensions]
        return "; ".join(parts)

    def rua_addresses(self) -> list[str]:
        return _mailto_addresses(self.rua)


# --- TLSA, SRV, MX, CAA (RDATA presentation format) ---


def _ints(text: str, count: int, what: str) -> tuple[list[int], list[str]]:
    words = text.split()
    if len(words) < count:
        raise RecordError(f"{what}: expected at least {count + 1} fields")
    try:
        numbers = [int(w) for w in words[:count]]
    except ValueError:
        raise RecordError(f"{what}: expected numbers, got {text!r}") from None
    return numbers, words[count:]


@dataclass(frozen=True, slots=True)
class Tlsa:
    """A TLSA record (RFC 6698 §2.1); mox publishes `3 1 1` (DANE-EE, SPKI, SHA-256)."""

    usage: int
    selector: int
    matching_type: int
    data: bytes

    @classmethod
    def parse(cls, text: str) -> Tlsa:
        (usage, selector, mtype), rest = _ints(text, 3, "TLSA")
        try:
            data = bytes.fromhex("".join(rest))
        except ValueError:
            raise RecordError("TLSA: association data is not hex") from None
        if not data or not all(0 <= n <= 255 for n in (usage, selector, mtype)):
            raise RecordError("TLSA: fields out of range or no data")
        return cls(usage, selector, mtype, data)

    def to_text(self) -> str:
        return f"{self.usage} {self.selector} {self.matching_type} {self.data.hex()}"


@dataclass(frozen=True, slots=True)
class Srv:
    """An SRV record (RFC 2782); target "." with port 0 says the service is not offered."""

    priority: int
    weight: int
    port: int
    target: str

    @classmethod
    def parse(cls, text: str) -> Srv:
        (priority, weight, port), rest = _ints(text, 3, "SRV")
        if len(rest) != 1:
            raise RecordError("SRV: expected priority weight port target")
        return cls(priority, weight, port, fqdn(rest[0]) if rest[0] != "." else ".")

    def to_text(self) -> str:
        return f"{self.priority} {self.weight} {self.port} {self.target}"

    @property
    def unavailable(self) -> bool:
        return self.target == "."  # RFC 2782 "Target": "." means decidedly not available


@dataclass(frozen=True, slots=True)
class Mx:
    """An MX record (RFC 1035 §3.3.9); `0 .` is a null MX (RFC 7505)."""

    preference: int
    host: str

    @classmethod
    def parse(cls, text: str) -> Mx:
        (preference,), rest = _ints(text, 1, "MX")
        if len(rest) != 1:
            raise RecordError("MX: expected preference host")
        return cls(preference, fqdn(rest[0]) if rest[0] != "." else ".")

    def to_text(self) -> str:
        return f"{self.preference} {self.host}"

    @property
    def is_null(self) -> bool:
        return self.host == "."  # RFC 7505 §3


@dataclass(frozen=True, slots=True)
class Caa:
    """A CAA record (RFC 8659 §4.1), e.g. `0 issue "letsencrypt.org"`."""

    flags: int
    tag: str
    value: str
    parameters: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @classmethod
    def parse(cls, text: str) -> Caa:
        m = re.fullmatch(r'\s*(\d+)\s+([A-Za-z0-9]+)\s+"((?:[^"\\]|\\.)*)"\s*', text)
        if m is None:
            m = re.fullmatch(r"\s*(\d+)\s+([A-Za-z0-9]+)\s+(\S*)\s*", text)
        if m is None:
            raise RecordError(f'CAA: expected flags tag "value", got {text!r}')
        flags = int(m.group(1))
        if flags > 255:
            raise RecordError("CAA: flags out of range")
        value = re.sub(r"\\(.)", r"\1", m.group(3))
        params: list[tuple[str, str]] = []
        tag = m.group(2).lower()
        if tag in ("issue", "issuewild"):
            # RFC 8659 §4.2: issuer-domain-name *(";" parameter)
            for part in value.split(";")[1:]:
                key, _, val = part.strip().partition("=")
                if key:
                    params.append((key.strip(), val.strip()))
        return cls(flags, tag, value, tuple(params))

    @property
    def issuer(self) -> str:
        """The issuer domain of an issue/issuewild value; empty means "no CA" (RFC 8659 §4.2)."""
        return self.value.split(";", 1)[0].strip().lower()

    def to_text(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.flags} {self.tag} "{escaped}"'
