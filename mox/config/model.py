"""The declarative configuration: one pydantic model for a whole installation.

Every field is described; the JSON Schema in `schemas/mox.schema.json` is generated from these
models (`mox config schema`) and documents the file format. Unknown keys are refused
(`extra="forbid"`), so a typo never silently falls back to a default. Secrets and keys are files
beside the config (`*_file`),
never inside it. Paths are relative to the directory of the config file.

Cross-field rules (an account's domain exists, an address belongs to one account only, ...) are
checked in `mox.config.load`, which also reads the files named here.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "Account",
    "Acme",
    "Alias",
    "Config",
    "Destination",
    "Dkim",
    "DkimSelector",
    "DnsSettings",
    "Domain",
    "JunkFilter",
    "Limits",
    "Listener",
    "MtaSts",
    "Queue",
    "ReportAddress",
    "Route",
    "Ruleset",
    "ServiceImap",
    "ServiceSmtp",
    "ServiceSubmission",
    "ServiceToggle",
    "SubjectPass",
    "Tls",
    "Transport",
    "Webhook",
]

# RFC 1035 §2.3.1 host names, lower case, after IDNA (RFC 5891); no trailing dot.
_HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

Port = Annotated[int, Field(ge=1, le=65535)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=False)


def normalize_domain(value: str) -> str:
    """Lower-case and IDNA-encode a domain name (RFC 5891), refusing what is not a host name."""
    text = value.strip().rstrip(".").lower()
    try:
        ascii_name = text.encode("idna").decode("ascii") if not text.isascii() else text
    except UnicodeError as exc:
        raise ValueError(f"not a valid international domain name: {exc}") from None
    if not _HOSTNAME_RE.match(ascii_name):
        raise ValueError(
            "expected a domain name like mail.example.com (letters, digits, '-' and '.')"
        )
    return ascii_name


def _check_ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError("expected an IPv4 or IPv6 address") from None


IPAddress = Annotated[str, AfterValidator(_check_ip)]


AcmeChallenge = Literal["tls-alpn-01", "http-01"]
DEFAULT_CHALLENGES: tuple[AcmeChallenge, ...] = ("tls-alpn-01", "http-01")


class Acme(_Model):
    """An ACME certificate authority (RFC 8555), e.g. Let's Encrypt."""

    directory_url: str = Field(
        description="The CA's directory URL, e.g. https://acme-v02.api.letsencrypt.org/directory."
    )
    contact_email: str = Field(description="Address the CA may write to about certificates.")
    challenges: list[AcmeChallenge] = Field(
        default_factory=lambda: list(DEFAULT_CHALLENGES),
        min_length=1,
        description=(
            "Challenge types to use, in order of preference: tls-alpn-01 (RFC 8737) is answered "
            "by the HTTPS listener, http-01 by the HTTP listener."
        ),
    )
    ca_file: Path | None = Field(
        default=None,
        description="Extra CA certificate (PEM) to trust for the directory's HTTPS, for test CAs.",
    )
    issuer_domain_name: str | None = Field(
        default=None,
        description="CA's domain for CAA records (RFC 8659), e.g. letsencrypt.org.",
    )


class Tls(_Model):
    """TLS for a listener: certificate and key from files (reloaded on SIGHUP), or ACME."""

    cert_file: Path | None = Field(
        default=None, description="PEM file with the certificate chain, leaf first."
    )
    key_file: Path | None = Field(
        default=None, description="PEM file with the private key of cert_file (PKCS#8 or PKCS#1)."
    )
    acme: str | None = Field(
        default=None,
        description="Name of an entry in `acme` to obtain certificates automatically (RFC 8555).",
    )
    min_version: Literal["TLSv1.2", "TLSv1.3"] = Field(
        default="TLSv1.2", description="Lowest TLS version accepted from clients."
    )
    host_private_key_files: list[Path] = Field(
        default_factory=list,
        description=(
            "PKCS#8 PEM host keys (ECDSA P-256, RSA-2048) that certificates are issued for, kept "
            "stable across renewals; `mox dns zone` publishes a DANE TLSA 3 1 1 record for each "
            "(RFC 7672)."
        ),
    )


