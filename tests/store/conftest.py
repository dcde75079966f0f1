from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mox.store import Account, Store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store(tmp_path)
    yield s
    await s.aclose()


@pytest.fixture
async def acc(store: Store) -> Account:
    return store.account("mjl")
