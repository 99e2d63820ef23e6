"""The database driver's own connections, for the statements of every login (``Driver``).

Dialect differences of running statements outside the engine live here.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import SingletonThreadPool, StaticPool
from sqlalchemy.sql.compiler import SQLCompiler

from storage.base import upsert_statement
from storage.timing import Observer

# What the driver runs: a query or one writing statement, built with SQLAlchemy Core.
Statement = sa.Select[Any] | sa.Insert | sa.Update | sa.Delete


class _Compiled:
    """A Core statement as the driver runs it: SQL text, positional parameters, converters."""

    __slots__ = ("names", "operation", "params", "results", "sql", "statement")

    def __init__(self, statement: Statement, dialect: sa.Dialect) -> None:
        self.statement = statement  # keeps the id() it is cached under alive
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        self.sql = compiled.string
        self.names = tuple(compiled.positiontup or ())
        # The bind and result conversions of the column types (datetimes on SQLite, booleans),
        # exactly as SQLAlchemy applies them.
        self.params = tuple(compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
                            for name in self.names)
        columns = getattr(statement, "selected_columns", ())
        processors = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None)
                           for c in columns)
        self.results = processors if any(processors) else None
        word = self.sql.lstrip()[:6].lower()
        self.operation = word if word in ("select", "insert", "update", "delete") else "other"

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        return [params[name] if convert is None else convert(params[name])
                for name, convert in zip(self.names, self.params, strict=True)]

    def rows(self, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        results = self.results
        if results is None:
            return [tuple(row) for row in rows]
        return [tuple(value if convert is None else convert(value)
                      for value, convert in zip(row, results, strict=True)) for row in rows]


class Driver:
    """The database driver's own connections, for the statements that every login runs.

    Through SQLAlchemy's async engine a statement costs about 0.2 ms of Python (pool checkout
    and reset, greenlet switches, cache key, result object; on SQLite four trips to aiosqlite's
    thread), some fifty times what SQLite takes to read a row by key, and a login reads the
    credentials, the roster, the pending requests and the offline messages
    (``bench/login_profile.py``). Such single statements run here instead: a Core statement is
    compiled once for the engine's dialect (the same SQL as through the engine, with the same
    type conversions) and runs on a connection of the driver itself. Each statement is its own
    transaction (autocommit); whatever needs several statements at once uses the engine.
    Statements are built once (module constants, with ``bindparam``s; no expanding ``IN``):
    the driver keeps each one compiled.

    - SQLite: reads run in the event loop's thread on a read-only connection. The database is
      in WAL mode, where readers never wait for a writer, and a read by key of pages in the
      cache takes a few microseconds, less than a hop to a thread and back. A read that finds
      the database busy all the same (recovery after a crash, say) and every write go to one
      aiosqlite connection, in its thread, which waits as the engine's connections do.
    - PostgreSQL: up to ``size`` asyncpg connections of the driver's own.
    - An in-memory SQLite database exists only in the engine's single connection: there the
      statements go through the engine.

    The connections come from the engine (``raw_connection``, then detached from its pool), so
    they have its URL and its per-connection settings; the read-only SQLite one is opened with
    the arguments the dialect gives the driver.
    """

    def __init__(self, engine: AsyncEngine, size: int = 4) -> None:
        self._dialect = engine.dialect
        self._compiled: dict[int, _Compiled] = {}
        self._backend: _Backend
        if isinstance(engine.pool, StaticPool | SingletonThreadPool):
            self._backend = _EngineBackend(engine)
        elif engine.dialect.name == "sqlite":
            self._backend = _SqliteBackend(engine)
        else:
            self._backend = _PostgresBackend(engine, size)
        self.observers: list[Observer] = []

    def _compile(self, statement: Statement) -> _Compiled:
        compiled = self._compiled.get(id(statement))
        if compiled is None:
            compiled = self._compiled[id(statement)] = _Compiled(statement, self._dialect)
        return compiled

    async def fetch(self, statement: Statement,
                    params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The rows of a query, as tuples in the order of its columns."""
        compiled = self._compile(statement)
        started = time.perf_counter() if self.observers else 0.0
        args = compiled.args(params)
        rows = await self._backend.fetch(compiled, args, params)
        self._observe(compiled, started)
        if self._backend.converts:
            return [tuple(row) for row in rows]
        return compiled.rows(rows)

    async def execute(self, statement: Statement, params: Mapping[str, Any]) -> int:
        """Run one writing statement (committed when it returns); the number of rows it changed.

        Raises ``sqlalchemy.exc.IntegrityError`` on a constraint violation, as the engine does.
        """
        compiled = self._compile(statement)
        started = time.perf_counter() if self.observers else 0.0
        args = compiled.args(params)
        try:
            count = await self._backend.execute(compiled, args, params)
        except _IntegrityErrors as exc:
            raise IntegrityError(compiled.sql, args, exc) from exc
        self._observe(compiled, started)
        return count

    async def upsert(self, table: sa.Table, values: dict[str, object],
                     key: tuple[str, ...]) -> None:
        """``upsert`` as a statement of its own."""
        await self.execute(upsert_statement(self._dialect.name, table, tuple(values), key),
                           values)

    def _observe(self, compiled: _Compiled, started: float) -> None:
        for observe in self.observers:
            observe(compiled.operation, time.perf_counter() - started)

    async def close(self) -> None:
        await self._backend.close()


