"""Blocklists (XEP-0191): the JIDs each user blocks, as prepared JID strings."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from storage.base import Repository, lock_user
from storage.models import blocklist
from storage.types import UnknownUser


class BlocklistRepository(Repository):
    async def get(self, username: str) -> list[str]:
        """The user's blocked JIDs, sorted (empty for an unknown user)."""
        query = (
            sa.select(blocklist.c.jid)
            .where(blocklist.c.username == username)
            .order_by(blocklist.c.jid)
        )
        async with self._engine.connect() as conn:
            return [row.jid for row in await conn.execute(query)]

    async def block(self, username: str, jids: Iterable[str]) -> list[str]:
        """Add JIDs; returns those that were not blocked before. UnknownUser if no such user."""
        wanted = list(dict.fromkeys(jids))
        if not wanted:
            return []
        try:
            async with self._engine.begin() as conn:
                if not await lock_user(conn, username):
                    raise UnknownUser(username)
                # Read, then insert what is missing: the user lock (PostgreSQL) or the single
                # write lock (SQLite) keeps a concurrent block of the same JID out meanwhile.
                held = {
                    row.jid
                    for row in await conn.execute(
                        sa.select(blocklist.c.jid).where(
                            blocklist.c.username == username, blocklist.c.jid.in_(wanted)
                        )
                    )
                }
                added = [jid for jid in wanted if jid not in held]
                if added:
                    await conn.execute(
                        blocklist.insert(), [{"username": username, "jid": j} for j in added]
                    )
        except IntegrityError:  # the user was deleted meanwhile
            raise UnknownUser(username) from None
        return added

    async def unblock(self, username: str, jids: Iterable[str] | None = None) -> list[str]:
        """Remove JIDs (all of them if ``jids`` is None); returns those that were blocked."""
        where = blocklist.c.username == username
        if jids is not None:
            wanted = list(dict.fromkeys(jids))
            if not wanted:
                return []
            where = sa.and_(where, blocklist.c.jid.in_(wanted))
        async with self._engine.begin() as conn:
            result = await conn.execute(blocklist.delete().where(where).returning(blocklist.c.jid))
            return sorted(row.jid for row in result)
