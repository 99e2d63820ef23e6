"""Test databases: a SQLite file per test, or a throwaway PostgreSQL database per test session.

PostgreSQL comes from TEST_POSTGRES_DSN (default postgresql://postgres@127.0.0.1:5432/test).
If it is unreachable those cases skip, unless REQUIRE_TEST_SERVICES=1 makes them fail (CI).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

ADMIN_DSN = os.environ.get("TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def unavailable(what: str, reason: str) -> None:
    """Skip a test whose service is missing; in CI (REQUIRE_TEST_SERVICES=1) fail it."""
    if os.environ.get("REQUIRE_TEST_SERVICES") == "1":
        pytest.fail(f"{what} required (REQUIRE_TEST_SERVICES=1): {reason}")
    pytest.skip(f"{what} unavailable: {reason}")


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def run_sync(coro: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine from synchronous fixture code, on a thread with its own loop."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()


def postgres_database(prefix: str) -> Iterator[str]:
    """A fresh database (asyncpg URL), dropped afterwards."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    try:
        run_sync(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        unavailable("PostgreSQL", repr(exc))
    url = make_url(ADMIN_DSN).set(drivername="postgresql+asyncpg", database=name)
    yield url.render_as_string(hide_password=False)
    run_sync(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def reset_postgres(url: str) -> None:
    """Empty a test database: drop every table, so the next open migrates from scratch."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()
