"""The Store: one per process, opening each account's store on first use.

Layout as the Go mox (reference §1.8): data_dir/accounts/<name>/index.db and .../msg/.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from types import TracebackType

from mox.store.account import Account
from mox.store.models import StoreError

__all__ = ["Store"]


def _check_account_name(name: str) -> None:
    if not name or name in (".", "..") or len(name) > 255:
        raise StoreError(f"invalid account name {name!r}")
    if any(c in "/\\" or unicodedata.category(c) == "Cc" for c in name):
        raise StoreError(f"invalid account name {name!r}")


class Store:
    """All accounts' message stores under data_dir/accounts."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self._accounts: dict[str, Account] = {}
        self._closed = False

    def account(self, name: str) -> Account:
        """The account's store, opened (and created with its default mailboxes) on first use."""
        if self._closed:
            raise StoreError("store is closed")
        acc = self._accounts.get(name)
        if acc is None:
            _check_account_name(name)
            acc = Account(name, self.data_dir / "accounts" / name)
            self._accounts[name] = acc
        return acc

    def close(self) -> None:
        """Close every account now; pending writes not yet started fail."""
        self._closed = True
        accounts, self._accounts = list(self._accounts.values()), {}
        for acc in accounts:
            acc.close()

    async def aclose(self) -> None:
        """Finish pending writes of every account, then close."""
        self._closed = True
        accounts, self._accounts = list(self._accounts.values()), {}
        for acc in accounts:
            await acc.aclose()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
