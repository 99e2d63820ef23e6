"""Rosters (RFC 6121 §2), roster versioning (§2.6), pending subscription requests (§3.1.3)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.base import Repository, lock_user
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


def _item(row: RowMapping) -> RosterItem:
    return RosterItem(
        jid=row["jid"],
        name=row["name"],
        subscription=row["subscription"],
        ask=bool(row["ask"]),
        approved=bool(row["approved"]),
        groups=list(json.loads(row["groups"])),
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
    async def get(self, username: str) -> tuple[list[RosterItem], int]:
        """All items ordered by JID, and the roster version."""
        async with self._engine.connect() as conn:
            # Version first: should a change land between the two reads, the client then holds
            # newer items under an older version, which only costs it a refetch later.
            version = await self._version(conn, username)
            rows = (
                await conn.execute(
                    sa.select(*_ITEM_COLUMNS).where(roster_items.c.username == username)
                )
            ).all()
        items = sorted((_item(row._mapping) for row in rows), key=lambda item: item.jid)
        return items, version

    async def get_item(self, username: str, jid: str) -> RosterItem | None:
        query = sa.select(*_ITEM_COLUMNS).where(
            roster_items.c.username == username, roster_items.c.jid == jid
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _item(row._mapping)

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
        async with self._engine.connect() as conn:
            return await self._version(conn, username)

    @staticmethod
    async def _version(conn: AsyncConnection, username: str) -> int:
        query = sa.select(roster_versions.c.version).where(roster_versions.c.username == username)
        version = (await conn.execute(query)).scalar_one_or_none()
        return 0 if version is None else int(version)

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
        query = (
            sa.select(roster_pending.c.jid, roster_pending.c.xml)
            .where(roster_pending.c.username == username)
            .order_by(roster_pending.c.id)
        )
        async with self._engine.connect() as conn:
            return [(row.jid, row.xml) for row in await conn.execute(query)]
