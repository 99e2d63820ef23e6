"""Rosters (RFC 6121 §2), roster versioning (§2.6), pending subscription requests (§3.1.3)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.base import Repository, lock_user
from storage.driver import Driver
from storage.models import roster_items, roster_pending, roster_versions
from storage.types import SUBSCRIPTIONS, RosterItem, UnknownUser

_ITEM_COLUMNS = (
    roster_items.c.jid,
    roster_items.c.name,
    roster_items.c.subscription,
    roster_items.c.ask,
    roster_items.c.approved,
    roster_items.c.groups,
)


_USER: sa.BindParameter[str] = sa.bindparam("username")
# The reads run on the driver (``storage.driver.Driver``): they are part of every login.
# The version and the items in one statement; no version row means no such user.
_ROSTER = (
    sa.select(roster_versions.c.version, *_ITEM_COLUMNS)
    .select_from(
        roster_versions.outerjoin(
            roster_items, roster_items.c.username == roster_versions.c.username
        )
    )
    .where(roster_versions.c.username == _USER)
)
_ITEM = sa.select(*_ITEM_COLUMNS).where(
    roster_items.c.username == _USER, roster_items.c.jid == sa.bindparam("jid")
)
_VERSION = sa.select(roster_versions.c.version).where(roster_versions.c.username == _USER)
_PENDING = (
    sa.select(roster_pending.c.jid, roster_pending.c.xml)
    .where(roster_pending.c.username == _USER)
    .order_by(roster_pending.c.id)
)


def _item(row: tuple[object, ...]) -> RosterItem:
    jid, name, subscription, ask, approved, groups = row
    assert isinstance(jid, str) and isinstance(subscription, str) and isinstance(groups, str)
    return RosterItem(
        jid=jid,
        name=name if isinstance(name, str) else None,
        subscription=subscription,
        ask=bool(ask),
        approved=bool(approved),
        groups=list(json.loads(groups)),
    )


async def _bump(conn: AsyncConnection, username: str) -> int:
    """Increment the user's roster version; as the transaction's first write it also locks it."""
    result = await conn.execute(
        roster_versions.update()
        .where(roster_versions.c.username == username)
        .values(version=roster_versions.c.version + 1)
        .returning(roster_versions.c.version)
    )
    version = result.scalar_one_or_none()
    if version is None:
        raise UnknownUser(username)
    return int(version)


class RosterRepository(Repository):
    def __init__(self, engine: AsyncEngine, driver: Driver) -> None:
        super().__init__(engine)
        self._driver = driver

    async def get(self, username: str) -> tuple[list[RosterItem], int]:
        """All items ordered by JID, and the roster version (one statement: they agree)."""
        rows = await self._driver.fetch(_ROSTER, {"username": username})
        if not rows:
            return [], 0
        version = int(rows[0][0])
        # An empty roster is one row with the version and NULL item columns.
        items = sorted((_item(row[1:]) for row in rows if row[1] is not None),
                       key=lambda item: item.jid)
        return items, version

    async def get_item(self, username: str, jid: str) -> RosterItem | None:
        rows = await self._driver.fetch(_ITEM, {"username": username, "jid": jid})
        return _item(rows[0]) if rows else None

    async def put(self, username: str, item: RosterItem) -> int:
        """Insert or replace the item; returns the new roster version. UnknownUser if no user."""
        if item.subscription not in SUBSCRIPTIONS:
            raise ValueError(f"bad subscription state {item.subscription!r}")
        values = {
            "name": item.name,
            "subscription": item.subscription,
            "ask": item.ask,
            "approved": item.approved,
            "groups": json.dumps(list(item.groups)),
        }
        async with self._engine.begin() as conn:
            await lock_user(conn, username)  # users row before children, as delete() does
            version = await _bump(conn, username)
            updated = await conn.execute(
                roster_items.update()
                .where(roster_items.c.username == username, roster_items.c.jid == item.jid)
                .values(**values)
            )
            if updated.rowcount == 0:
                await conn.execute(
                    roster_items.insert().values(username=username, jid=item.jid, **values)
                )
        return version

    async def remove(self, username: str, jid: str) -> int | None:
        """Delete the item; the new roster version, or None (version unchanged) if absent."""
        async with self._engine.begin() as conn:
            await lock_user(conn, username)
            deleted = await conn.execute(
                roster_items.delete().where(
                    roster_items.c.username == username, roster_items.c.jid == jid
                )
            )
            if deleted.rowcount == 0:
                return None
            return await _bump(conn, username)

    async def version(self, username: str) -> int:
        rows = await self._driver.fetch(_VERSION, {"username": username})
        return int(rows[0][0]) if rows else 0

    async def add_pending(self, username: str, jid: str, xml: str) -> None:
        """Keep an inbound subscription request until answered; a repeat replaces the earlier one.

        UnknownUser if there is no such user.
        """
        try:
            async with self._engine.begin() as conn:
                if not await lock_user(conn, username):
                    raise UnknownUser(username)
                await conn.execute(
                    roster_pending.delete().where(
                        roster_pending.c.username == username, roster_pending.c.jid == jid
                    )
                )
                await conn.execute(
                    roster_pending.insert().values(
                        username=username, jid=jid, xml=xml, received_at=datetime.now(UTC)
                    )
                )
        except IntegrityError as exc:  # the user was deleted meanwhile
            raise UnknownUser(username) from exc

    async def remove_pending(self, username: str, jid: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                roster_pending.delete().where(
                    roster_pending.c.username == username, roster_pending.c.jid == jid
                )
            )
        return result.rowcount > 0

    async def list_pending(self, username: str) -> list[tuple[str, str]]:
        """(jid, xml) of the waiting requests, oldest first."""
        return [(jid, xml) for jid, xml in
                await self._driver.fetch(_PENDING, {"username": username})]
