"""Authenticated Received Chain, RFC 8617: verify the chain on inbound mail, seal when forwarding.

Beyond mox (which has ARC on its roadmap). A typed adapter over dkimpy's ARC code: the keys of
every ARC-Seal and ARC-Message-Signature are fetched first through our `Resolver`, then the chain
is validated (RFC 8617 §5.2) in a worker thread with those records. Sealing (§5.1) adds the next
ARC set from our own Authentication-Results field, whose `arc=` result becomes the seal's `cv=`;
ARC signatures are RSA only (RFC 8617 §4.1.3 uses the DKIM algorithms, and dkimpy seals with
rsa-sha256), so the first RSA signing selector of the domain seals.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import dkim as dkimpy
from cryptography.hazmat.primitives.asymmetric import rsa
from dkim.util import InvalidTagValueList, parse_tag_value

from mox.dkim.sign import DKIMPY_LOG, Signer, dkimpy_key
from mox.dkim.verify import fetch_keys, signature_headers
from mox.dns.resolver import Resolver

__all__ = ["ArcResult", "ArcStatus", "seal", "verify"]

log = logging.getLogger(__name__)

ArcStatus = Literal["none", "pass", "fail"]
MAX_INSTANCES = 50  # RFC 8617 §4.2.1: i= is 1 to 50


@dataclass(frozen=True, slots=True)
class ArcResult:
    """The chain validation status (RFC 8617 §4.4) of a message."""

    status: ArcStatus
    instances: int = 0
    domains: tuple[str, ...] = ()  # the sealing domains, oldest (i=1) first
    oldest_pass: int = 0  # RFC 8617 §5.2: the oldest instance whose AMS still validates
    authentic: bool = False
    reason: str = ""


def _names(message: bytes) -> list[tuple[str, str]]:
    names = []
    for header in (b"arc-seal", b"arc-message-signature"):
        for value in signature_headers(message, header)[: MAX_INSTANCES * 2]:
            try:
                tags = parse_tag_value(value)
            except InvalidTagValueList:
                continue
            if b"s" in tags and b"d" in tags:
                selector, domain = tags[b"s"], tags[b"d"]
                names.append(
                    (selector.decode("ascii", "replace"), domain.decode("ascii", "replace").lower())
                )
    return names


async def verify(resolver: Resolver, message: bytes) -> ArcResult:
    """Validate the ARC chain of a message; "none" when it has no ARC sets."""
    names = _names(message)
    if not names and not signature_headers(message, b"arc-seal"):
        return ArcResult("none")
    keys = await fetch_keys(resolver, names)
    texts = {f"{s}._domainkey.{d}": k for (s, d), k in keys.items()}
    temporary = [k.reason for k in keys.values() if k.error == "temperror"]

    def dnsfunc(name: Any, timeout: int = 5) -> bytes | None:
        text = name.decode() if isinstance(name, bytes) else str(name)
        key = texts.get(text.rstrip(".").lower())
        return key.text.encode("utf-8") if key is not None and key.text else None

    def run() -> tuple[Any, list[dict[str, Any]], str]:
        try:
            arc = dkimpy.ARC(message, logger=DKIMPY_LOG, minkey=1024)
            cv, results, reason = arc.verify(dnsfunc=dnsfunc)
        except dkimpy.DKIMException as exc:
            return dkimpy.CV_Fail, [], str(exc)
        except Exception:  # odd input that dkimpy does not expect: the chain fails, logged
            log.exception("arc verification failed unexpectedly")
            return dkimpy.CV_Fail, [], "chain could not be evaluated"
        return cv, list(results), str(reason)

    cv, results, reason = await asyncio.to_thread(run)
    instances = max((int(r.get("instance", 0)) for r in results), default=0)
    ordered = sorted(results, key=lambda r: int(r.get("instance", 0)))
    domains = tuple(bytes(r.get("as-domain", b"")).decode("ascii", "replace") for r in ordered)
    authentic = bool(keys) and all(k.authentic for k in keys.values())
    if cv == dkimpy.CV_Pass:
        oldest = min((int(r["instance"]) for r in results if r.get("ams-valid")), default=instances)
        return ArcResult("pass", instances, domains, oldest, authentic)
    if cv == dkimpy.CV_None and not results:
        return ArcResult("none", reason=reason)
    if temporary:
        reason = f"{reason}; DNS: {temporary[0]}"
    return ArcResult("fail", instances, domains, authentic=authentic, reason=reason)


def seal(
    message: bytes,
    signers: Sequence[Signer],
    authserv_id: str,
    *,
    headers: Sequence[str] | None = None,
) -> bytes:
    """The next ARC set (ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results), to put in
    front of the message; empty when no RSA selector can seal or the message carries no
    Authentication-Results of `authserv_id` to seal (RFC 8617 §5.1.1)."""
    signer = next((s for s in signers if isinstance(s.key, rsa.RSAPrivateKey)), None)
    if signer is None:
        return b""
    arc = dkimpy.ARC(message, logger=DKIMPY_LOG, signature_algorithm=b"rsa-sha256")
    include = [h.lower().encode("ascii") for h in (headers or signer.headers)]
    arc.should_not_sign -= set(include)
    lines: list[bytes] = arc.sign(
        signer.selector.encode("ascii"),
        signer.domain.encode("ascii"),
        dkimpy_key(signer.key),
        authserv_id.encode("ascii"),
        include_headers=include,
    )
    return b"".join(line if line.endswith(b"\r\n") else line + b"\r\n" for line in lines)
