"""`mox dns zone`: mox's record texts, TLSA only for signed zones, and zones Knot accepts."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import tomlkit
from typer.testing import CliRunner

from mox.cli import app
from mox.config.load import load_config
from mox.dane import load_host_key, tlsa_for_key
from mox.dns.expected import build_records, gather_facts, mta_sts_id
from mox.dns.records import DkimKey
from mox.dns.zone import render_zone
from mox.quickstart import QuickstartResult, quickstart
from tests.dns.helpers import DOMAIN, HOST, IP
from tests.dns.lab import need

runner = CliRunner()


def zone_cli(config: Path, *args: str) -> str:
    result = runner.invoke(app, ["dns", "zone", "--config", str(config), *args])
    assert result.exit_code == 0, result.output
    return result.output


def record_line(zone: str, name: str, rtype: str) -> list[str]:
    return [
        line
        for line in zone.splitlines()
        if re.match(rf"^(;; )?{re.escape(name)}\.\s+{rtype} ", line)
    ]


def test_mox_record_texts(config_file: Path) -> None:
    zone = zone_cli(config_file)
    assert "$TTL 300" in zone
    assert record_line(zone, DOMAIN, "MX") == [f"{DOMAIN}.{' ' * 19}MX 10 {HOST}."]
    assert f'{HOST}.              TXT "v=spf1 a -all"' in zone
    assert f'TXT "v=spf1 ip4:{IP} mx ~all"' in zone
    assert f'"v=DMARC1;p=reject;rua=mailto:dmarcreports@{DOMAIN}!10m"' in zone
    assert f'_smtp._tls.{DOMAIN}.        TXT "v=TLSRPTv1; rua=mailto:tlsreports@{DOMAIN}"' in zone
    assert f'_smtp._tls.{HOST}.   TXT "v=TLSRPTv1; rua=mailto:tlsreports@{DOMAIN}"' in zone
    assert f"mta-sts.{DOMAIN}.           CNAME {HOST}." in zone
    assert re.search(
        rf'_mta-sts\.{DOMAIN}\.\s+TXT "v=STSv1; id=20250819T203950[0-9a-f]{{8}}"', zone
    )
    assert f"autoconfig.{DOMAIN}.        CNAME {HOST}." in zone
    assert f"_autodiscover._tcp.{DOMAIN}. SRV 0 1 443 {HOST}." in zone
    # RFC 6186 / RFC 8314: implicit TLS services, and "0 0 0 ." for those not offered.
    assert f"_imaps._tcp.{DOMAIN}.       SRV 0 1 993 {HOST}." in zone
    assert f"_submissions._tcp.{DOMAIN}. SRV 0 1 465 {HOST}." in zone
    for label in ("_imap", "_submission", "_pop3", "_pop3s"):
        assert record_line(zone, f"{label}._tcp.{DOMAIN}", "SRV")[0].endswith("SRV 0 0 0 .")
    # Every record has an explaining comment block above it.
    assert zone.count("\n; ") > 20


def test_dkim_records_split_and_as_one_string(
    config_file: Path, installation: QuickstartResult
) -> None:
    zone = zone_cli(config_file)
    loaded = load_config(config_file)
    selectors = loaded.config.domains[DOMAIN].dkim.selectors
    assert list(selectors) == ["2025a", "2025b"]
    assert loaded.config.domains[DOMAIN].dkim.sign == ["2025a"]
    for selector in selectors:
        start = zone.index(f"{selector}._domainkey.{DOMAIN}.  TXT (")
        block = zone[start:].split("\t)", 1)[0]
        strings = re.findall(r'"([^"]*)"', block)
        assert len(strings) > 2
        assert all(len(s) <= 255 for s in strings)  # RFC 1035 §3.3.14
        joined = "".join(strings)
        rec = DkimKey.parse(joined)
        assert rec.key_type == "rsa"
        assert len(rec.public_key) > 256  # RSA-2048 SubjectPublicKeyInfo
        assert f"; As one string for web interfaces: {joined}" in zone


def test_tlsa_commented_unless_dnssec(config_file: Path) -> None:
    loaded = load_config(config_file)
    tls = loaded.config.listeners["public"].tls
    assert tls is not None
    key_files = tls.host_private_key_files
    expected = [tlsa_for_key(load_host_key(loaded.resolve(p)).public_key()) for p in key_files]
    plain = zone_cli(config_file)
    lines = record_line(plain, f"_25._tcp.{HOST}", "TLSA")
    assert len(lines) == 2
    assert all(line.startswith(";; ") for line in lines)
    assert "WARNING: DANE needs a DNSSEC-signed zone" in plain
    signed = zone_cli(config_file, "--dnssec")
    lines = record_line(signed, f"_25._tcp.{HOST}", "TLSA")
    assert [line.split("TLSA ")[1] for line in lines] == [t.to_text() for t in expected]
    assert all(line.startswith("_25._tcp") for line in lines)


def test_caa(config_file: Path, tmp_path: Path) -> None:
    # The quickstart uses Let's Encrypt (ACME): CAA allows its issuer domain.
    acme = zone_cli(config_file)
    assert f'{DOMAIN}.                   CAA 0 issue "letsencrypt.org"' in acme.splitlines()
    # Certificates from files: which CA is unknown, so the record is only suggested.
    files = quickstart(f"alice@{DOMAIN}", tmp_path / "files", hostname=HOST, ips=[IP], acme=False)
    plain = zone_cli(files.config_path)
    assert f';; {DOMAIN}.                   CAA 0 issue "letsencrypt.org"' in plain
    assert "Name your CA with `--caa-issuer`" in plain
    zone = zone_cli(
        config_file,
        "--caa-issuer",
        "letsencrypt.org",
        "--acme-account-uri",
        "https://acme.test/acct/1",
    )
    assert (
        f'{DOMAIN}.                   CAA 0 issue "letsencrypt.org; '
        'accounturi=https://acme.test/acct/1; validationmethods=tls-alpn-01,http-01"'
    ) in zone.splitlines()


def test_mta_sts_id_follows_the_policy(installation: QuickstartResult, tmp_path: Path) -> None:
    loaded = load_config(installation.config_path)
    facts = gather_facts(loaded)
    before = mta_sts_id(facts, facts.domains[0])
    doc = tomlkit.parse(installation.config_path.read_text())
    doc["domains"][DOMAIN]["mta_sts"]["max_age"] = 604800
    changed = installation.config_path.with_name("changed.toml")
    changed.write_text(tomlkit.dumps(doc))
    facts2 = gather_facts(load_config(changed))
    after = mta_sts_id(facts2, facts2.domains[0])
    assert before is not None
    assert after is not None
    assert before != after
    assert before.startswith("20250819T203950")
    assert after.startswith("20250819T203950")
    assert zone_cli(changed).count(f"id={after}") == 1


def test_unknown_domain_and_full_needs_one(config_file: Path) -> None:
    result = runner.invoke(app, ["dns", "zone", "--config", str(config_file), "nope.test"])
    assert result.exit_code == 1
    assert "not in the config" in result.output
    result = runner.invoke(app, ["dns", "zone", "--config", str(config_file), "--full"])
    assert result.exit_code == 1


def test_missing_key_file_is_reported(installation: QuickstartResult, tmp_path: Path) -> None:
    doc = tomlkit.parse(installation.config_path.read_text())
    doc["listeners"]["public"]["tls"]["host_private_key_files"] = ["hostkeys/gone.pem"]
    broken = installation.config_path.with_name("broken.toml")
    broken.write_text(tomlkit.dumps(doc))
    result = runner.invoke(app, ["dns", "zone", "--config", str(broken)])
    assert result.exit_code == 1
    assert "gone.pem" in result.output


@pytest.mark.integration
@pytest.mark.parametrize("dnssec", [False, True])
def test_kzonecheck_accepts_full_zone(config_file: Path, tmp_path: Path, dnssec: bool) -> None:
    kzonecheck = need("kzonecheck")
    args = ["--full", DOMAIN] + (["--dnssec"] if dnssec else [])
    path = tmp_path / "zone"
    path.write_text(zone_cli(config_file, *args))
    res = subprocess.run(
        [kzonecheck, "-o", DOMAIN, str(path)], capture_output=True, text=True, check=False
    )
    assert res.returncode == 0, res.stdout + res.stderr
    # A broken zone is refused, so the check above means something.
    path.write_text(path.read_text() + f'mta-sts.{DOMAIN}. TXT "conflicts with CNAME"\n')
    res = subprocess.run(
        [kzonecheck, "-o", DOMAIN, str(path)], capture_output=True, text=True, check=False
    )
    assert res.returncode != 0


@pytest.mark.integration
def test_kzonecheck_accepts_fragment_in_a_zone(config_file: Path, tmp_path: Path) -> None:
    """The default output is a fragment: included in a zone with SOA and NS, it loads."""
    kzonecheck = need("kzonecheck")
    (tmp_path / "fragment").write_text(zone_cli(config_file, "--dnssec"))
    (tmp_path / "zone").write_text(
        f"$ORIGIN {DOMAIN}.\n@ 300 SOA ns.{DOMAIN}. hostmaster.{DOMAIN}. 1 7200 3600 1209600 300\n"
        f"@ 300 NS ns.{DOMAIN}.\nns 300 A 192.0.2.53\n$INCLUDE {tmp_path / 'fragment'}\n"
    )
    res = subprocess.run(
        [kzonecheck, "-o", DOMAIN, str(tmp_path / "zone")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_render_out_of_zone_records_are_comments(installation: QuickstartResult) -> None:
    facts = gather_facts(load_config(installation.config_path))
    zone = render_zone(build_records(facts), full_zone="other.test", hostname=HOST)
    assert "$ORIGIN other.test." in zone
    assert "These records belong in other zones" in zone
    body = zone.split("These records belong in other zones")[1]
    assert all(line.startswith(";") or not line for line in body.splitlines()[1:])
