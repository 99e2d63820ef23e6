"""The driver path of the login statements (storage/driver.py ``Driver``), on both backends."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from storage import RosterItem, Storage, open_storage
from storage.models import last_activity, users
from tests.storage.helpers import BOTH


async def test_reads_what_the_engine_wrote(storage: Storage) -> None:
    await storage.users.create("alice", BOTH)
    assert (await storage.roster.get("alice"))[0] == []  # the version row, no items
    await storage.roster.put("alice", RosterItem("carol@example.test", "Carol", groups=["b"]))
    version = await storage.roster.put("alice", RosterItem("bob@example.test", ask=True))
    items, got_version = await storage.roster.get("alice")
    assert got_version == version
    assert [(i.jid, i.name, i.ask, i.approved, i.groups) for i in items] == [
        ("bob@example.test", None, True, False, []),
        ("carol@example.test", "Carol", False, False, ["b"]),
    ]
    assert await storage.roster.get("nobody") == ([], 0)


async def test_statements_are_timed_and_the_undo_stops_it(storage: Storage) -> None:
    seen: list[str] = []
    undo = storage.time_statements(lambda operation, seconds: seen.append(operation))
    await storage.users.exists("alice")  # driver
    await storage.users.create("alice", BOTH)  # engine
    await storage.users.set_last_logout("alice", datetime.now(UTC), None)  # driver write
    assert seen[0] == "select" and "insert" in seen[1:]
    count = len(seen)
    undo()
    await storage.users.exists("alice")
    assert len(seen) == count


async def test_a_constraint_violation_is_an_integrity_error(storage: Storage) -> None:
    values = {"username": "nobody", "logout_at": datetime.now(UTC), "status": None}
    with pytest.raises(IntegrityError):
        await storage._driver.upsert(last_activity, values, key=("username",))
    await storage.users.set_last_logout("nobody", datetime.now(UTC), "gone")  # swallowed
    assert await storage.users.get_last_logout("nobody") is None


async def test_rows_changed(storage: Storage) -> None:
    await storage.users.create("alice", BOTH)
    rename = users.update().where(users.c.username == sa.bindparam("old")).values(
        created_at=sa.bindparam("when"))
    params = {"old": "alice", "when": datetime.now(UTC)}
    assert await storage._driver.execute(rename, params) == 1
    assert await storage._driver.execute(rename, {**params, "old": "nobody"}) == 0


async def test_concurrent_reads(storage: Storage) -> None:
    await storage.users.create("alice", BOTH)
    found = await asyncio.gather(*(storage.users.exists("alice") for _ in range(50)))
    assert all(found)


class _Busy:
    """A read connection that finds the database busy (as while another process recovers
    the WAL after a crash)."""

    def execute(self, *args: Any) -> Any:
        exc = sqlite3.OperationalError("database is locked")
        exc.sqlite_errorcode = 5  # type: ignore[attr-defined]
        raise exc


async def test_sqlite_busy_read_waits_in_the_writer_thread(tmp_path: Path) -> None:
    async with await open_storage(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}") as store:
        await store.users.create("alice", BOTH)
        backend = store._driver._backend
        real = backend._read_connection()  # type: ignore[attr-defined]
        backend._read_connection = lambda: _Busy()  # type: ignore[attr-defined]
        try:
            assert await store.users.get_credentials("alice", "SCRAM-SHA-1") == BOTH[0]
        finally:
            backend._read_connection = lambda: real  # type: ignore[attr-defined]


async def test_sqlite_reader_is_read_only(tmp_path: Path) -> None:
    async with await open_storage(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}") as store:
        await store.users.exists("alice")
        reader = store._driver._backend._read_connection()  # type: ignore[attr-defined]
        with pytest.raises(sqlite3.OperationalError):
            reader.execute("DELETE FROM users")


async def test_in_memory_sqlite_goes_through_the_engine() -> None:
    async with await open_storage("sqlite+aiosqlite:///:memory:") as store:
        await store.users.create("alice", BOTH)
        assert await store.users.get_credentials("alice", "SCRAM-SHA-1") == BOTH[0]
        when = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
        await store.users.set_last_logout("alice", when, "bye")
        assert await store.users.get_last_logout("alice") == (when, "bye")
        await store.users.set_last_logout("nobody", when, None)  # the foreign key refuses it
        assert await store.users.get_last_logout("nobody") is None


@pytest.mark.postgres
async def test_postgres_cancelled_query_does_not_leak_connections(postgres_url: str) -> None:
    from tests.support.databases import reset_postgres

    await reset_postgres(postgres_url)
    async with await open_storage(postgres_url) as store:
        await store.users.create("alice", BOTH)
        sleep = sa.select(sa.func.pg_sleep(sa.bindparam("seconds", type_=sa.Float)))
        slow = [asyncio.create_task(store._driver.fetch(sleep, {"seconds": 5})) for _ in range(6)]
        await asyncio.sleep(0.3)  # four running, two waiting for a connection
        for task in slow:
            task.cancel()
        await asyncio.gather(*slow, return_exceptions=True)
        backend = store._driver._backend
        assert backend._count <= 4  # type: ignore[attr-defined]
        assert all(await asyncio.gather(*(store.users.exists("alice") for _ in range(20))))
        assert backend._count <= 4  # type: ignore[attr-defined]
