"""The OpenSPF RFC 7208 test suite (release 2014.04) through our SPF entry point, `mox.spf.verify`.

`data/rfc7208-tests.yml` is the suite as shipped in the pyspf source distribution (its licence is
beside it). Each scenario's zone data is served by a resolver that follows the suite's rules
(those of pyspf's test driver): `TIMEOUT` makes queries for a name fail unless records of the
asked type come before it, names starting with `error.` fail, unknown names do not exist, and
SPF-type records are also published as TXT unless the name has TXT data of its own.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
import yaml

from mox.dns.resolver import Answer, NotFound, ServFail
from mox.spf import verify

SUITE = Path(__file__).parent / "data" / "rfc7208-tests.yml"

Entry = tuple[str, Any] | str


def _entries(name: str, data: list[Any]) -> list[Entry]:
    out: list[Entry] = []
    generated: list[Entry] = []
    has_txt = False
    for item in data:
        if item == "TIMEOUT":
            out.append("TIMEOUT")
            continue
        for rtype, value in item.items():
            if rtype in ("TXT", "SPF") and isinstance(value, str):
                value = [value]
            if rtype == "TXT":
                has_txt = True
            elif rtype == "SPF":
                generated.append(("TXT", value))
            if value != ["NONE"]:
                out.append((rtype, value))
    return out if has_txt else out + generated


class SuiteResolver:
    """Answers from one scenario's zonedata, with the suite's timeout rules."""

    trusted = False

    def __init__(self, zonedata: dict[str, list[Any]]) -> None:
        self.zone = {name.lower(): _entries(name, data) for name, data in zonedata.items()}

    async def query(self, name: str, rtype: str) -> Answer:
        name = name.rstrip(".").lower()
        for _ in range(10):
            if any(len(label) > 63 for label in name.split(".")):
                raise ServFail(name, rtype, "label too long")
            entries = self.zone.get(name)
            if entries is None:
                if name.startswith("error."):
                    raise ServFail(name, rtype, "timeout")
                raise NotFound(name, rtype, nxdomain=True)
            records: list[str] = []
            cname = ""
            for entry in entries:
                if isinstance(entry, str):  # "TIMEOUT"
                    if not records:
                        raise ServFail(name, rtype, "timeout")
                    break
                kind, value = entry
                if value == "TIMEOUT":
                    if kind == rtype:
                        raise ServFail(name, rtype, "timeout")
                    continue
                if kind == "CNAME":
                    cname = str(value)
                if kind != rtype:
                    continue
                if kind == "TXT":
                    records.append("".join(value))  # RFC 7208 §3.3: strings joined
                elif kind == "MX":
                    records.append(f"{value[0]} {value[1]}.")
                elif kind in ("A", "AAAA"):
                    records.append(str(ipaddress.ip_address(value)))
                else:
                    records.append(str(value))
            if records:
                return Answer(name, rtype, tuple(records), False)
            if not cname:
                raise NotFound(name, rtype, nxdomain=False)
            name = cname.rstrip(".").lower()
        raise NotFound(name, rtype, nxdomain=False)  # a CNAME loop: no data, as the driver


def _cases() -> list[Any]:
    cases = []
    with SUITE.open("rb") as f:
        for scenario in yaml.safe_load_all(f):
            zone = scenario["zonedata"]
            for test_id, test in scenario["tests"].items():
                cases.append(pytest.param(zone, test, id=test_id))
    return cases


CASES = _cases()


def test_suite_is_complete() -> None:
    assert len(CASES) > 180  # the 2014.04 release: every scenario is run, none skipped


@pytest.mark.parametrize(("zone", "test"), CASES)
async def test_rfc7208_suite(zone: dict[str, list[Any]], test: dict[str, Any]) -> None:
    res = await verify(SuiteResolver(zone), test["host"], test["mailfrom"], test["helo"])
    expected = test["result"]
    allowed = expected if isinstance(expected, list) else [expected]
    assert res.status in allowed, (test.get("spec"), test.get("description"), res)
    explanation = test.get("explanation")
    if explanation is not None and explanation != "DEFAULT" and res.status == "fail":
        assert res.explanation == explanation
