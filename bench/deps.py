"""The Debian packages the benchmark needs beyond the test suite's: `python -m bench.deps`
installs what is missing (as root: apt-get update once, then apt-get install -y)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

PACKAGES: dict[str, str] = {
    "postfix": "the classic MTA, delivering over LMTP",
    "dovecot-imapd": "Dovecot's IMAP server",
    "dovecot-lmtpd": "Dovecot's LMTP delivery agent",
    "dovecot-fts-xapian": "full-text index for Dovecot, so SEARCH BODY is index against index",
}


def missing() -> list[str]:
    if shutil.which("dpkg-query") is None:
        return list(PACKAGES)
    out = []
    for pkg in PACKAGES:
        res = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True
        )
        if res.returncode != 0 or not res.stdout.strip().endswith(" installed"):
            out.append(pkg)
    return out


def main() -> int:
    todo = missing()
    if not todo:
        return 0
    if os.geteuid() != 0:
        print(f"bench.deps: as root, apt-get install {' '.join(todo)}", file=sys.stderr)
        return 1
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"bench.deps: installing {' '.join(todo)}", file=sys.stderr, flush=True)
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", *todo], check=True, env=env
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