class ServiceToggle(_Model):
    """A service on a listener that only needs to be switched on and given a port."""

    enabled: bool = Field(default=False, description="Whether to listen for this service.")
    port: Port | None = Field(
        default=None, description="TCP port; the service's standard port when omitted."
    )


class ServiceSmtp(ServiceToggle):
    """SMTP for incoming mail from other servers (RFC 5321), normally port 25."""

    starttls: bool = Field(
        default=True, description="Offer STARTTLS (RFC 3207) when the listener has TLS."
    )
    require_starttls: bool = Field(
        default=False,
        description="Refuse mail over connections that did not do STARTTLS (RFC 3207 §4).",
    )
    dnsbls: list[str] = Field(
        default_factory=list,
        description=(
            "DNS blocklist zones (RFC 5782), e.g. `bl.spamcop.net`, consulted in order for mail "
            "to accounts with a junk filter when reputation and content say nothing against it; "
            "a zone is only used while it lists 127.0.0.2 and not 127.0.0.1."
        ),
    )


class ServiceSubmission(ServiceToggle):
    """Message submission for the users' mail clients (RFC 6409), normally port 587."""

    require_starttls: bool = Field(
        default=True,
        description="Refuse AUTH before STARTTLS, so passwords never cross the network in clear.",
    )


class ServiceImap(ServiceToggle):
    """IMAP with STARTTLS (RFC 9051), normally port 143."""

    require_starttls: bool = Field(
        default=True,
        description="Announce LOGINDISABLED and refuse logins before STARTTLS (RFC 9051 §6.2.3).",
    )


class Listener(_Model):
    """A set of IP addresses and the services offered on them."""

    ips: list[IPAddress] = Field(
        min_length=1, description='IP addresses to listen on, e.g. ["0.0.0.0", "::"].'
    )
    hostname: str | None = Field(
        default=None,
        description="Host name to announce on this listener, instead of the global hostname.",
    )
    tls: Tls | None = Field(default=None, description="TLS settings; without it, no STARTTLS/TLS.")
    max_message_size: int = Field(
        default=100 * 1024 * 1024,
        ge=1024,
        description="Largest message accepted over SMTP, in bytes (SIZE, RFC 1870).",
    )
    smtp: ServiceSmtp = Field(
        default_factory=ServiceSmtp, description="Incoming SMTP (port 25 by default)."
    )
    submission: ServiceSubmission = Field(
        default_factory=ServiceSubmission,
        description="Submission with STARTTLS (port 587 by default, RFC 6409).",
    )
    submissions: ServiceToggle = Field(
        default_factory=ServiceToggle,
        description="Submission with implicit TLS (port 465 by default, RFC 8314).",
    )
    imap: ServiceImap = Field(
        default_factory=ServiceImap, description="IMAP with STARTTLS (port 143 by default)."
    )
    imaps: ServiceToggle = Field(
        default_factory=ServiceToggle,
        description="IMAP with implicit TLS (port 993 by default, RFC 8314).",
    )
    http: ServiceToggle = Field(
        default_factory=ServiceToggle,
        description="Plain HTTP: ACME http-01, redirects (port 80 by default).",
    )
    https: ServiceToggle = Field(
        default_factory=ServiceToggle,
        description="HTTPS: webmail, account and admin pages, MTA-STS, autoconfig (443 default).",
    )

    @field_validator("hostname")
    @classmethod
    def _check_hostname(cls, value: str | None) -> str | None:
        return None if value is None else normalize_domain(value)


