"""Reading and checking a config file: TOML or JSON, pydantic validation, cross-field rules.

Every problem is reported as one line `FILE: key.path: message`, all problems at once, so an admin
fixes a file in one go. `mox config check`, `mox serve`, the Nix build and the Ansible
`validate:` step all go through `load_config`.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mox.config.model import Alias, Config, Destination, Listener, normalize_domain

__all__ = ["ConfigError", "LoadedConfig", "load_config", "parse_config"]

# Standard ports of each service: RFC 5321 §4.5.4.2 (25), RFC 6409 §3.1 (587),
# RFC 8314 §3.3 (465, 993), RFC 9051 (143).
DEFAULT_PORTS = {
    "smtp": 25,
    "submission": 587,
    "submissions": 465,
    "imap": 143,
    "imaps": 993,
    "http": 80,
    "https": 443,
}
TLS_SERVICES = ("submissions", "imaps", "https")


class ConfigError(Exception):
    """A config file that cannot be used; `problems` are `FILE: key.path: message` lines."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


def _loc_text(loc: Iterable[int | str]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            text = str(item)
            bare = text.replace("_", "").replace("-", "").isalnum()
            parts.append(("." if parts else "") + (text if bare else json.dumps(text)))
    return "".join(parts) or "(top)"


def _pydantic_problems(name: str, exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors(include_url=False):
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not part of the config format; see `mox config describe`)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif err["type"] != "value_error":
            shown = repr(err["input"])
            if len(shown) > 60:
                shown = shown[:57] + "..."
            msg = f"{msg} (got {shown})"
        msg = msg.removeprefix("Value error, ")
        problems.append(f"{name}: {_loc_text(err['loc'])}: {msg}")
    return problems


@dataclass(frozen=True, slots=True)
class AddressTarget:
    """Where mail for an address goes."""

    account: str
    destination: Destination
    address: str


@dataclass
class LoadedConfig:
    """A validated config and the file it came from."""

    config: Config
    path: Path
    # lower-cased full address -> target; "@domain" for catch-alls.
    addresses: dict[str, AddressTarget] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def resolve(self, path: Path) -> Path:
        """A path from the config, made absolute relative to the config file's directory."""
        return path if path.is_absolute() else (self.base_dir / path)

    @property
    def data_dir(self) -> Path:
        return self.resolve(self.config.data_dir)

    def lookup(self, address: str) -> AddressTarget | None:
        """The account for a recipient address: exact, then without `+tag`, then catch-all."""
        if "@" not in address:
            return None
        localpart, _, domain_text = address.rpartition("@")
        try:
            domain = normalize_domain(domain_text)
        except ValueError:
            return None
        dom = self.config.domains.get(domain)
        if dom is None:
            return None
        key_local = localpart if dom.localpart_case_sensitive else localpart.lower()
        found = self.addresses.get(f"{key_local}@{domain}")
        if found is None:
            for sep in dom.localpart_catchall_separators:  # sub-addressing, RFC 5233 style
                if sep in key_local:
                    base = key_local.split(sep, 1)[0]
                    found = self.addresses.get(f"{base}@{domain}")
                    if found is not None:
                        break
        if found is None and key_local == "postmaster":  # RFC 5321 §4.5.1
            return AddressTarget(self.config.postmaster, Destination(), f"postmaster@{domain}")
        return found or self.addresses.get(f"@{domain}")

    def lookup_alias(self, address: str) -> tuple[str, Alias] | None:
        """An alias/list address (exact, or with a `+tag`): its normalised address and settings."""
        localpart, at, domain_text = address.rpartition("@")
        if not at:
            return None
        try:
            domain = normalize_domain(domain_text)
        except ValueError:
            return None
        dom = self.config.domains.get(domain)
        if dom is None:
            return None
        key = localpart if dom.localpart_case_sensitive else localpart.lower()
        aliases = {
            (k if dom.localpart_case_sensitive else k.lower()): v for k, v in dom.aliases.items()
        }
        found = aliases.get(key)
        if found is None:
            for sep in dom.localpart_catchall_separators:
                if sep in key:
                    key = key.split(sep, 1)[0]
                    found = aliases.get(key)
                    break
        return None if found is None else (f"{key}@{domain}", found)

    def account_addresses(self, account: str) -> list[str]:
        return [a for a, t in self.addresses.items() if t.account == account and a[0] != "@"]


def _address_key(address: str, config: Config) -> tuple[str, str]:
    """Normalise `local@domain` (or `@domain`); raises ValueError with a readable message."""
    if address.count("@") < 1:
        raise ValueError("expected an address like alice@example.com, or @example.com for all")
    localpart, _, domain_text = address.rpartition("@")
    domain = normalize_domain(domain_text)
    dom = config.domains.get(domain)
    if dom is None:
        raise ValueError(f"domain {domain!r} is not in `domains`")
    if localpart and not dom.localpart_case_sensitive:
        localpart = localpart.lower()
    if any(c in localpart for c in " \t\r\n<>"):
        raise ValueError("local part has spaces or angle brackets")
    return f"{localpart}@{domain}", domain


def _check_listener_ports(
    name: str, lname: str, listener: Listener, seen: dict[tuple[str, int], str]
) -> list[str]:
    problems = []
    for service, default in DEFAULT_PORTS.items():
        svc = getattr(listener, service)
        if not svc.enabled:
            continue
        port = svc.port or default
        if service in TLS_SERVICES and listener.tls is None:
            problems.append(
                f"{name}: listeners.{lname}.{service}: needs TLS, but the listener has no `tls`"
            )
        for ip in listener.ips:
            where = f"listeners.{lname}.{service}"
            other = seen.get((ip, port))
            if other:
                problems.append(f"{name}: {where}: port {port} on {ip} is also used by {other}")
            seen[(ip, port)] = where
    return problems


def _cross_checks(
    cfg: Config, name: str, base: Path, *, check_files: bool = True
) -> tuple[list[str], dict[str, AddressTarget]]:
    problems: list[str] = []
    addresses: dict[str, AddressTarget] = {}

    def need_file(where: str, path: Path | None) -> None:
        if not check_files:  # build-time checks (Nix): keys are created at service start
            return
        if path is not None and not (path if path.is_absolute() else base / path).is_file():
            problems.append(f"{name}: {where}: file {str(path)!r} does not exist")

    if cfg.postmaster not in cfg.accounts:
        problems.append(f"{name}: postmaster: account {cfg.postmaster!r} is not in `accounts`")
    need_file("admin_password_file", cfg.admin_password_file)
    for i, ca_file in enumerate(cfg.tls_ca_files):
        need_file(f"tls_ca_files[{i}]", ca_file)
    for tname, transport in cfg.transports.items():
        if transport.kind != "fail" and not transport.host:
            problems.append(f"{name}: transports.{tname}.host: required for kind {transport.kind}")
        need_file(f"transports.{tname}.password_file", transport.password_file)
    for i, route in enumerate(cfg.routes):
        if route.transport not in cfg.transports:
            problems.append(
                f"{name}: routes[{i}].transport: no transport {route.transport!r} in `transports`"
            )
    for aname, provider in cfg.acme.items():
        need_file(f"acme.{aname}.ca_file", provider.ca_file)
        if not provider.directory_url.startswith("https://"):
            problems.append(f"{name}: acme.{aname}.directory_url: must be an https:// URL")
    seen_ports: dict[tuple[str, int], str] = {}
    for lname, listener in cfg.listeners.items():
        problems += _check_listener_ports(name, lname, listener, seen_ports)
        if listener.tls is not None:
            tls = listener.tls
            where = f"listeners.{lname}.tls"
            if tls.acme is None and (tls.cert_file is None or tls.key_file is None):
                problems.append(f"{name}: {where}: needs cert_file and key_file, or acme")
            if tls.acme is not None and (tls.cert_file or tls.key_file):
                problems.append(f"{name}: {where}: use either acme or cert_file/key_file, not both")
            if tls.acme is not None and tls.acme not in cfg.acme:
                problems.append(f"{name}: {where}.acme: no ACME provider {tls.acme!r} in `acme`")
            if tls.acme is not None and not (listener.https.enabled or listener.http.enabled):
                problems.append(
                    f"{name}: {where}.acme: ACME needs the listener's https (tls-alpn-01) "
                    "or http (http-01) service enabled"
                )
            for i, key_file in enumerate(tls.host_private_key_files):
                need_file(f"{where}.host_private_key_files[{i}]", key_file)
            need_file(f"{where}.cert_file", tls.cert_file)
            need_file(f"{where}.key_file", tls.key_file)
    for aname, acc in cfg.accounts.items():
        where = f"accounts.{aname}"
        try:
            if normalize_domain(acc.domain) not in cfg.domains:
                problems.append(
                    f"{name}: {where}.domain: domain {acc.domain!r} is not in `domains`"
                )
        except ValueError as exc:
            problems.append(f"{name}: {where}.domain: {exc}")
        need_file(f"{where}.password_file", acc.password_file)
        for addr, dest in acc.destinations.items():
            try:
                key, _ = _address_key(addr, cfg)
            except ValueError as exc:
                problems.append(f"{name}: {where}.destinations.{json.dumps(addr)}: {exc}")
                continue
            other = addresses.get(key)
            if other is not None:
                problems.append(
                    f"{name}: {where}.destinations.{json.dumps(addr)}: "
                    f"address already belongs to account {other.account!r}"
                )
                continue
            addresses[key] = AddressTarget(aname, dest, key)
    for dname, dom in cfg.domains.items():
        where = f"domains.{json.dumps(dname)}"
        for sign in dom.dkim.sign:
            if sign not in dom.dkim.selectors:
                problems.append(f"{name}: {where}.dkim.sign: selector {sign!r} is not in selectors")
        for sel_name, sel in dom.dkim.selectors.items():
            need_file(f"{where}.dkim.selectors.{sel_name}.private_key_file", sel.private_key_file)
        for report in ("dmarc", "tlsrpt"):
            ra = getattr(dom, report)
            if ra is not None and ra.account not in cfg.accounts:
                problems.append(
                    f"{name}: {where}.{report}.account: account {ra.account!r} is not in `accounts`"
                )
        for local, alias in dom.aliases.items():
            akey = f"{local if dom.localpart_case_sensitive else local.lower()}@{dname}"
            if akey in addresses:
                problems.append(
                    f"{name}: {where}.aliases.{local}: address is also an account's address"
                )
            for i, member in enumerate(alias.addresses):
                try:
                    mkey, _ = _address_key(member, cfg)
                except ValueError as exc:
                    problems.append(f"{name}: {where}.aliases.{local}.addresses[{i}]: {exc}")
                    continue
                if mkey not in addresses:
                    problems.append(
                        f"{name}: {where}.aliases.{local}.addresses[{i}]: "
                        f"{member!r} is not an address of a local account"
                    )
    return problems, addresses


def parse_config(data: dict[str, Any], path: Path, *, check_files: bool = True) -> LoadedConfig:
    """Validate already-decoded config data; raises ConfigError. `check_files=False` skips the
    checks that files named by the config exist."""
    name = str(path)
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_pydantic_problems(name, exc)) from None
    problems, addresses = _cross_checks(cfg, name, path.parent, check_files=check_files)
    if problems:
        raise ConfigError(problems)
    return LoadedConfig(cfg, path.absolute(), addresses)


def read_config_data(path: Path) -> dict[str, Any]:
    """Decode a TOML or JSON config file; raises ConfigError. JSON by `.json` suffix, or by
    a leading `{` (never valid TOML), so suffix-less temporary copies (Ansible's `validate:`)
    are read right."""
    name = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{name}: cannot read: {exc.strerror or exc}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{name}: not UTF-8 text at byte {exc.start}"]) from None
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                [f"{name}: line {exc.lineno} column {exc.colno}: {exc.msg}"]
            ) from None
        if not isinstance(data, dict):
            raise ConfigError([f"{name}: (top): expected a JSON object"])
        return data
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{name}: TOML syntax: {exc}"]) from None


def load_config(path: Path, *, check_files: bool = True) -> LoadedConfig:
    """Read, validate and cross-check a config file; raises ConfigError listing every problem."""
    return parse_config(read_config_data(path), path, check_files=check_files)
