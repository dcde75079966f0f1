"""Coverage-guided fuzzing with atheris (libFuzzer) of the parsers that read untrusted input.

Usage: python scripts/fuzz_atheris.py TARGET [libFuzzer flags, e.g. -max_total_time=60]
       python scripts/fuzz_atheris.py --list

Each target fails (libFuzzer writes a crash-* file and exits non-zero) only on an exception
that is not the parser's declared error type. `nox -s fuzz` runs every target for a bounded time.
The hypothesis tests in tests/fuzz run the same properties, bounded, in the normal suite.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from mox.auth.password import derive_credentials
    from mox.auth.sasl import MECHANISMS, SaslChallenge, SaslError
    from mox.auth.scram import SaslContext, new_mechanism
    from mox.config.load import ConfigError, parse_config, read_config_data
    from mox.dns import records
    from mox.imap.errors import ImapError
    from mox.imap.parser import parse_command
    from mox.imap.receiver import NEED_DATA, RawCommand, Receiver
    from mox.imapserver.message import body_structure, envelope, parse_part
    from mox.smtp.address import AddressError, parse_path
    from mox.smtp.data import DataReader
    from mox.smtp.params import ParamError, parse_params, xtext_decode


def smtp_path(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    try:
        parse_path(text, allow_null=True)
    except AddressError:
        pass


def smtp_params(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    try:
        parse_params(text)
    except ParamError:
        pass
    try:
        xtext_decode(text)
    except ParamError:
        pass


def smtp_data(data: bytes) -> None:
    reader = DataReader(4096)
    for line in data.splitlines(keepends=True):
        if reader.done:
            break
        reader.feed(line, line.endswith(b"\n"))
    if len(reader.result()) > 4096:
        raise AssertionError("DataReader kept more than its limit")


PARSERS = [
    records.Spf,
    records.DkimKey,
    records.Dmarc,
    records.MtaStsRecord,
    records.MtaStsPolicy,
    records.TlsRpt,
    records.Tlsa,
    records.Srv,
    records.Mx,
    records.Caa,
]


def dns_records(data: bytes) -> None:
    if not data:
        return
    cls = PARSERS[data[0] % len(PARSERS)]
    text = data[1:].decode("utf-8", "replace")
    try:
        record = cls.parse(text)  # type: ignore[attr-defined]
    except records.RecordError:
        return
    if cls.parse(record.to_text()) != record:  # type: ignore[attr-defined]
        raise AssertionError(f"{cls.__name__} does not round-trip: {text!r}")


_TMP = Path(tempfile.mkdtemp(prefix="mox-fuzz-"))


def config(data: bytes) -> None:
    path = _TMP / "mox.toml"
    path.write_bytes(data)
    try:
        parse_config(read_config_data(path), path, check_files=False)
    except ConfigError:
        pass


_CREDS = derive_credentials("fuzz password")
_CTX = SaslContext(lambda u: _CREDS if u == "a@b" else None, {"tls-exporter": b"x" * 32}, "h", True)
_MECHS = [*MECHANISMS, "SCRAM-SHA-256", "SCRAM-SHA-1", "SCRAM-SHA-256-PLUS", "CRAM-MD5"]


def sasl(data: bytes) -> None:
    if not data:
        return
    name = _MECHS[data[0] % len(_MECHS)]
    factory = MECHANISMS.get(name)
    mech = factory() if factory is not None else new_mechanism(name, _CTX)
    if mech is None:
        raise AssertionError(name)
    pieces = data[1:].split(b"\x01")
    try:
        result = mech.start(pieces[0] if pieces[0] else None)
        for piece in pieces[1:5]:
            if not isinstance(result, SaslChallenge):
                break
            result = mech.step(piece)
    except SaslError:
        pass


def imap(data: bytes) -> None:
    recv = Receiver(max_line=500, max_literal=2000, max_small_literal=200, max_discard=1000)
    for i in range(0, len(data), 7):
        recv.feed(data[i : i + 7])
        for _ in range(1000):
            ev = recv.next_event()
            if ev is NEED_DATA:
                break
            if isinstance(ev, RawCommand):
                try:
                    parse_command(ev)
                except ImapError:
                    pass
        if recv.buffered > 500 + 2000 + 7:
            raise AssertionError("receiver buffers beyond its limits")


def mime(data: bytes) -> None:
    part = parse_part(data)
    body_structure(part)
    envelope(part)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "smtp_path": smtp_path,
    "smtp_params": smtp_params,
    "smtp_data": smtp_data,
    "dns_records": dns_records,
    "config": config,
    "sasl": sasl,
    "imap": imap,
    "mime": mime,
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        print("targets:", " ".join(TARGETS))
        sys.exit(0 if sys.argv[1:2] == ["--list"] else 2)
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
