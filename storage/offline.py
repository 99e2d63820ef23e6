"""Offline messages (XEP-0160): stored for a user who is away, delivered and deleted at login."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.base import Repository, lock_user
from storage.driver import Driver
from storage.models import UTCDateTime, offline_messages

# Every login asks for the messages: on the driver (``storage.driver.Driver``).
_FETCH = (
    sa.select(offline_messages.c.id, offline_messages.c.xml)
    .where(offline_messages.c.username == sa.bindparam("username"))
    .order_by(offline_messages.c.id)
)
_COUNT = (
    sa.select(sa.func.count())
    .select_from(offline_messages)
    .where(offline_messages.c.username == sa.bindparam("username"))
)


class OfflineRepository(Repository):
    def __init__(self, engine: AsyncEngine, driver: Driver) -> None:
        super().__init__(engine)
        self._driver = driver

    async def store(self, username: str, xml: str, limit: int) -> bool:
        """Append a message; False, storing nothing, if the user holds `limit` or is unknown."""
        held = (
            sa.select(sa.func.count())
            .select_from(offline_messages)
            .where(offline_messages.c.username == username)
            .scalar_subquery()
        )
        # One INSERT ... SELECT ... WHERE count < limit: atomic on SQLite by itself, and the
        # user lock serialises concurrent stores for one user on PostgreSQL.
        row = sa.select(
            sa.literal(username, sa.String),
            sa.literal(xml, sa.Text),
            sa.literal(datetime.now(UTC), UTCDateTime),
        ).where(held < limit)
        insert = offline_messages.insert().from_select(["username", "xml", "stored_at"], row)
        try:
            async with self._engine.begin() as conn:
                if not await lock_user(conn, username):
                    return False
                result = await conn.execute(insert)
        except IntegrityError:  # the user was deleted meanwhile
            return False
        return result.rowcount > 0

    async def fetch(self, username: str) -> list[tuple[int, str]]:
        """(id, xml) of the user's messages in arrival order."""
        rows = await self._driver.fetch(_FETCH, {"username": username})
        return [(int(row_id), xml) for row_id, xml in rows]

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

    async def count(self, username: str) -> int:
        rows = await self._driver.fetch(_COUNT, {"username": username})
        return int(rows[0][0])