class DkimSelector(_Model):
    """One DKIM key (RFC 6376), published at `<selector>._domainkey.<domain>`."""

    private_key_file: Path = Field(description="PKCS#8 PEM private key (RSA-2048 or ed25519).")
    hash: Literal["sha256"] = Field(default="sha256", description="Hash algorithm (RFC 8301).")
    headers: list[str] = Field(
        default_factory=lambda: [
            "From",
            "To",
            "Cc",
            "Subject",
            "Date",
            "Message-Id",
            "Reply-To",
            "In-Reply-To",
            "References",
            "MIME-Version",
            "Content-Type",
            "Content-Transfer-Encoding",
        ],
        description="Header fields to sign; must include From (RFC 6376 §5.4).",
    )
    canonicalization: Literal[
        "relaxed/relaxed", "simple/simple", "relaxed/simple", "simple/relaxed"
    ] = Field(
        default="relaxed/relaxed", description="Header/body canonicalization (RFC 6376 §3.4)."
    )

    @field_validator("headers")
    @classmethod
    def _from_signed(cls, value: list[str]) -> list[str]:
        if "from" not in {h.lower() for h in value}:
            raise ValueError("must include From (RFC 6376 §5.4)")
        return value


class Dkim(_Model):
    """DKIM keys of a domain and which of them sign outgoing mail."""

    selectors: dict[str, DkimSelector] = Field(
        default_factory=dict, description="Keys by selector name."
    )
    sign: list[str] = Field(
        default_factory=list, description="Selectors that sign outgoing messages."
    )


class ReportAddress(_Model):
    """An address where reports arrive, delivered into an account's mailbox."""

    localpart: str = Field(description="Local part of the reporting address, e.g. dmarcreports.")
    account: str = Field(description="Account that receives the reports.")
    mailbox: str = Field(description="Mailbox in that account for the reports.")


class MtaSts(_Model):
    """MTA-STS policy published for the domain (RFC 8461)."""

    policy_id: str = Field(
        pattern=r"^[A-Za-z0-9]{1,32}$",
        description="Policy id in the _mta-sts TXT record; change it when the policy changes.",
    )
    mode: Literal["enforce", "testing", "none"] = Field(
        default="enforce", description="Policy mode (RFC 8461 §3.2)."
    )
    max_age: int = Field(
        default=86400, ge=60, le=31557600, description="Policy lifetime in seconds."
    )
    mx: list[str] = Field(
        default_factory=list,
        description="MX host patterns allowed; the hostname when empty.",
    )


class Alias(_Model):
    """An address that delivers to several accounts' addresses (a list)."""

    addresses: list[str] = Field(min_length=1, description="Member addresses (local accounts).")
    post_public: bool = Field(default=False, description="Anyone may send to the alias.")
    list_members: bool = Field(default=False, description="Members may see the member list.")
    allow_msg_from: bool = Field(
        default=False, description="Members may send with the alias as From address."
    )


class Domain(_Model):
    """A mail domain we accept and send mail for."""

    description: str = Field(default="", description="Free text for the admin pages.")
    disabled: bool = Field(default=False, description="Temporarily refuse mail for the domain.")
    client_settings_domain: str | None = Field(
        default=None,
        description="Host name mail clients should use (autoconfig, SRV), when not the hostname.",
    )
    localpart_catchall_separators: list[str] = Field(
        default_factory=lambda: ["+"],
        description="Characters that start a sub-address: alice+tag@ delivers to alice@.",
    )
    localpart_case_sensitive: bool = Field(
        default=False, description="Whether Alice@ and alice@ are different addresses."
    )
    dkim: Dkim = Field(default_factory=Dkim, description="DKIM keys and signing selectors.")
    dmarc: ReportAddress | None = Field(
        default=None, description="Where DMARC aggregate reports for this domain arrive."
    )
    tlsrpt: ReportAddress | None = Field(
        default=None, description="Where TLS reports (RFC 8460) for this domain arrive."
    )
    mta_sts: MtaSts | None = Field(default=None, description="MTA-STS policy to publish.")
    aliases: dict[str, Alias] = Field(
        default_factory=dict, description="Aliases/lists by local part."
    )

    @field_validator("localpart_catchall_separators")
    @classmethod
    def _separators(cls, value: list[str]) -> list[str]:
        for sep in value:
            if len(sep) != 1 or sep.isalnum() or sep in "@. ":
                raise ValueError(f"separator {sep!r} must be one punctuation character, like '+'")
        return value


