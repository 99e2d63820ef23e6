"""Opening the database: engine arguments and per-connection settings for each dialect, and
Alembic upgrades. Dialect differences live here, in base.py (statements such as upserts) and
in driver.py (running the login statements on the driver's own connections).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from storage.archive import ArchiveRepository
from storage.blocklist import BlocklistRepository
from storage.cache import CachedRosterRepository
from storage.driver import Driver
from storage.fast_tokens import FastTokenRepository
from storage.offline import OfflineRepository
from storage.pep import PepRepository
from storage.push import PushRepository
from storage.rooms import RoomRepository
from storage.roster import RosterRepository
from storage.timing import Observer, listen
from storage.unavailable import explain
from storage.uploads import UploadRepository
from storage.users import UserRepository
from storage.vcards import PrivateXmlRepository, VCardRepository

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# Any constant: nodes of a cluster starting together take turns to migrate PostgreSQL.
_MIGRATION_LOCK_KEY = 0x786D7070


class Storage:
    """The repositories over one engine; `close()` (or `async with`) releases the connections."""

    def __init__(self, engine: AsyncEngine, url: str, cache: bool = True) -> None:
        self.url = url
        self._engine = engine
        self._driver = Driver(engine)  # the statements of every login (storage/driver.py)
        self.users = UserRepository(engine, self._driver)
        self.roster = (CachedRosterRepository(engine, self._driver) if cache
                       else RosterRepository(engine, self._driver))
        if isinstance(self.roster, CachedRosterRepository):
            self.users.deleted.append(self.roster.evict)
        self.offline = OfflineRepository(engine, self._driver)
        self.rooms = RoomRepository(engine)
        self.archive = ArchiveRepository(engine)
        self.pep = PepRepository(engine)
        self.vcards = VCardRepository(engine)
        self.private = PrivateXmlRepository(engine)
        self.blocklist = BlocklistRepository(engine)
        self.uploads = UploadRepository(engine)
        self.fast_tokens = FastTokenRepository(engine)
        self.push = PushRepository(engine)

    def time_statements(self, observe: Observer) -> Callable[[], None]:
        """Report each SQL statement's duration (metrics); returns the undo."""
        undo = listen(self._engine, observe)
        self._driver.observers.append(observe)

        def undo_both() -> None:
            undo()
            if observe in self._driver.observers:
                self._driver.observers.remove(observe)

        return undo_both

    async def migrate(self) -> None:
        """Upgrade the schema to the newest migration (nothing to do if it is there already)."""
        async with self._engine.begin() as conn:
            await conn.run_sync(_upgrade)

    async def close(self) -> None:
        await self._driver.close()
        await self._engine.dispose()

    async def __aenter__(self) -> Storage:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def open_storage(url: str, *, migrate: bool = True, cache: bool = True) -> Storage:
    """Create the engine for `url` (sqlite+aiosqlite:///path or postgresql+asyncpg://...).

    ``cache``: keep read caches (``storage/cache.py``); only for the single writer of a database.
    A database that cannot be opened (missing, login refused, unreachable: its first connection
    is the migration's) raises ``StorageUnavailable`` with one line saying what to do.
    """
    try:
        engine = _create_engine(url)  # makes the SQLite file's directory
    except OSError as exc:
        _raise_unavailable(url, exc)
        raise
    storage = Storage(engine, url, cache=cache)
    if migrate:
        try:
            await storage.migrate()
        except Exception as exc:
            await storage.close()
            _raise_unavailable(url, exc)
            raise
        except BaseException:
            await storage.close()
            raise
    return storage


def _raise_unavailable(url: str, exc: Exception) -> None:
    """Raise the one-line ``StorageUnavailable`` for ``exc`` if a person must fix it."""
    unavailable = explain(url, exc)
    if unavailable is not None:
        raise unavailable from exc


def alembic_config(url: str | None = None) -> Config:
    """Alembic configuration built in code, so migrations work from an installed package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _switch_to_wal(cursor: Any) -> None:
    """PRAGMA journal_mode=WAL, waiting as long as for any lock: on a new database file that
    several connections open at once (nodes starting together), the switch needs the file to
    itself, and SQLite answers "database is locked" at once instead of calling the busy
    handler when another connection holds a lock."""
    deadline = time.monotonic() + _BUSY_TIMEOUT
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(0.01)  # in the driver's thread (aiosqlite), not the event loop


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        # Take the write lock now, so a second process migrating the same file waits its turn.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_KEY})")
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _create_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # A pool that stays exhausted for pool_timeout seconds sheds the request (``overloaded``)
        # rather than piling up waiters for SQLAlchemy's default half minute.
        return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=False,
                                   pool_timeout=5)
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url)
    event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
    return engine


_BUSY_TIMEOUT = 5.0  # seconds a connection waits for another one's lock


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT * 1000)}")
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")  # ON DELETE CASCADE needs it, per connection
    finally:
        cursor.close()
