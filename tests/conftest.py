"""Fixtures shared by every test: databases of both kinds, a running server, real clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.databases import postgres_database, reset_postgres
from tests.support.loops import CHOICES, TEST_LOOP, VARIABLE
from tests.support.server import ServerFactory


def pytest_configure(config: pytest.Config) -> None:
    if TEST_LOOP not in CHOICES:
        raise pytest.UsageError(f"{VARIABLE}={TEST_LOOP!r}: expected one of {', '.join(CHOICES)}")
    if TEST_LOOP == "uvloop":  # the override below is chosen on purpose
        config.addinivalue_line(
            "filterwarnings", "ignore:Overriding the \"event_loop_policy\" fixture")


if TEST_LOOP == "uvloop":

    @pytest.fixture(scope="session")
    def event_loop_policy() -> asyncio.AbstractEventLoopPolicy:
        """pytest-asyncio makes every test's loop with this policy: uvloop's."""
        import uvloop

        return uvloop.EventLoopPolicy()


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
