"""End to end with real DNS: quickstart → `mox dns zone` → Knot (signing) → Unbound → dnscheck.

Our own SMTP and HTTPS listeners (a `mox serve` in a thread, on 127.0.0.2) answer the TLS check
and serve the MTA-STS policy, with a certificate for the DANE host key issued by a test CA (the
quickstart config itself uses ACME, which needs the internet). Every deliberate breakage must be
reported in the right section, with the record to publish, and the right exit status.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomlkit
from typer.testing import CliRunner

from mox.cli import app
from mox.config.load import load_config
from mox.dkim.keys import generate_key, public_record
from mox.dns.resolver import DnsPythonResolver, NotFound, parse_nameserver, reverse_name
from tests.conftest import free_port
from tests.dns.helpers import CA, DOMAIN, HOST, IP
from tests.dns.lab import Knot, Unbound
from tests.serverthread import ServerThread

pytestmark = [pytest.mark.integration, pytest.mark.slow]

runner = CliRunner()
REVERSE = "0.0.127.in-addr.arpa"


def reverse_zone(target: str = HOST) -> str:
    return (
        f"$TTL 300\n{REVERSE}. SOA {HOST}. hostmaster.{DOMAIN}. 1 7200 3600 1209600 300\n"
        f"{REVERSE}. NS {HOST}.\n2.{REVERSE}. PTR {target}.\n"
    )


@dataclass
class Lab:
    config: Path
    knot: Knot
    unbound: Unbound
    smtp_port: int
    https_port: int
    ca: CA
    zone: str

    def dnscheck(self, *extra: str) -> tuple[int, dict[str, Any]]:
        result = runner.invoke(app, [*self.args(), "--format", "json", *extra])
        assert result.exit_code in (0, 1), result.output
        return result.exit_code, json.loads(result.output)

    def args(self) -> list[str]:
        return [
            "dnscheck",
            "--config",
            str(self.config),
            "--resolver",
            self.unbound.address,
            "--smtp-port",
            str(self.smtp_port),
            "--https-port",
            str(self.https_port),
            "--tls-ca",
            str(self.ca.pem_file),
            "--timeout",
            "5",
        ]

    @contextlib.contextmanager
    def changed(self, old: str, new: str, zone: str = DOMAIN) -> Iterator[None]:
        original = self.zone if zone == DOMAIN else reverse_zone()
        assert old in original, old
        self.knot.set_zone(zone, original.replace(old, new))
        try:
            yield
        finally:
            self.knot.set_zone(zone, original)


def section(data: dict[str, Any], name: str, target: str = DOMAIN) -> dict[str, Any]:
    found: dict[str, Any] = next(
        s for s in data["sections"] if s["name"] == name and s["target"] == target
    )
    return found


def zone_for(config: Path, *flags: str) -> str:
    result = runner.invoke(app, ["dns", "zone", DOMAIN, "--full", "--config", str(config), *flags])
    assert result.exit_code == 0, result.output
    return result.output


@contextlib.contextmanager
def running_lab(base: Path, *, signed: bool) -> Iterator[Lab]:
    qs = runner.invoke(
        app,
        ["quickstart", f"alice@{DOMAIN}", "--hostname", HOST, "--ip", IP, "--dir", str(base)],
    )
    assert qs.exit_code == 0, qs.output
    config = base / "mox.toml"
    loaded = load_config(config)
    tls = loaded.config.listeners["public"].tls
    assert tls is not None
    assert tls.acme == "letsencrypt"
    key_file = loaded.resolve(tls.host_private_key_files[0])  # the ECDSA host key
    ca = CA(base)
    cert_file = base / "test-cert.pem"
    cert_file.write_bytes(ca.issue(key_file, [HOST, f"mta-sts.{DOMAIN}", f"autoconfig.{DOMAIN}"]))
    zone = zone_for(config, *(["--dnssec"] if signed else []))
    # The server gets its own config beside mox.toml: SMTP and HTTPS on free ports of our IP,
    # the test CA's certificate instead of ACME.
    doc = tomlkit.parse(config.read_text())
    smtp_port, https_port = free_port(), free_port()
    doc["listeners"]["public"] = {
        "ips": [IP],
        "tls": {"cert_file": str(cert_file), "key_file": str(key_file)},
        "smtp": {"enabled": True, "port": smtp_port},
        "https": {"enabled": True, "port": https_port},
    }
    del doc["acme"]
    (base / "server.toml").write_text(tomlkit.dumps(doc))
    knot = Knot(
        base / "knot", {DOMAIN: zone, REVERSE: reverse_zone()}, {DOMAIN} if signed else set()
    )
    stack = contextlib.ExitStack()
    with stack:
        stack.callback(knot.stop)  # registered first: a start that times out is stopped too
        knot.start()
        unbound = Unbound(base / "unbound", knot, knot.trust_anchors() if signed else [])
        stack.callback(unbound.stop)
        unbound.start()
        server = ServerThread(load_config(base / "server.toml")).start()
        stack.callback(server.stop)
        yield Lab(config, knot, unbound, smtp_port, https_port, ca, zone)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory.mktemp("lab") / "mox", signed=True) as running:
        yield running


def test_published_zone_checks_clean(lab: Lab) -> None:
    code, data = lab.dnscheck()
    errors = [
        (s["name"], f["message"])
        for s in data["sections"]
        for f in s["findings"]
        if f["status"] != "pass"
    ]
    assert errors == []
    assert code == 0
    assert data["summary"]["error"] == 0
    for name, target in [("DNSSEC", DOMAIN), ("DANE", HOST), ("TLS", HOST), ("MTA-STS", DOMAIN)]:
        assert section(data, name, target)["status"] == "pass", section(data, name, target)
    assert "2 DNSSEC-signed TLSA records" in section(data, "DANE", HOST)["findings"][0]["message"]
    # The text form says the same.
    text = runner.invoke(app, lab.args())
    assert text.exit_code == 0
    assert "0 errors, 0 warnings" in text.output
    assert "✓ pass: example.test is DNSSEC-signed" in text.output


def _dkim_record_lines(zone: str, selector: str) -> str:
    start = zone.index(f"{selector}._domainkey.{DOMAIN}.")
    end = zone.index("\t)", start) + 2
    return zone[start:end]


def test_missing_dkim_key(lab: Lab) -> None:
    selector = next(iter(load_config(lab.config).config.domains[DOMAIN].dkim.sign))
    block = _dkim_record_lines(lab.zone, selector)
    with lab.changed(block, ""):
        code, data = lab.dnscheck()
    sec = section(data, "DKIM")
    assert code == 1
    assert sec["status"] == "error"
    bad = [f for f in sec["findings"] if f["status"] == "error"]
    assert f"no DKIM key record at {selector}._domainkey.{DOMAIN}" in bad[0]["message"]
    assert bad[0]["fix"][0].startswith(f"{selector}._domainkey.{DOMAIN}.")


def test_wrong_dkim_key(lab: Lab) -> None:
    selector = next(iter(load_config(lab.config).config.domains[DOMAIN].dkim.sign))
    block = _dkim_record_lines(lab.zone, selector)
    other = public_record(generate_key("ed25519")).to_text()
    with lab.changed(block, f'{selector}._domainkey.{DOMAIN}. TXT "{other}"'):
        code, data = lab.dnscheck("--section", "DKIM")
    assert code == 1
    sec = section(data, "DKIM")
    assert any("not the public key of our private key" in f["message"] for f in sec["findings"])
    assert [s["name"] for s in data["sections"]] == ["DKIM"]


def test_spf_without_our_ip(lab: Lab) -> None:
    with lab.changed(f'"v=spf1 ip4:{IP} mx ~all"', '"v=spf1 ip4:192.0.2.1 ~all"'):
        code, data = lab.dnscheck("--section", "SPF")
    assert code == 1
    sec = section(data, "SPF")
    assert sec["status"] == "error"
    assert "softfail" in sec["findings"][0]["message"]
    assert any(f'"v=spf1 ip4:{IP} mx ~all"' in line for line in sec["findings"][0]["fix"])
    assert section(data, "SPF", HOST)["status"] == "pass"


def test_dmarc_p_none_is_a_warning(lab: Lab) -> None:
    with lab.changed('"v=DMARC1;p=reject;', '"v=DMARC1;p=none;'):
        code, data = lab.dnscheck("--section", "DMARC")
    sec = section(data, "DMARC")
    assert sec["status"] == "warning"
    assert "p=none" in sec["findings"][0]["message"]
    assert "p=reject" in sec["findings"][0]["fix"][0]
    assert code == 0  # warnings only


def test_mta_sts_id_changed_but_policy_not(lab: Lab) -> None:
    with lab.changed('"v=STSv1; id=', '"v=STSv1; id=1'):
        code, data = lab.dnscheck("--section", "MTA-STS")
    assert code == 1
    sec = section(data, "MTA-STS")
    assert sec["status"] == "error"
    msg = sec["findings"][0]["message"]
    assert "is not the id of the configured policy" in msg
    assert any("_mta-sts." in line for line in sec["findings"][0]["fix"])
    # The policy itself was fetched and is still right.
    assert any(
        f["status"] == "pass" and "policy at https://" in f["message"] for f in sec["findings"]
    )


def test_tlsa_not_matching_our_key(lab: Lab) -> None:
    lines = [line for line in lab.zone.splitlines() if line.startswith(f"_25._tcp.{HOST}.")]
    assert len(lines) == 2
    with lab.changed(lines[0] + "\n" + lines[1], f"_25._tcp.{HOST}. TLSA 3 1 1 {'ab' * 32}"):
        code, data = lab.dnscheck("--section", "DANE")
    assert code == 1
    sec = section(data, "DANE", HOST)
    assert sec["status"] == "error"
    assert "none of the TLSA records" in sec["findings"][0]["message"]
    fix = sec["findings"][0]["fix"]
    assert [line.split("TLSA ")[1] for line in fix] == [line.split("TLSA ")[1] for line in lines]


def test_ptr_mismatch(lab: Lab) -> None:
    with lab.changed(f"PTR {HOST}.", "PTR other.example.test.", zone=REVERSE):
        code, data = lab.dnscheck("--section", "IPRev")
    assert code == 1
    sec = section(data, "IPRev", HOST)
    assert sec["status"] == "error"
    assert "other.example.test" in sec["findings"][0]["message"]
    owner = f"2.{REVERSE}."
    assert sec["findings"][0]["fix"] == [f"{owner:<31} PTR {HOST}."]


def test_mx_pointing_elsewhere(lab: Lab) -> None:
    with lab.changed(f"MX 10 {HOST}.", "MX 10 mx.other.test."):
        code, data = lab.dnscheck("--section", "MX")
    assert code == 1
    sec = section(data, "MX")
    assert sec["status"] == "error"
    assert "not to mail.example.test." in sec["findings"][0]["message"]
    assert sec["findings"][0]["fix"] == [f"{DOMAIN}.{' ' * 19}MX 10 {HOST}."]


def test_since_snapshot_shows_changes(lab: Lab, tmp_path: Path) -> None:
    _, before = lab.dnscheck("--section", "DMARC")
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps(before))
    with lab.changed('"v=DMARC1;p=reject;', '"v=DMARC1;p=quarantine;sp=none;'):
        result = runner.invoke(app, [*lab.args(), "--section", "DMARC", "--since", str(snap)])
    assert result.exit_code == 0
    assert f"changes since {snap}:" in result.output
    assert "+ ? DMARC example.test: the subdomain policy is sp=none" in result.output
    assert "- ✓ DMARC example.test: DMARC record with p=reject" in result.output


def test_unreachable_resolver_exits_2(lab: Lab) -> None:
    dead = free_port()
    result = runner.invoke(
        app,
        [
            "dnscheck",
            "--config",
            str(lab.config),
            "--resolver",
            f"127.0.0.1:{dead}",
            "--timeout",
            "1",
        ],
    )
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"dnscheck: resolver 127.0.0.1:{dead} did not answer")


def test_unsigned_zone_warns_for_dnssec_and_dane(tmp_path: Path) -> None:
    with running_lab(tmp_path / "mox", signed=False) as unsigned:
        code, data = unsigned.dnscheck()
    dnssec = section(data, "DNSSEC")
    assert dnssec["status"] == "warning"
    assert "not DNSSEC-signed" in dnssec["findings"][0]["message"]
    dane = section(data, "DANE", HOST)
    assert dane["status"] == "warning"
    assert all("TLSA 3 1 1" in line for line in dane["findings"][0]["fix"])
    assert data["summary"]["error"] == 0, data
    assert code == 0


async def test_ad_bit_only_from_a_trusted_resolver(lab: Lab) -> None:
    """Unbound sets AD on the signed zone; only a trusted resolver passes it on (RFC 6840 §5.7)."""
    ip, port = parse_nameserver(lab.unbound.address)
    trusted = await DnsPythonResolver([(ip, port)]).query(DOMAIN, "MX")
    assert trusted.authentic
    assert trusted.records == (f"10 {HOST}.",)
    untrusted = await DnsPythonResolver([(ip, port)], trusted=False).query(DOMAIN, "MX")
    assert not untrusted.authentic
    ptr = await DnsPythonResolver([(ip, port)]).query(reverse_name(IP), "PTR")
    assert not ptr.authentic  # the reverse zone is not signed
    with pytest.raises(NotFound) as exc:
        await DnsPythonResolver([(ip, port)]).query(f"nothing.{DOMAIN}", "A")
    assert exc.value.nxdomain
    assert exc.value.authentic  # RFC 4035 §3.2.3: authenticated denial


def test_caa_forbidding_our_ca(lab: Lab) -> None:
    with lab.changed('CAA 0 issue "letsencrypt.org"', 'CAA 0 issue "other-ca.test"'):
        code, data = lab.dnscheck("--section", "CAA")
    assert code == 1
    sec = section(data, "CAA")
    assert sec["status"] == "error"
    assert "does not allow letsencrypt.org" in sec["findings"][0]["message"]
    assert sec["findings"][0]["fix"] == [f'{DOMAIN}.{" " * 19}CAA 0 issue "letsencrypt.org"']
