#!/usr/bin/env python3
"""The Debian packages the test suite needs: the one list, checked and installed here.

`--install` runs `apt-get update` once and `apt-get install -y` for what is missing, when run as root
(CI runs as root). Without root, it prints the command to run and exits 1 under CI (CI=true), or
warns and goes on elsewhere, so tests that need a missing part fail with a clear message.
`--check` only reports.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

# package -> a program it provides (how we tell it is installed)
PACKAGES: dict[str, str] = {
    "swaks": "swaks",  # SMTP client with STARTTLS, AUTH, pipelining
    "openssl": "openssl",  # s_client for raw TLS transcripts
}


def missing() -> list[str]:
    return [pkg for pkg, prog in PACKAGES.items() if shutil.which(prog) is None]


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
