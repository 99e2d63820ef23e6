"""Offline messages (XEP-0160): stored for a user who is away, delivered and deleted at login.

The same table is the delivery journal: a message written to a stream-management (XEP-0198)
session stays here, ``held`` by the server process, until its client acknowledges it
(``journal``). Held rows are not offered to logins; ``release_held`` hands the rows of a
process that is gone back to offline delivery.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.base import Repository, lock_user
from storage.driver import Driver
from storage.models import UTCDateTime, offline_messages

# Every login asks for the messages: on the driver (``storage.driver.Driver``).
_FETCH = (
    sa.select(offline_messages.c.id, offline_messages.c.stanza_id, offline_messages.c.xml,
              offline_messages.c.stored_at)
    .where(offline_messages.c.username == sa.bindparam("username"),
           offline_messages.c.held.is_(None))
    .order_by(offline_messages.c.id)
)
_BY_KEY = sa.and_(offline_messages.c.username == sa.bindparam("u"),
                  offline_messages.c.stanza_id == sa.bindparam("sid"))
_SET_HELD = offline_messages.update().where(_BY_KEY).values(held=sa.bindparam("h"))
_DELETE = offline_messages.delete().where(_BY_KEY)


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    stanza_id: str | None
    xml: str
    stored_at: datetime


@dataclass(frozen=True, slots=True)
class JournalWrite:
    """One change to the journal; rows are named by (username, stanza_id).

    insert: a new row (``xml``, ``stored_at``), held by ``held`` or waiting (None);
    hold: an existing row is now held by ``held`` (None: waiting again); delete: gone.
    """

    action: Literal["insert", "hold", "delete"]
    username: str
    stanza_id: str
    held: str | None = None
    xml: str = ""
    stored_at: datetime | None = None
_COUNT = (
    sa.select(sa.func.count())
    .select_from(offline_messages)
    .where(offline_messages.c.username == sa.bindparam("username"),
           offline_messages.c.held.is_(None))
)


class OfflineRepository(Repository):
    def __init__(self, engine: AsyncEngine, driver: Driver) -> None:
        super().__init__(engine)
        self._driver = driver

    async def store(self, username: str, xml: str, limit: int,
                    stanza_id: str | None = None) -> bool:
        """Append a message; False, storing nothing, if `limit` wait or the user is unknown.

        A message whose ``stanza_id`` is stored already counts as stored (True), once.
        """
        held = (
            sa.select(sa.func.count())
            .select_from(offline_messages)
            .where(offline_messages.c.username == username, offline_messages.c.held.is_(None))
            .scalar_subquery()
        )
        # One INSERT ... SELECT ... WHERE count < limit: atomic on SQLite by itself, and the
        # user lock serialises concurrent stores for one user on PostgreSQL.
        row = sa.select(
            sa.literal(username, sa.String),
            sa.literal(xml, sa.Text),
            sa.literal(datetime.now(UTC), UTCDateTime),
            sa.literal(stanza_id, sa.String),
        ).where(held < limit)
        insert = offline_messages.insert().from_select(
            ["username", "xml", "stored_at", "stanza_id"], row)
        try:
            async with self._engine.begin() as conn:
                if not await lock_user(conn, username):
                    return False
                result = await conn.execute(insert)
        except IntegrityError:  # the user was deleted meanwhile, or the id is stored
            return stanza_id is not None and await self.has(username, stanza_id)
        return result.rowcount > 0

    async def has(self, username: str, stanza_id: str) -> bool:
        async with self._engine.connect() as conn:
            row = await conn.execute(sa.select(offline_messages.c.id).where(
                offline_messages.c.username == username,
                offline_messages.c.stanza_id == stanza_id))
            return row.first() is not None

    async def journal(self, writes: Sequence[JournalWrite]) -> None:
        """Apply the changes in one transaction (one by one if a row is refused: its user was
        deleted meanwhile; a stanza-id stored already is kept once)."""
        if not writes:
            return
        try:
            async with self._engine.begin() as conn:
                await self._apply(conn, writes)
            return
        except IntegrityError:
            pass
        for write in writes:
            try:
                async with self._engine.begin() as conn:
                    await self._apply(conn, [write])
            except IntegrityError:
                continue

    @staticmethod
    async def _apply(conn: AsyncConnection, writes: Sequence[JournalWrite]) -> None:
        inserts = [{"username": w.username, "stanza_id": w.stanza_id, "xml": w.xml,
                    "stored_at": w.stored_at or datetime.now(UTC), "held": w.held}
                   for w in writes if w.action == "insert"]
        holds = [{"u": w.username, "sid": w.stanza_id, "h": w.held}
                 for w in writes if w.action == "hold"]
        deletes = [{"u": w.username, "sid": w.stanza_id}
                   for w in writes if w.action == "delete"]
        if inserts:
            await conn.execute(_insert_once(conn.dialect.name), inserts)
        if holds:
            await conn.execute(_SET_HELD, holds)
        if deletes:
            await conn.execute(_DELETE, deletes)

    async def release_held(self, keep: Collection[str] = (), holder: str | None = None) -> int:
        """Rows held by ``holder`` (else by any process not in ``keep``) wait for delivery
        again; returns how many."""
        condition: sa.ColumnElement[bool] = offline_messages.c.held.is_not(None)
        if holder is not None:
            condition = offline_messages.c.held == holder
        elif keep:
            condition = sa.and_(condition, offline_messages.c.held.not_in(list(keep)))
        async with self._engine.begin() as conn:
            result = await conn.execute(offline_messages.update().where(condition)
                                        .values(held=None))
        return int(result.rowcount or 0)

    async def held_users(self, holder: str) -> set[str]:
        """The users with messages ``holder`` holds in its sessions' unacknowledged queues."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(sa.select(offline_messages.c.username).distinct()
                                      .where(offline_messages.c.held == holder))
            return {row[0] for row in rows}

    async def fetch(self, username: str) -> list[StoredMessage]:
        """The user's waiting (not held) messages in arrival order."""
        rows = await self._driver.fetch(_FETCH, {"username": username})
        return [StoredMessage(int(row_id), sid, xml, _aware(stored_at))
                for row_id, sid, xml, stored_at in rows]

    async def delete(self, username: str, ids: list[int]) -> None:
        """Drop delivered messages; ids of other users' messages are ignored."""
        if not ids:
            return
        async with self._engine.begin() as conn:
            await conn.execute(
                offline_messages.delete().where(
                    offline_messages.c.username == username, offline_messages.c.id.in_(ids)
                )
            )

    async def count_held(self, username: str) -> int:
        """How many of the user's messages are held in sessions' unacknowledged queues."""
        async with self._engine.connect() as conn:
            row = await conn.execute(sa.select(sa.func.count()).select_from(offline_messages)
                                     .where(offline_messages.c.username == username,
                                            offline_messages.c.held.is_not(None)))
            return int(row.scalar_one())

    async def count(self, username: str) -> int:
        """How many messages wait for the user (those held in a session's queue are not)."""
        rows = await self._driver.fetch(_COUNT, {"username": username})
        return int(rows[0][0])


def _aware(value: datetime | str) -> datetime:
    """The driver's raw column value as an aware UTC datetime."""
    if isinstance(value, str):  # SQLite on the driver's own connection: no type conversion
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


_INSERTS: dict[str, sa.Insert] = {}


def _insert_once(dialect_name: str) -> sa.Insert:
    """INSERT ... ON CONFLICT (username, stanza_id) DO NOTHING: a message is stored once."""
    stmt = _INSERTS.get(dialect_name)
    if stmt is None:
        from sqlalchemy.dialects import postgresql, sqlite

        dialect = postgresql if dialect_name == "postgresql" else sqlite
        stmt = _INSERTS[dialect_name] = dialect.insert(offline_messages).on_conflict_do_nothing(
            index_elements=["username", "stanza_id"])
    return stmt
