"""Fixtures of the soak tests: a database of each kind that outlives a kill -9 of the server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import postgres_database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def soak_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A storage URL: a SQLite file, or a fresh PostgreSQL database (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'db' / 'xmppd.db'}"
    else:
        yield from postgres_database("xmppd_soak")
