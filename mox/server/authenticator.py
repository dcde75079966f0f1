"""Password logins for SMTP submission and IMAP, backed by the config and the account store.

Usernames are email addresses of an account (as mox). Credentials come from the account's
`password_file` when the config names one, else from the account database. Failed logins are
delayed and counted per IP class (mox's limits: 10/30/90 a minute and 50/150/450 a day for
/32,/26,/21 or /64,/48,/32 by default); an IP over its limit is refused before any password is
checked. There is deliberately no per-account lockout: an attacker must not be able to lock a user
out by guessing from elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import unicodedata

from mox import metrics
from mox.auth.password import Credentials, verify_password
from mox.config.load import LoadedConfig
from mox.ratelimit import RateLimiter
from mox.store import Store

__all__ = ["ConfigAuthenticator"]

log = logging.getLogger(__name__)

FAILURE_DELAY = 1.0  # seconds added to every failed login, as mox


class ConfigAuthenticator:
    """`mox.auth.login.Authenticator` over a loaded config and a store."""

    def __init__(
        self, config: LoadedConfig, store: Store, failure_delay: float = FAILURE_DELAY
    ) -> None:
        self.config = config
        self.store = store
        self.failure_delay = failure_delay
        n = config.config.limits.auth_failures_per_minute
        self.failures_minute = RateLimiter(60, (n, 3 * n, 9 * n))
        self.failures_day = RateLimiter(86400, (5 * n, 15 * n, 45 * n))

    def throttled(self, remote_ip: str) -> bool:
        """Whether this IP has had too many failed logins recently."""
        return not (
            self.failures_minute.can_add(remote_ip) and self.failures_day.can_add(remote_ip)
        )

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

    async def conclude(
        self, username: str, ok: bool, *, remote_ip: str, protocol: str
    ) -> str | None:
        account = self.account_for(username)
        if self.throttled(remote_ip):
            log.info(
                "login refused, too many failures",
                extra={"ip": remote_ip, "username": username, "protocol": protocol},
            )
            ok = False
        metrics.auth_result(protocol, ok and account is not None)
        if not ok or account is None:
            self.failures_minute.count(remote_ip)
            self.failures_day.count(remote_ip)
            await asyncio.sleep(self.failure_delay)
            return None
        return account

    async def login(
        self, username: str, password: str, *, remote_ip: str, protocol: str
    ) -> str | None:
        account = self.account_for(username)
        ok = False
        if account is not None and not self.throttled(remote_ip):
            creds = self.account_credentials(account)
            if creds is not None:
                ok = await asyncio.to_thread(verify_password, creds, password)
        return await self.conclude(username, ok, remote_ip=remote_ip, protocol=protocol)
