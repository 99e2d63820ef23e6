"""Push notification registrations (XEP-0357): the app servers each account publishes to.

A registration is one (service JID, node) pair of an account, with the publish-options form
its client gave (serialised XML, or None). Enabling the same pair again replaces its options
(XEP-0357 §5: "the last received request").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from storage.base import Repository, lock_user, upsert
from storage.models import push_registrations as table
from storage.types import UnknownUser


@dataclass(frozen=True)
class PushRegistration:
    jid: str  # the XMPP Push Service (prepared JID string)
    node: str
    options: str | None  # the <x xmlns='jabber:x:data'/> publish options, serialised
    enabled_at: datetime


class PushRepository(Repository):
    async def get(self, username: str) -> list[PushRegistration]:
        """The user's registrations, oldest enable first (empty for an unknown user)."""
        query = (
            sa.select(table.c.jid, table.c.node, table.c.options, table.c.enabled_at)
            .where(table.c.username == username)
            .order_by(table.c.enabled_at, table.c.jid, table.c.node)
        )
        async with self._engine.connect() as conn:
            return [PushRegistration(**row._asdict()) for row in await conn.execute(query)]

    async def enable(self, username: str, registration: PushRegistration, limit: int) -> bool:
        """Add or replace a registration; False (nothing written) if it is new and the user
        already has ``limit`` of them. UnknownUser if there is no such user."""
        key = sa.and_(table.c.username == username, table.c.jid == registration.jid,
                      table.c.node == registration.node)
        others = sa.select(sa.func.count()).select_from(table).where(
            table.c.username == username, sa.not_(key))
        try:
            async with self._engine.begin() as conn:
                # the user lock makes count-then-insert atomic per user (storage/base.py)
                if not await lock_user(conn, username):
                    raise UnknownUser(username)
                exists = (await conn.execute(sa.select(table.c.node).where(key))).first()
                if exists is None and int((await conn.execute(others)).scalar_one()) >= limit:
                    return False
                await upsert(conn, table, {
                    "username": username,
                    "jid": registration.jid,
                    "node": registration.node,
                    "options": registration.options,
                    "enabled_at": registration.enabled_at,
                }, ("username", "jid", "node"))
        except IntegrityError:  # the user was deleted meanwhile
            raise UnknownUser(username) from None
        return True

    async def disable(self, username: str, jid: str,
                      node: str | None = None) -> list[PushRegistration]:
        """Remove the registration of ``jid`` and ``node``, or every one of ``jid`` when
        ``node`` is None (XEP-0357 §6); returns what was removed."""
        where = sa.and_(table.c.username == username, table.c.jid == jid)
        if node is not None:
            where = sa.and_(where, table.c.node == node)
        query = table.delete().where(where).returning(
            table.c.jid, table.c.node, table.c.options, table.c.enabled_at)
        async with self._engine.begin() as conn:
            return [PushRegistration(**row._asdict()) for row in await conn.execute(query)]

    async def remove(self, username: str, registration: PushRegistration) -> bool:
        """Remove a registration unless it was enabled again since it was read (its app
        server's error is then about the old one); False if nothing was removed."""
        query = table.delete().where(
            table.c.username == username, table.c.jid == registration.jid,
            table.c.node == registration.node, table.c.enabled_at == registration.enabled_at)
        async with self._engine.begin() as conn:
            return (await conn.execute(query)).rowcount == 1
