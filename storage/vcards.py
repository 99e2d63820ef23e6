"""Per-user XML documents: the vCard (XEP-0054) and private XML storage (XEP-0049).

Both keep one XML string per key and user: the vCard has one key, private storage one per
qualified name of the stored element (``{namespace}name``).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from storage.base import Repository, lock_user
from storage.models import private_xml, vcards


class VCardRepository(Repository):
    async def get(self, username: str) -> str | None:
        query = sa.select(vcards.c.xml).where(vcards.c.username == username)
        async with self._engine.connect() as conn:
            text = (await conn.execute(query)).scalar_one_or_none()
        return None if text is None else str(text)

    async def set(self, username: str, xml: str) -> bool:
        """Store (replace) the vCard; False if there is no such user."""
        now = datetime.now(UTC)
        try:
            async with self._engine.begin() as conn:
                if not await lock_user(conn, username):
                    return False
                updated = await conn.execute(
                    vcards.update().where(vcards.c.username == username)
                    .values(xml=xml, updated_at=now)
                )
                if updated.rowcount == 0:
                    await conn.execute(
                        vcards.insert().values(username=username, xml=xml, updated_at=now)
                    )
        except IntegrityError:  # the user was deleted meanwhile
            return False
        return True


class PrivateXmlRepository(Repository):
    async def get(self, username: str, key: str) -> str | None:
        query = sa.select(private_xml.c.xml).where(
            private_xml.c.username == username, private_xml.c.key == key
        )
        async with self._engine.connect() as conn:
            text = (await conn.execute(query)).scalar_one_or_none()
        return None if text is None else str(text)

    async def set(self, username: str, documents: dict[str, str], max_bytes: int) -> bool:
        """Store (replace) documents by key, all or none; False if the user's documents would
        then hold more than ``max_bytes`` characters, or there is no such user."""
        where = private_xml.c.username == username
        try:
            async with self._engine.begin() as conn:
                if not await lock_user(conn, username):
                    return False
                others = await conn.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(sa.func.length(private_xml.c.xml)), 0))
                    .where(where, private_xml.c.key.not_in(list(documents)))
                )
                if int(others.scalar_one()) + sum(map(len, documents.values())) > max_bytes:
                    return False
                await conn.execute(private_xml.delete().where(
                    where, private_xml.c.key.in_(list(documents))))
                await conn.execute(private_xml.insert(), [
                    {"username": username, "key": key, "xml": xml}
                    for key, xml in documents.items()
                ])
        except IntegrityError:  # the user was deleted meanwhile
            return False
        return True
