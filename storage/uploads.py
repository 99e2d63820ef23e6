"""HTTP File Upload (XEP-0363): slots handed out, files stored, and each user's share of them.

A slot is recorded when it is handed out and marked stored when its PUT completes. What a user
holds against the quota is every stored file plus every slot whose PUT URL is still valid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from storage.base import Repository, lock_user
from storage.models import uploads, users


@dataclass(frozen=True)
class Upload:
    id: str  # the random part of the URL; the file's name on disk
    username: str
    filename: str
    size: int
    content_type: str
    created_at: datetime
    expires_at: datetime  # the PUT URL is valid until then
    stored_at: datetime | None = None  # when the PUT completed


def _held(username: str, now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        uploads.c.username == username,
        sa.or_(uploads.c.stored_at.is_not(None), uploads.c.expires_at > now),
    )


class UploadRepository(Repository):
    async def reserve(self, upload: Upload, quota: int) -> bool:
        """Record a slot; False (nothing recorded) if the user would then hold more than
        ``quota`` bytes (0: no limit), or there is no such user.

        The check and the insert are one statement (INSERT ... SELECT ... WHERE), run while
        holding the user's lock: the write lock of the database from the start on SQLite
        (BEGIN IMMEDIATE; a deferred transaction reads before it locks, so two could both
        find room), the user's row on PostgreSQL (storage/base.py).
        """
        values = _row(upload)
        room: sa.ColumnElement[bool] = sa.exists().where(users.c.username == upload.username)
        if quota:
            used = sa.select(sa.func.coalesce(sa.func.sum(uploads.c.size), 0)).where(
                _held(upload.username, upload.created_at)).scalar_subquery()
            room = sa.and_(room, used + upload.size <= quota)
        insert = uploads.insert().from_select(
            list(values), sa.select(*(sa.literal(value, uploads.c[name].type)
                                      for name, value in values.items())).where(room))
        try:
            async with self._engine.begin() as conn:
                if conn.dialect.name == "sqlite":
                    await conn.exec_driver_sql("BEGIN IMMEDIATE")
                elif not await lock_user(conn, upload.username):
                    return False
                return (await conn.execute(insert)).rowcount == 1
        except IntegrityError:  # the user was deleted meanwhile
            return False

    async def get(self, upload_id: str) -> Upload | None:
        query = sa.select(uploads).where(uploads.c.id == upload_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else Upload(**row._asdict())

    async def mark_stored(self, upload_id: str, when: datetime) -> bool:
        """The PUT completed; False if the slot is gone, expired or already used."""
        query = (
            uploads.update()
            .where(uploads.c.id == upload_id, uploads.c.stored_at.is_(None),
                   uploads.c.expires_at >= when)
            .values(stored_at=when)
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(query)).rowcount == 1

    async def used(self, username: str, now: datetime) -> int:
        """Bytes the user holds: stored files and slots still open."""
        query = sa.select(sa.func.coalesce(sa.func.sum(uploads.c.size), 0)).where(
            _held(username, now))
        async with self._engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def expired(self, now: datetime, stored_before: datetime | None,
                      limit: int = 1000) -> list[str]:
        """Ids of slots never used before they expired, and of files stored before
        ``stored_before`` (None: files never expire)."""
        gone = sa.and_(uploads.c.stored_at.is_(None), uploads.c.expires_at < now)
        if stored_before is not None:
            gone = sa.or_(gone, uploads.c.stored_at < stored_before)
        query = sa.select(uploads.c.id).where(gone).limit(limit)
        async with self._engine.connect() as conn:
            return [str(row.id) for row in await conn.execute(query)]

    async def of_user(self, username: str) -> list[str]:
        query = sa.select(uploads.c.id).where(uploads.c.username == username)
        async with self._engine.connect() as conn:
            return [str(row.id) for row in await conn.execute(query)]

    async def delete(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        async with self._engine.begin() as conn:
            await conn.execute(uploads.delete().where(uploads.c.id.in_(list(ids))))


def _row(upload: Upload) -> dict[str, object]:
    return {
        "id": upload.id,
        "username": upload.username,
        "filename": upload.filename,
        "size": upload.size,
        "content_type": upload.content_type,
        "created_at": upload.created_at,
        "expires_at": upload.expires_at,
        "stored_at": upload.stored_at,
    }
