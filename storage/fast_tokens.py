"""FAST login tokens (XEP-0484): per account and client, a "new" and a "current" slot.

XEP-0484 §7.1: a token handed out goes to the "new" slot (replacing one never used); when the
client first logs in with it, it moves to "current" and the older current token goes. The
token itself is never stored: ``secret`` is its hash sealed by the server's key, bound to the
row's username, client and slot (``xmpp_server/stream/fast_key.py``); to this module it is
opaque bytes. ``accept`` checks and advances the replay counter in the same statement, so two
logins racing with one count cannot both pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from storage.base import Repository, upsert
from storage.models import fast_tokens

NEW = "new"
CURRENT = "current"
_KEY = ("username", "client", "slot")


@dataclass(frozen=True)
class FastToken:
    username: str
    client: str  # an opaque name of the client (a hash of its SASL2 user-agent id)
    slot: str  # NEW or CURRENT
    mechanism: str  # the FAST mechanism the token is bound to (XEP-0484 §4.4)
    secret: bytes  # the token's hash, sealed to this row (opaque here)
    issued_at: datetime
    expires_at: datetime
    last_count: int | None = None  # the highest replay counter accepted so far


def _same(token: FastToken) -> sa.ColumnElement[bool]:
    """The row of ``token``, if it still holds that very token."""
    return sa.and_(fast_tokens.c.username == token.username,
                   fast_tokens.c.client == token.client,
                   fast_tokens.c.slot == token.slot,
                   fast_tokens.c.secret == token.secret)


class FastTokenRepository(Repository):
    async def issue(self, token: FastToken) -> bool:
        """Store a token handed out now in the "new" slot, and drop the account's expired
        tokens; False (nothing stored) if there is no such user."""
        row = {
            "username": token.username, "client": token.client, "slot": NEW,
            "mechanism": token.mechanism, "secret": token.secret,
            "issued_at": token.issued_at, "expires_at": token.expires_at, "last_count": None,
        }
        expired = fast_tokens.delete().where(fast_tokens.c.username == token.username,
                                             fast_tokens.c.expires_at < token.issued_at)
        try:
            async with self._engine.begin() as conn:
                await conn.execute(expired)
                await upsert(conn, fast_tokens, row, _KEY)
        except IntegrityError:  # no such user (deleted meanwhile)
            return False
        return True

    async def find(self, username: str, client: str) -> list[FastToken]:
        """The client's tokens, the "new" one first."""
        query = sa.select(fast_tokens).where(fast_tokens.c.username == username,
                                             fast_tokens.c.client == client)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        tokens = [FastToken(**row._asdict()) for row in rows]
        return sorted(tokens, key=lambda t: t.slot != NEW)

    async def accept(self, token: FastToken, count: int | None, current_secret: bytes) -> bool:
        """A login with ``token`` succeeded: record ``count`` and make a "new" token current,
        its ``secret`` then being ``current_secret`` (sealed to the "current" slot).

        False if ``count`` does not exceed the last counter accepted with this token (a
        replay), or the token is gone meanwhile.
        """
        async with self._engine.begin() as conn:
            if count is not None:
                fresh = sa.or_(fast_tokens.c.last_count.is_(None),
                               fast_tokens.c.last_count < count)
                query = fast_tokens.update().where(_same(token), fresh).values(last_count=count)
                if (await conn.execute(query)).rowcount != 1:
                    return False
            if token.slot == NEW:
                await conn.execute(fast_tokens.delete().where(
                    fast_tokens.c.username == token.username,
                    fast_tokens.c.client == token.client, fast_tokens.c.slot == CURRENT))
                await conn.execute(fast_tokens.update().where(_same(token))
                                   .values(slot=CURRENT, secret=current_secret))
        return True

    async def delete(self, token: FastToken) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(fast_tokens.delete().where(_same(token)))

    async def revoke(self, username: str, client: str | None = None) -> int:
        """Invalidate the tokens of one client of the account, or of all its clients."""
        query = fast_tokens.delete().where(fast_tokens.c.username == username)
        if client is not None:
            query = query.where(fast_tokens.c.client == client)
        async with self._engine.begin() as conn:
            return (await conn.execute(query)).rowcount
