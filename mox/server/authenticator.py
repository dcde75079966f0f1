"""Password logins for SMTP submission and IMAP, backed by the config and the account store.

Usernames are email addresses of an account (as mox). Credentials come from the account's
`password_file` when the config names one, else from the account database. Failed logins are
delayed, and an IP with too many recent failures is refused before any password is checked.
"""

from __future__ import annotations

import asyncio
import logging
import time
import unicodedata
from collections import defaultdict, deque

from mox.auth.password import Credentials, verify_password
from mox.config.load import LoadedConfig
from mox.store import Store

__all__ = ["ConfigAuthenticator"]

log = logging.getLogger(__name__)

FAILURE_DELAY = 0.5  # seconds added to every failed login
WINDOW = 60.0


class ConfigAuthenticator:
    """`mox.auth.login.Authenticator` over a loaded config and a store."""

    def __init__(self, config: LoadedConfig, store: Store, failure_delay: float = FAILURE_DELAY):
        self.config = config
        self.store = store
        self.failure_delay = failure_delay
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _recent_failures(self, key: str, now: float) -> int:
        q = self._failures[key]
        while q and q[0] < now - WINDOW:
            q.popleft()
        return len(q)

    def account_credentials(self, account: str) -> Credentials | None:
        acc_cfg = self.config.config.accounts[account]
        if acc_cfg.login_disabled:
            return None
        if acc_cfg.password_file is not None:
            path = self.config.resolve(acc_cfg.password_file)
            try:
                return Credentials.from_text(path.read_text().strip())
            except (OSError, ValueError) as exc:
                log.error("cannot read password file", extra={"account": account, "err": str(exc)})
                return None
        return self.store.account(account).get_credentials()

    def credentials(self, username: str) -> Credentials | None:
        account = self.account_for(username)
        return None if account is None else self.account_credentials(account)

    def account_for(self, username: str) -> str | None:
        username = unicodedata.normalize("NFC", username)  # usernames are NFC (as mox)
        if "@" not in username:
            return None
        local, _, domain = username.rpartition("@")
        target = self.config.addresses.get(f"{local.lower()}@{domain.lower()}") or (
            self.config.addresses.get(f"{local}@{domain.lower()}")
        )
        return target.account if target else None

    def _throttled(self, keys: list[str], now: float) -> bool:
        limit = self.config.config.limits.auth_failures_per_minute
        return any(self._recent_failures(k, now) >= limit for k in keys)

    async def conclude(
        self, username: str, ok: bool, *, remote_ip: str, protocol: str
    ) -> str | None:
        now = time.monotonic()
        account = self.account_for(username)
        keys = [f"ip:{remote_ip}"] + ([f"account:{account}"] if account else [])
        if self._throttled(keys, now):
            log.info(
                "login refused, too many failures",
                extra={"ip": remote_ip, "username": username, "protocol": protocol},
            )
            ok = False
        if not ok or account is None:
            for k in keys:
                self._failures[k].append(now)
            await asyncio.sleep(self.failure_delay)
            return None
        return account

    async def login(
        self, username: str, password: str, *, remote_ip: str, protocol: str
    ) -> str | None:
        keys = [f"ip:{remote_ip}"]
        account = self.account_for(username)
        ok = False
        if account is not None and not self._throttled(keys, time.monotonic()):
            creds = self.account_credentials(account)
            if creds is not None:
                ok = await asyncio.to_thread(verify_password, creds, password)
        return await self.conclude(username, ok, remote_ip=remote_ip, protocol=protocol)