class _Backend:
    converts = False  # whether rows come with the result conversions of the column types

    async def fetch(self, compiled: _Compiled, args: list[Any],
                    params: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
        raise NotImplementedError

    async def execute(self, compiled: _Compiled, args: list[Any],
                      params: Mapping[str, Any]) -> int:
        raise NotImplementedError

    async def close(self) -> None:
        pass


async def _detached(engine: AsyncEngine) -> Any:
    """A new connection of the driver (asyncpg's, aiosqlite's), made by the engine and taken
    out of its pool for good: the engine neither reuses nor closes it."""
    fairy = await engine.raw_connection()
    driver = fairy.driver_connection
    fairy.detach()
    return driver


class _EngineBackend(_Backend):
    converts = True

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def fetch(self, compiled: _Compiled, args: list[Any],
                    params: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
        async with self._engine.connect() as conn:
            return (await conn.execute(compiled.statement, dict(params))).all()

    async def execute(self, compiled: _Compiled, args: list[Any],
                      params: Mapping[str, Any]) -> int:
        async with self._engine.begin() as conn:  # raises IntegrityError itself
            return (await conn.execute(compiled.statement, dict(params))).rowcount


_SQLITE_BUSY = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED


class _SqliteBackend(_Backend):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._reader: sqlite3.Connection | None = None
        self._writer: Any = None  # aiosqlite.Connection
        self._connecting: asyncio.Lock = asyncio.Lock()
        self._closed = False

    def _read_connection(self) -> sqlite3.Connection:
        reader = self._reader
        if reader is None:
            if self._closed:
                raise RuntimeError("storage is closed")
            args, kwargs = self._engine.dialect.create_connect_args(self._engine.url)
            connect: Any = sqlite3.connect
            reader = connect(*args, **{**kwargs, "isolation_level": None})
            # A busy database fails at once (the write connection waits instead); no writes.
            reader.execute("PRAGMA busy_timeout=0")
            reader.execute("PRAGMA query_only=ON")
            self._reader = reader
        return reader

    async def _write_connection(self) -> Any:
        if self._writer is None:
            async with self._connecting:
                if self._closed:
                    raise RuntimeError("storage is closed")
                if self._writer is None:
                    writer = await _detached(self._engine)
                    writer.isolation_level = None  # autocommit: each statement commits itself
                    self._writer = writer
        return self._writer

    async def fetch(self, compiled: _Compiled, args: list[Any],
                    params: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
        try:
            return self._read_connection().execute(compiled.sql, args).fetchall()
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF not in _SQLITE_BUSY:
                raise
        writer = await self._write_connection()
        return list(await writer.execute_fetchall(compiled.sql, args))

    async def execute(self, compiled: _Compiled, args: list[Any],
                      params: Mapping[str, Any]) -> int:
        writer = await self._write_connection()
        cursor = await writer.execute(compiled.sql, args)
        count = int(cursor.rowcount)
        await cursor.close()
        return count

    async def close(self) -> None:
        self._closed = True
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()
        writer, self._writer = self._writer, None
        if writer is not None:
            await writer.close()


class _PostgresBackend(_Backend):
    def __init__(self, engine: AsyncEngine, size: int) -> None:
        self._engine = engine
        self._size = size
        self._idle: list[Any] = []  # asyncpg.Connection
        self._count = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    async def fetch(self, compiled: _Compiled, args: list[Any],
                    params: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
        # A read that failed on a connection the server had cut (unnoticed while idle) is
        # read again on a fresh one, once.
        for attempt in (0, 1):
            conn = await self._acquire()
            try:
                rows: Sequence[Sequence[Any]] = await conn.fetch(compiled.sql, *args)
            except BaseException as exc:
                self._release(conn, exc)
                if attempt or not _is_lost_connection(exc):
                    raise
                await self._start_afresh()
                continue
            self._release(conn, None)
            return rows
        raise AssertionError("unreachable")

    async def execute(self, compiled: _Compiled, args: list[Any],
                      params: Mapping[str, Any]) -> int:
        for attempt in (0, 1):
            conn = await self._acquire()
            try:
                status = await conn.execute(compiled.sql, *args)  # "INSERT 0 1", "UPDATE 3"
            except BaseException as exc:
                self._release(conn, exc)
                # A write is tried again only if it never left: the connection was found
                # closed before sending (else it may have been applied).
                if attempt or not _is_closed_before_sending(exc):
                    raise
                await self._start_afresh()
                continue
            self._release(conn, None)
            last = str(status).rpartition(" ")[2]
            return int(last) if last.isdigit() else 0
        raise AssertionError("unreachable")

    async def _acquire(self) -> Any:
        while True:
            if self._closed:
                raise RuntimeError("storage is closed")
            while self._idle:
                conn = self._idle.pop()
                if not conn.is_closed():
                    return conn
                self._count -= 1  # cut while idle (a server restart, pg_terminate_backend)
            if self._count < self._size:
                self._count += 1
                try:
                    return await _detached(self._engine)
                except BaseException:
                    self._count -= 1
                    self._wake()
                    raise
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif waiter.done() and not waiter.cancelled():
                    self._wake()  # woken, then cancelled: the turn goes to the next one
                raise

    def _release(self, conn: Any, exc: BaseException | None) -> None:
        # A server-side error leaves the connection usable; anything else (a lost connection,
        # a cancellation in the middle of the protocol) may not.
        if self._closed or conn.is_closed() or (exc is not None and not _is_server_error(exc)):
            self._count -= 1
            conn.terminate()
        else:
            self._idle.append(conn)
        self._wake()

    async def _start_afresh(self) -> None:
        """Connections are cut together (a server restart, pg_terminate_backend): ours that
        wait, and those the engine keeps in its pool for us, are all dropped."""
        idle, self._idle = self._idle, []
        for conn in idle:
            self._count -= 1
            conn.terminate()
        self._wake()
        await self._engine.dispose(close=False)

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            self._count -= 1
            await conn.close()


def _integrity_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [sqlite3.IntegrityError]
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - a SQLite-only installation
        return tuple(errors)
    errors.append(asyncpg.IntegrityConstraintViolationError)
    return tuple(errors)


_IntegrityErrors = _integrity_errors()


def _is_server_error(exc: BaseException) -> bool:
    try:
        import asyncpg
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, asyncpg.PostgresError)


def _is_lost_connection(exc: BaseException) -> bool:
    """The connection is gone (cut by the server, the network): not the statement's fault."""
    import asyncpg

    return isinstance(exc, asyncpg.InterfaceError | asyncpg.InternalClientError
                      | asyncpg.ConnectionDoesNotExistError
                      | asyncpg.AdminShutdownError | ConnectionError)


def _is_closed_before_sending(exc: BaseException) -> bool:
    import asyncpg

    return isinstance(exc, asyncpg.InterfaceError) and "connection is closed" in str(exc)