def _check_regexp(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    return value


Regexp = Annotated[str, AfterValidator(_check_regexp)]


class Ruleset(_Model):
    """A rule for incoming mail to one address, as mox's Rulesets: when every rule that is set
    matches, the message goes to `mailbox`, and the junk checks change as the options say. The
    first matching ruleset of a destination applies."""

    smtp_mail_from_regexp: Regexp = Field(
        default="",
        description=(
            "Matches if this regular expression matches (a substring of) the SMTP MAIL FROM "
            "address (not the message From header), e.g. `^user@example\\.org$`."
        ),
    )
    msg_from_regexp: Regexp = Field(
        default="",
        description=(
            "Matches if this regular expression matches (a substring of) the single address in "
            "the message From header."
        ),
    )
    verified_domain: str = Field(
        default="",
        description=(
            "Matches if this domain, or a subdomain of it, is verified by a passing SPF check "
            "(MAIL FROM or EHLO) or a passing DKIM signature."
        ),
    )
    headers_regexp: dict[Regexp, Regexp] = Field(
        default_factory=dict,
        description=(
            "Matches if every header field regular expression (key) matches a field name whose "
            "value matches the value regular expression (substrings). Names and values are "
            "lower-cased and values trimmed before matching, so write the expressions in lower "
            "case; for a mailing list e.g. `^list-id$` = `<name\\.lists\\.example\\.org>`."
        ),
    )
    is_forward: bool = Field(
        default=False,
        description=(
            "Junk checks only: the message is forwarded by the server matched with "
            "`smtp_mail_from_regexp` and `verified_domain` (both required). A DMARC policy does "
            "not refuse it, and the forwarding server's IP, EHLO and MAIL FROM domain and its "
            "DKIM domain are no reputation signals (now or when the message is trained later)."
        ),
    )
    list_allow_domain: str = Field(
        default="",
        description=(
            "Junk checks only: a mailing list domain. When SPF (MAIL FROM) or a DKIM signature "
            "verifies this domain, the message is accepted without DMARC refusal, reputation or "
            "content checks (lists do their own moderation, and refusing could unsubscribe you)."
        ),
    )
    accept_rejects_to_mailbox: str = Field(
        default="",
        description=(
            "Junk checks only: a message that would be refused (DMARC policy or junk) is "
            "accepted into this mailbox instead, marked seen. It is not cleaned up like the "
            "Rejects mailbox unless it is that mailbox."
        ),
    )
    mailbox: str = Field(
        min_length=1, description="Mailbox to deliver to when this ruleset matches."
    )
    comment: str = Field(default="", description="Free-form comment.")

    @field_validator("verified_domain", "list_allow_domain")
    @classmethod
    def _check_domain(cls, value: str) -> str:
        return normalize_domain(value) if value else value

    @model_validator(mode="after")
    def _check_rules(self) -> Ruleset:
        if not (
            self.smtp_mail_from_regexp
            or self.msg_from_regexp
            or self.verified_domain
            or self.headers_regexp
        ):
            raise ValueError(
                "a ruleset needs at least one of smtp_mail_from_regexp, msg_from_regexp, "
                "verified_domain, headers_regexp"
            )
        if self.is_forward and not (self.smtp_mail_from_regexp and self.verified_domain):
            raise ValueError("is_forward needs smtp_mail_from_regexp and verified_domain")
        if self.is_forward and self.list_allow_domain:
            raise ValueError("is_forward and list_allow_domain cannot be combined")
        return self


class Destination(_Model):
    """Delivery settings for one address of an account."""

    mailbox: str = Field(default="Inbox", description="Mailbox that receives mail for the address.")
    full_name: str = Field(default="", description="Display name used when sending from it.")
    rulesets: list[Ruleset] = Field(
        default_factory=list,
        description=(
            "Rules for incoming mail to this address (mailing lists, forwards), tried in order; "
            "the first that matches picks the mailbox and adjusts the junk checks."
        ),
    )

    def __hash__(self) -> int:
        # Rulesets hold a dict; equal destinations still hash equal (address targets are
        # collected in sets).
        return hash((self.mailbox, self.full_name, len(self.rulesets)))


class JunkFilter(_Model):
    """Bayesian junk filter settings (as mox's defaults)."""

    threshold: float = Field(
        default=0.95, gt=0, lt=1, description="Spam probability above which mail is junk."
    )
    onegrams: bool = Field(default=True, description="Use single words as tokens.")
    twograms: bool = Field(default=False, description="Use word pairs as tokens.")
    max_power: float = Field(default=0.01, ge=0, le=0.5, description="Cap on a word's weight.")
    top_words: int = Field(default=10, ge=1, description="Number of strongest words considered.")
    ignore_words: float = Field(
        default=0.1, ge=0, le=0.5, description="Ignore words this close to 0.5."
    )
    rare_words: int = Field(default=2, ge=0, description="Ignore words seen fewer times.")


class SubjectPass(_Model):
    """The subject-pass challenge, as mox's SubjectPass: a sender without reputation whose
    DMARC-verified message is refused for being on a DNS blocklist or mildly spammy is told to
    resend with a token in the subject; a valid token is accepted."""

    period: int = Field(
        default=12 * 3600,
        ge=60,
        le=30 * 86400,
        description="Seconds a token stays valid (mox's quickstart: 12 hours).",
    )


class Webhook(_Model):
    """Where the server POSTs JSON events for an account (mox's webhooks)."""

    url: str = Field(
        pattern=r"^https?://\S+$",
        description="URL the events are POSTed to as JSON (http or https).",
    )
    authorization: str = Field(
        default="",
        pattern=r"^[^\r\n]*$",
        description=(
            "Value of the Authorization header sent with each event, e.g. `Basic ...`; "
            "none when empty."
        ),
    )


class Account(_Model):
    """A user: a password, a message store, and one or more addresses."""

    domain: str = Field(description="Default domain of the account; must be in `domains`.")
    destinations: dict[str, Destination] = Field(
        min_length=1,
        description=(
            "Addresses delivering to this account, with per-address settings. "
            "`@example.com` is a catch-all for the domain."
        ),
    )
    full_name: str = Field(default="", description="Display name of the user.")
    password_file: Path | None = Field(
        default=None,
        description=(
            "File with the account's derived password secrets (from `mox account passwd --print`); "
            "when omitted the secrets live in the account database."
        ),
    )
    quota_bytes: int = Field(
        default=0, ge=0, description="Maximum total message size; 0 means no quota."
    )
    rejects_mailbox: str = Field(
        default="Rejects", description="Mailbox that keeps refused junk for 14 days."
    )
    junk_filter: JunkFilter | None = Field(
        default=None, description="Bayesian filter settings; no content filter when omitted."
    )
    max_outgoing_messages_per_day: int = Field(
        default=1000, ge=0, description="Limit on messages sent per day (0: no limit)."
    )
    max_first_time_recipients_per_day: int = Field(
        default=200, ge=0, description="Limit on new recipients per day (0: no limit)."
    )
    no_first_time_sender_delay: bool = Field(
        default=False, description="Do not delay first-time senders for this account."
    )
    subject_pass: SubjectPass | None = Field(
        default=None,
        description=(
            "Offer refused senders a subject token to get through (needs `junk_filter`); "
            "no challenge when omitted."
        ),
    )
    introbox: str = Field(
        default="",
        description=(
            "When set (e.g. `Introbox`), accepted mail for the Inbox from a sender without "
            "reputation of its exact From address goes to this mailbox instead (needs "
            "`junk_filter`); empty: off."
        ),
    )
    login_disabled: str = Field(
        default="", description="When not empty, logins are refused with this message."
    )
    outgoing_webhook: Webhook | None = Field(
        default=None,
        description=(
            "Webhook called when the queue delivers (`delivered`), gives up on (`failed`) or "
            "drops (`canceled`) a message this account sent; none when omitted."
        ),
    )
    incoming_webhook: Webhook | None = Field(
        default=None,
        description=(
            "Webhook called with each message delivered into this account over SMTP; none "
            "when omitted."
        ),
    )

    @model_validator(mode="after")
    def _junk_options_need_filter(self) -> Account:
        if self.junk_filter is None and (self.subject_pass is not None or self.introbox):
            raise ValueError("subject_pass and introbox need a junk_filter")
        return self


class Limits(_Model):
    """Protocol and abuse limits."""

    max_line_length: int = Field(
        default=8192, ge=1000, description="Longest protocol line accepted (SMTP and IMAP)."
    )
    imap_max_literal: int = Field(
        default=100 * 1024 * 1024, ge=1024, description="Largest IMAP literal (APPEND size)."
    )
    max_recipients: int = Field(
        default=1000, ge=1, description="Recipients per SMTP transaction (LIMITS RCPTMAX)."
    )
    auth_failures_per_minute: int = Field(
        default=10, ge=1, description="Failed logins per IP per minute before refusing."
    )


class DnsSettings(_Model):
    """The DNS resolver used for SPF, DKIM, DMARC, iprev and sender-domain checks."""

    nameservers: list[str] = Field(
        default_factory=list,
        description=(
            "Recursive resolvers to ask, as IP, IP:PORT or [IPv6]:PORT; the nameservers of "
            "/etc/resolv.conf when empty. A local validating resolver (unbound) is recommended."
        ),
    )
    trust_ad: bool | None = Field(
        default=None,
        description=(
            "Whether the resolvers' DNSSEC AD bit is trusted, so results say 'with dnssec'; "
            "by default only when every nameserver is on loopback (RFC 6840 §5.7)."
        ),
    )
    timeout: float = Field(
        default=5.0, gt=0, le=60, description="Seconds to wait for one DNS answer."
    )

    @field_validator("nameservers")
    @classmethod
    def _check_nameservers(cls, value: list[str]) -> list[str]:
        from mox.dns.resolver import parse_nameserver  # dnspython loads only when used

        for item in value:
            parse_nameserver(item)  # raises ValueError with the reason
        return value


class HoldRule(_Model):
    """Hold new queued messages that match (as mox's HoldRule); empty fields match anything,
    a rule with all fields empty holds every message."""

    account: str = Field(default="", description="Sending account; empty matches any.")
    sender_domain: str = Field(default="", description="Domain of MAIL FROM; empty matches any.")
    recipient_domain: str = Field(
        default="", description="Domain of the recipient; empty matches any."
    )


class Queue(_Model):
    """Outgoing queue settings (as mox: 7.5 minutes doubling, 8 attempts)."""

    max_attempts: int = Field(default=8, ge=1, le=30, description="Delivery attempts before a DSN.")
    first_retry_seconds: float = Field(
        default=450.0, gt=0, description="Wait after the first failure; it doubles each time."
    )
    delay_dsn_after: int = Field(
        default=5, ge=1, description="Send a delayed-delivery DSN after this many failures."
    )
    direct_port: int = Field(
        default=25,
        ge=1,
        le=65535,
        description="TCP port for direct delivery to MX hosts; only tests change it.",
    )
    mtasts_port: int = Field(
        default=443,
        ge=1,
        le=65535,
        description=(
            "HTTPS port to fetch MTA-STS policies from (RFC 8461 §3.3); only tests change it."
        ),
    )
    hold_rules: list[HoldRule] = Field(
        default_factory=list,
        description="New messages matching any rule stay held until `mox queue release`.",
    )
    outgoing_tls_reports: bool = Field(
        default=True,
        description="Send daily TLS reports (RFC 8460) to recipient domains that ask for them.",
    )
    tls_reports_for_all_success: bool = Field(
        default=False,
        description="Also send TLS reports for days without failures (as mox, off by default).",
    )


class Transport(_Model):
    """A smarthost (submission with TLS and AUTH, or plain SMTP), or refusing to send."""

    kind: Literal["submissions", "submission", "smtp", "fail"] = Field(
        description="submissions: implicit TLS (465); submission: STARTTLS (587); smtp: port 25 "
        "relay; fail: never deliver, bounce with `fail_code`/`fail_message`."
    )
    host: str = Field(default="", description="Smarthost name (not for fail).")
    port: Port | None = Field(default=None, description="Port; the kind's standard one if omitted.")
    username: str = Field(default="", description="AUTH username, if the smarthost needs one.")
    password_file: Path | None = Field(
        default=None, description="File with the AUTH password (plain text, one line)."
    )
    fail_code: int = Field(default=554, ge=400, le=599, description="SMTP code for kind fail.")
    fail_message: str = Field(
        default="delivery refused by configuration", description="Message for kind fail."
    )


class Route(_Model):
    """Send matching mail through a transport."""

    to_domains: list[str] = Field(
        default_factory=list, description="Recipient domains; empty matches all."
    )
    from_domains: list[str] = Field(
        default_factory=list, description="Sender domains; empty matches all."
    )
    transport: str = Field(description="Name in `transports`.")


class Config(_Model):
    """A whole mox installation."""

    hostname: str = Field(description="Fully qualified host name of this mail server.")
    data_dir: Path = Field(
        default=Path("data"), description="Directory with accounts, queue and state."
    )
    log_level: Literal["error", "warn", "info", "debug", "trace"] = Field(
        default="info", description="Log level for `mox serve`."
    )
    pedantic: bool = Field(
        default=False, description="Refuse protocol violations that are normally tolerated."
    )
    public_ips: list[IPAddress] = Field(
        default_factory=list,
        description="Public IPs of the host, for DNS records (A/AAAA, SPF) and checks.",
    )
    admin_password_file: Path | None = Field(
        default=None,
        description=(
            "File with the derived credentials of the admin password (written by `mox admin "
            "passwd`); without it the admin web pages at /admin/ are disabled."
        ),
    )
    postmaster: str = Field(
        description="Account that receives mail for postmaster@ of every domain."
    )
    listeners: dict[str, Listener] = Field(
        min_length=1, description="Listeners by name, e.g. `public` and `internal`."
    )
    domains: dict[str, Domain] = Field(min_length=1, description="Mail domains by name.")
    accounts: dict[str, Account] = Field(min_length=1, description="Accounts by name.")
    acme: dict[str, Acme] = Field(
        default_factory=dict,
        description="ACME certificate authorities by name, referenced from listeners' `tls.acme`.",
    )
    queue: Queue = Field(
        default_factory=lambda: Queue(), description="The outgoing queue: retries and delivery."
    )
    transports: dict[str, Transport] = Field(
        default_factory=dict,
        description="Ways to deliver outgoing mail other than directly to the MX, by name.",
    )
    routes: list[Route] = Field(
        default_factory=list,
        description="Which transport delivers which mail; first match wins, else direct delivery.",
    )
    tls_ca_files: list[Path] = Field(
        default_factory=list,
        description=(
            "Extra CA certificates (PEM) trusted for outgoing TLS: MTA-STS policies, verified "
            "delivery, smarthosts. The system's CAs are always trusted."
        ),
    )
    limits: Limits = Field(
        default_factory=Limits, description="Line, literal, recipient and login limits."
    )
    dns: DnsSettings = Field(
        default_factory=DnsSettings,
        description="DNS resolver for mail authentication; `mox localserve` uses no DNS at all.",
    )

    @field_validator("hostname")
    @classmethod
    def _check_hostname(cls, value: str) -> str:
        return normalize_domain(value)

    @field_validator("domains")
    @classmethod
    def _check_domains(cls, value: dict[str, Domain]) -> dict[str, Domain]:
        out: dict[str, Domain] = {}
        for name, dom in value.items():
            norm = normalize_domain(name)
            if norm in out:
                raise ValueError(f"domain {name!r} is listed twice")
            out[norm] = dom
        return out

    @field_validator("accounts", "listeners")
    @classmethod
    def _check_names(cls, value: dict[str, object]) -> dict[str, object]:
        for name in value:
            if not _NAME_RE.match(name):
                raise ValueError(
                    f"name {name!r} must start with a letter or digit and hold only "
                    "letters, digits, '.', '_' and '-' (at most 64)"
                )
        return value
