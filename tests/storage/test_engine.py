from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from storage import Storage, open_storage
from storage.models import metadata
from tests.storage.helpers import BOTH


async def test_migrations_idempotent(storage_url: str) -> None:
    first = await open_storage(storage_url)
    try:
        await first.users.create("alice", BOTH)
        await first.migrate()
    finally:
        await first.close()
    async with await open_storage(storage_url) as second:
        await second.migrate()
        assert await second.users.list() == ["alice"]
        assert second.url == storage_url


async def test_concurrent_first_opens(storage_url: str) -> None:
    """Several nodes (or processes) starting on an empty database migrate it once, in turn."""
    stores = await asyncio.gather(*(open_storage(storage_url) for _ in range(3)))
    try:
        await stores[0].users.create("alice", BOTH)
        assert await stores[2].users.exists("alice")
    finally:
        for store in stores:
            await store.close()


async def test_models_match_migrations(storage: Storage) -> None:
    """The Table objects the queries use describe exactly the schema the migrations build."""

    def diff(conn: sa.Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))

    async with storage._engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_open_without_migrate_leaves_schema_alone(storage_url: str) -> None:
    async with await open_storage(storage_url, migrate=False) as store:
        async with store._engine.connect() as conn:
            tables = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
        assert "users" not in tables
        await store.migrate()
        assert await store.users.count() == 0


async def test_sqlite_creates_directory_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "xmppd.db"
    async with await open_storage(f"sqlite+aiosqlite:///{path}") as store:
        assert path.exists()
        async with store._engine.connect() as conn:
            pragmas = {
                name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
                for name in ("foreign_keys", "journal_mode", "synchronous", "busy_timeout")
            }
    assert pragmas == {
        "foreign_keys": 1,
        "journal_mode": "wal",
        "synchronous": 1,
        "busy_timeout": 5000,
    }
