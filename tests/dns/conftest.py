"""Fixtures for the DNS tests: one quickstart installation per module (keys take a moment)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mox.quickstart import QuickstartResult
from tests.dns.helpers import make_installation


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory) -> QuickstartResult:
    return make_installation(tmp_path_factory.mktemp("install") / "mox")


@pytest.fixture
def config_file(installation: QuickstartResult) -> Path:
    return installation.config_path
