#!/usr/bin/env python3
"""The Debian packages the test suite needs: the one list, checked and installed here.

`--install` runs `apt-get update` once and `apt-get install -y` for what is missing, as root
(CI runs as root). Without root, it prints the command to run and exits 1 under CI (CI=true),
or
warns and goes on elsewhere, so tests that need a missing part fail with a clear message.
`--check` only reports.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

# Debian package -> what the tests use it for
PACKAGES: dict[str, str] = {
    "swaks": "SMTP client with STARTTLS, AUTH, pipelining",
    "libnet-ssleay-perl": "TLS for swaks",
    "openssl": "s_client for raw TLS transcripts",
    "postfix": "peer MTA relaying into our port 25 (tests/integration/test_postfix.py)",
    "pebble": "ACME test CA issuing certificates to our listeners (tests/web)",
    "knot": "authoritative DNS with automatic DNSSEC signing (mox dns zone, dnscheck)",
    "knot-dnsutils": "kdig, to wait for Knot and read its DNSKEY",
    "knot-dnssecutils": "kzonecheck, to validate the zone mox dns zone prints",
    "unbound": "validating resolver in front of Knot (AD bit for dnscheck)",
    "opendkim-tools": "opendkim-testmsg, independent check of our DKIM signatures (tests/mailauth)",
    "openssh-server": "sshd as the target host of the Ansible rollout test (tests/deploy)",
    "python3-venv": "the virtualenv the Ansible role installs mox into on the target",
    "nix-bin": "nix-instantiate --parse for every .nix file (tests/deploy)",
    "isync": "mbsync syncing a mailbox both ways (tests/imapserver/test_realclients.py)",
    "mutt": "mutt reading a message over IMAP COMPRESS=DEFLATE (tests/imapserver)",
    "fetchmail": "fetchmail reading messages over IMAPS (tests/imapserver)",
    "chromium": "headless browser (Playwright) for webmail, account and admin pages (tests/web*)",
}


def installed(pkg: str) -> bool:
    if shutil.which("dpkg-query") is None:
        return False
    res = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
    return res.returncode == 0 and res.stdout.strip().endswith(" installed")


def missing() -> list[str]:
    return [pkg for pkg in PACKAGES if not installed(pkg)]


def main() -> int:
    todo = missing()
    if not todo:
        return 0
    if "--install" not in sys.argv[1:]:
        print("missing Debian packages: " + " ".join(todo), file=sys.stderr)
        return 1
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *todo]
    if os.geteuid() != 0:
        print(f"system_deps: run as root: apt-get update && {' '.join(cmd)}", file=sys.stderr)
        return 1 if os.environ.get("CI") else 0
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"system_deps: installing {' '.join(todo)}", file=sys.stderr, flush=True)
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(cmd, check=True, env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
