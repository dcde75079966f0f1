"""`mox localserve`: a complete local mail server for testing, no root and no DNS needed.

As mox's localserve (reference §2.2): standard ports + 1000 on 127.0.0.1, account `mox@localhost`
with password `moxmoxmox`, admin pages with password `moxadmin`, a self-signed certificate for
localhost, and every recipient address accepted into the `mox` account. Everything lives in one
directory, created on first run.

Submitted mail to other domains goes through the outgoing queue, which delivers it to
localserve's own SMTP listener (`queue_transport`) instead of an MX, so no DNS is needed; the
listener accepts it into the `mox` account, or simulates the failure a magic local part asks for.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import tomlkit

from mox.auth.password import derive_credentials
from mox.config.load import LoadedConfig, load_config
from mox.config.model import Transport
from mox.store import Store
from mox.tls import make_self_signed

__all__ = [
    "LOCALSERVE_ADMIN_PASSWORD",
    "LOCALSERVE_PASSWORD",
    "LOCALSERVE_PORTS",
    "default_dir",
    "ensure_account",
    "prepare_dir",
    "queue_transport",
]

LOCALSERVE_USER = "mox@localhost"
LOCALSERVE_PASSWORD = "moxmoxmox"  # noqa: S105 (as mox: a documented local test password)
LOCALSERVE_ADMIN_PASSWORD = "moxadmin"  # noqa: S105 (as mox: the documented local admin password)
ADMIN_PASSWORD_FILE = "adminpasswd"  # noqa: S105 (a file name, not a password)
LOCALSERVE_PORTS = {
    "smtp": 1025,
    "submission": 1587,
    "submissions": 1465,
    "imap": 1143,
    "imaps": 1993,
    "http": 1080,
    "https": 1443,
}


def default_dir() -> Path:
    """`$XDG_CONFIG_HOME/mox-localserve`, else `~/.config/mox-localserve` (as mox)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mox-localserve"


def localserve_config(ip: str) -> dict[str, Any]:
    ports = LOCALSERVE_PORTS
    return {
        "hostname": "localhost",
        "data_dir": ".",
        "log_level": "info",
        "postmaster": "mox",
        "admin_password_file": ADMIN_PASSWORD_FILE,
        "listeners": {
            "local": {
                "ips": [ip],
                "tls": {"cert_file": "localhost.crt", "key_file": "localhost.key"},
                "smtp": {"enabled": True, "port": ports["smtp"]},
                "submission": {
                    "enabled": True,
                    "port": ports["submission"],
                    "require_starttls": False,
                },
                "submissions": {"enabled": True, "port": ports["submissions"]},
                "imap": {"enabled": True, "port": ports["imap"], "require_starttls": False},
                "imaps": {"enabled": True, "port": ports["imaps"]},
                "http": {"enabled": True, "port": ports["http"]},
                "https": {"enabled": True, "port": ports["https"]},
            },
        },
        "domains": {"localhost": {}},
        "accounts": {
            "mox": {
                "domain": "localhost",
                "destinations": {LOCALSERVE_USER: {}},
                "no_first_time_sender_delay": True,
            },
        },
    }


def queue_transport(loaded: LoadedConfig) -> Transport:
    """Where localserve's queue delivers everything: as mox's queue/localserve.go, the SMTP
    port of the first IP of the listener `local` (plain SMTP, opportunistic STARTTLS), else
    127.0.0.1:1025. Derived from the listeners, so directories written by older versions,
    without any transport in their config, work too."""
    listener = loaded.config.listeners.get("local")
    if listener is not None and listener.smtp.enabled and listener.ips:
        port = listener.smtp.port or LOCALSERVE_PORTS["smtp"]
        return Transport(kind="smtp", host=str(listener.ips[0]), port=port)
    return Transport(kind="smtp", host="127.0.0.1", port=LOCALSERVE_PORTS["smtp"])


def prepare_dir(directory: Path, ip: str = "127.0.0.1") -> LoadedConfig:
    """Create the localserve directory on first run (config, certificate); load the config."""
    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / "mox.toml"
    if not (directory / "localhost.key").exists():
        make_self_signed(directory / "localhost.crt", directory / "localhost.key", "localhost")
    admin_file = directory / ADMIN_PASSWORD_FILE
    if not admin_file.exists():
        tmp_admin = admin_file.with_suffix(".tmp")
        tmp_admin.write_text(derive_credentials(LOCALSERVE_ADMIN_PASSWORD).to_text() + "\n")
        tmp_admin.chmod(0o600)
        tmp_admin.replace(admin_file)
    if not config_path.exists():
        text = (
            "# Written by `mox localserve`; edit freely, it is read at every start.\n"
            + tomlkit.dumps(localserve_config(ip))
        )
        tmp = config_path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(config_path)
    return load_config(config_path)


async def ensure_account(loaded: LoadedConfig) -> None:
    """Give the account `mox` its password on first run."""
    store = Store(loaded.data_dir)
    try:
        account = store.account("mox")
        if account.get_credentials() is None:
            await account.set_credentials(derive_credentials(LOCALSERVE_PASSWORD))
    finally:
        await store.aclose()
