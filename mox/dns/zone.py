"""`mox dns zone`: the records the config implies, as an annotated BIND zone file (RFC 1035 §5).

The output is a fragment to paste into a zone, or with `full_zone` a complete zone (SOA and NS
added, records of other zones listed as comments) that Knot, NSD and BIND load unchanged; a test
runs `kzonecheck` on both. Long TXT values are split into strings of 100 characters in parentheses
(RFC 1035 §3.3.14 allows 255 per string; mox uses 100) and also shown as one string for the web
interfaces of DNS operators that want it that way.
"""

from __future__ import annotations

from collections.abc import Sequence

from mox.dns.expected import RecordSpec

__all__ = ["quote_txt", "record_lines", "render_zone", "txt_strings"]

TTL = 300
TXT_CHUNK = 100


def quote_txt(text: str) -> str:
    """One <character-string> in zone-file syntax (RFC 1035 §5.1): quotes and backslashes
    escaped, bytes outside printable ASCII as \\DDD."""
    out = ['"']
    for byte in text.encode("utf-8"):
        ch = chr(byte)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= byte < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\{byte:03d}")
    out.append('"')
    return "".join(out)


def txt_strings(text: str, size: int = TXT_CHUNK) -> list[str]:
    """The TXT value cut into strings of at most `size` bytes (RFC 7208 §3.3, RFC 6376 §3.6.2.2
    join them again without spaces)."""
    parts: list[str] = []
    current, used = "", 0
    for ch in text:  # cut between characters, never inside a UTF-8 sequence
        n = len(ch.encode("utf-8"))
        if used + n > size:
            parts.append(current)
            current, used = "", 0
        current += ch
        used += n
    parts.append(current)
    return parts


def _rdata_lines(spec: RecordSpec) -> list[str]:
    if spec.rtype != "TXT":
        return [spec.value]
    parts = txt_strings(spec.value)
    if len(parts) == 1:
        return [quote_txt(parts[0])]
    return ["(", *(f"\t\t{quote_txt(p)}" for p in parts), "\t)"]


def record_lines(spec: RecordSpec) -> list[str]:
    """The zone-file lines of one record (several for a long TXT)."""
    owner = f"{spec.name}."
    rdata = _rdata_lines(spec)
    lines = [f"{owner:<31} {spec.rtype} {rdata[0]}", *rdata[1:]]
    if spec.commented_out:
        lines = [";; " + line for line in lines]
    return lines


def _in_zone(name: str, zone: str) -> bool:
    return name == zone or name.endswith("." + zone)


def render_zone(
    specs: Sequence[RecordSpec],
    *,
    full_zone: str | None = None,
    hostname: str = "",
    serial: int = 1,
) -> str:
    """Zone-file text; with `full_zone`, a whole zone for that domain with SOA and NS."""
    out = [
        f"; Time To Live of {TTL // 60} minutes, recognized when imported as a zone file.",
        "; Once your setup works, you may want to increase the TTL.",
        f"$TTL {TTL}",
    ]
    outside: list[RecordSpec] = []
    if full_zone is not None:
        zone = full_zone.rstrip(".").lower()
        specs_in: list[RecordSpec] = []
        for spec in specs:
            (specs_in if _in_zone(spec.name, zone) else outside).append(spec)
        specs = specs_in
        out += [
            "",
            f"; The zone {zone}, served by {hostname} (RFC 1035 §5.2: SOA and NS first).",
            f"$ORIGIN {zone}.",
            # RFC 1035 §3.3.13: MNAME RNAME SERIAL REFRESH RETRY EXPIRE MINIMUM
            f"{zone + '.':<31} SOA {hostname}. hostmaster.{zone}. {serial} 7200 3600 1209600 {TTL}",
            f"{zone + '.':<31} NS {hostname}.",
        ]
    block: list[str] = []
    for spec in specs:
        if spec.comment or not block:
            out += block
            block = [""] + [f"; {c}" if c else ";" for c in spec.comment]
        block += record_lines(spec)
        if spec.rtype == "TXT" and len(spec.value.encode()) > TXT_CHUNK:
            block.append(f"; As one string for web interfaces: {spec.value}")
    out += block
    if outside:
        out += ["", "; These records belong in other zones; publish them there:"]
        for spec in outside:
            out += [";; " + line.removeprefix(";; ") for line in record_lines(spec)]
    return "\n".join(out) + "\n"
