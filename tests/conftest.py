"""Fixtures shared by every test: databases of both kinds, a running server, real clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.databases import postgres_database, reset_postgres
from tests.support.server import ServerFactory


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    yield from postgres_database("xmppd_test")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The storage URL of each backend (the PostgreSQL one is emptied before the test)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'db' / 'xmppd.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def db_url(backend_url: str) -> str:
    if backend_url.startswith("postgresql"):
        await reset_postgres(backend_url)
    return backend_url


@pytest.fixture
async def servers(tmp_path: Path, db_url: str) -> AsyncIterator[ServerFactory]:
    """Start servers with config overrides: ``await servers.start(c2s={"ping_interval": 1})``."""
    factory = ServerFactory(tmp_path, db_url)
    try:
        yield factory
    finally:
        await factory.close()


@pytest.fixture
async def server(servers: ServerFactory):  # type: ignore[no-untyped-def]
    """A running server on the embedded defaults (domain localhost), on each backend."""
    return await servers.start()
