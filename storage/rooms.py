"""Multi-user chat rooms (XEP-0045): persistent rooms, affiliations, and each room's archive.

Only persistent rooms have a row in ``muc_rooms`` (their affiliations go with it); a
temporary room lives in memory. The archive (XEP-0313 on the room JID) is keyed by the room
JID without a foreign key, so temporary rooms archive too until they are destroyed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.base import Repository
from storage.models import muc_affiliations, muc_archive, muc_rooms


@dataclass
class StoredAffiliation:
    jid: str  # bare JID (or a domain) of the user
    affiliation: str  # owner | admin | member | outcast ("none" deletes)
    nick: str | None = None  # reserved nick
    reason: str | None = None


@dataclass
class StoredRoom:
    jid: str  # room@service
    config: dict[str, Any]
    secret: str
    subject: str | None = None
    subject_by: str | None = None
    affiliations: list[StoredAffiliation] = field(default_factory=list)


@dataclass
class ArchivedMessage:
    stanza_id: str
    nick: str
    sender: str | None  # real bare JID
    stored_at: datetime
    xml: str  # the message as broadcast, without 'to'
    retracted: bool = False


@dataclass
class ArchiveQuery:
    """Filters and one page of an archive query (XEP-0313 §4.1, XEP-0059)."""

    start: datetime | None = None
    end: datetime | None = None
    nick: str | None = None
    sender: str | None = None
    ids: Sequence[str] | None = None
    after: str | None = None  # a stanza id
    before: str | None = None  # a stanza id; "" means the last page
    limit: int = 50


@dataclass
class ArchivePage:
    messages: list[ArchivedMessage]
    complete: bool  # no more results in the direction of paging
    count: int  # results of the filters, all pages


class UnknownArchiveId(LookupError):
    """An 'after' or 'before' id that is not in the room's archive."""


def _affiliation_rows(room: str, items: Iterable[StoredAffiliation]) -> list[dict[str, Any]]:
    return [{"room": room, "jid": a.jid, "affiliation": a.affiliation, "nick": a.nick,
             "reason": a.reason} for a in items if a.affiliation != "none"]


def _message(row: Any) -> ArchivedMessage:
    return ArchivedMessage(row.stanza_id, row.nick, row.sender, row.stored_at, row.xml,
                           bool(row.retracted))


_ARCHIVE_COLUMNS = (muc_archive.c.id, muc_archive.c.stanza_id, muc_archive.c.nick,
                    muc_archive.c.sender, muc_archive.c.stored_at, muc_archive.c.xml,
                    muc_archive.c.retracted)


class RoomRepository(Repository):
    # -- rooms --------------------------------------------------------------------------------

    async def get(self, jid: str) -> StoredRoom | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(muc_rooms).where(muc_rooms.c.jid == jid))).first()
            if row is None:
                return None
            affs = await conn.execute(
                sa.select(muc_affiliations).where(muc_affiliations.c.room == jid)
                .order_by(muc_affiliations.c.jid))
            return StoredRoom(
                jid=row.jid, config=json.loads(row.config), secret=row.secret,
                subject=row.subject, subject_by=row.subject_by,
                affiliations=[StoredAffiliation(a.jid, a.affiliation, a.nick, a.reason)
                              for a in affs],
            )

    async def save(self, room: StoredRoom) -> None:
        """Store a room with all its affiliations, replacing what was stored under its JID."""
        async with self._engine.begin() as conn:
            await conn.execute(muc_rooms.delete().where(muc_rooms.c.jid == room.jid))
            await conn.execute(muc_affiliations.delete()
                               .where(muc_affiliations.c.room == room.jid))
            await conn.execute(muc_rooms.insert().values(
                jid=room.jid, config=json.dumps(room.config, sort_keys=True),
                subject=room.subject, subject_by=room.subject_by, secret=room.secret,
                created_at=datetime.now(UTC)))
            rows = _affiliation_rows(room.jid, room.affiliations)
            if rows:
                await conn.execute(muc_affiliations.insert(), rows)

    async def set_config(self, jid: str, config: dict[str, Any]) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(muc_rooms.update().where(muc_rooms.c.jid == jid)
                               .values(config=json.dumps(config, sort_keys=True)))

    async def set_subject(self, jid: str, subject: str | None, by: str | None) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(muc_rooms.update().where(muc_rooms.c.jid == jid)
                               .values(subject=subject, subject_by=by))

    async def set_affiliations(self, jid: str, items: Sequence[StoredAffiliation]) -> None:
        """Change several affiliations at once (all or none); "none" removes the row."""
        if not items:
            return
        async with self._engine.begin() as conn:
            await conn.execute(muc_affiliations.delete().where(
                muc_affiliations.c.room == jid,
                muc_affiliations.c.jid.in_([a.jid for a in items])))
            rows = _affiliation_rows(jid, items)
            if rows:
                await conn.execute(muc_affiliations.insert(), rows)

    async def delete(self, jid: str, archive: bool = True) -> None:
        """Forget a room: its row and affiliations, and its archive unless told to keep it."""
        async with self._engine.begin() as conn:
            await conn.execute(muc_affiliations.delete().where(muc_affiliations.c.room == jid))
            await conn.execute(muc_rooms.delete().where(muc_rooms.c.jid == jid))
            if archive:
                await conn.execute(muc_archive.delete().where(muc_archive.c.room == jid))

    async def rooms(self, service: str | None = None) -> list[StoredRoom]:
        """The persistent rooms (of one service), by JID, without their affiliations."""
        query = sa.select(muc_rooms).order_by(muc_rooms.c.jid)
        if service is not None:
            query = query.where(muc_rooms.c.jid.like("%@" + _escape_like(service), escape="\\"))
        async with self._engine.connect() as conn:
            return [StoredRoom(jid=r.jid, config=json.loads(r.config), secret=r.secret,
                               subject=r.subject, subject_by=r.subject_by)
                    for r in await conn.execute(query)]

    async def affiliations_of(self, jid: str) -> list[tuple[str, str]]:
        """(room, affiliation) of every stored affiliation of a user's bare JID."""
        query = (sa.select(muc_affiliations.c.room, muc_affiliations.c.affiliation)
                 .where(muc_affiliations.c.jid == jid).order_by(muc_affiliations.c.room))
        async with self._engine.connect() as conn:
            return [(r.room, r.affiliation) for r in await conn.execute(query)]

    async def forget_jid(self, jid: str) -> None:
        """Drop every affiliation of a bare JID (its account was deleted)."""
        async with self._engine.begin() as conn:
            await conn.execute(muc_affiliations.delete().where(muc_affiliations.c.jid == jid))

    # -- the archive --------------------------------------------------------------------------

    async def append(self, rows: Sequence[tuple[str, ArchivedMessage]]) -> None:
        """Archive messages of one or several rooms, in this order."""
        if not rows:
            return
        values = [{"room": room, "stanza_id": m.stanza_id, "nick": m.nick, "sender": m.sender,
                   "stored_at": m.stored_at, "xml": m.xml, "retracted": m.retracted}
                  for room, m in rows]
        async with self._engine.begin() as conn:
            await conn.execute(muc_archive.insert(), values)

    async def find(self, room: str, stanza_id: str) -> ArchivedMessage | None:
        query = sa.select(*_ARCHIVE_COLUMNS).where(
            muc_archive.c.room == room, muc_archive.c.stanza_id == stanza_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _message(row)

    async def retract(self, room: str, stanza_id: str, tombstone: str) -> bool:
        """Replace an archived message by its tombstone (XEP-0425); False if not archived."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                muc_archive.update()
                .where(muc_archive.c.room == room, muc_archive.c.stanza_id == stanza_id)
                .values(xml=tombstone, retracted=True))
        return result.rowcount > 0

    async def recent(self, room: str, limit: int) -> list[ArchivedMessage]:
        """The newest ``limit`` messages, oldest first (history of a reloaded room)."""
        query = (sa.select(*_ARCHIVE_COLUMNS).where(muc_archive.c.room == room)
                 .order_by(muc_archive.c.id.desc()).limit(limit))
        async with self._engine.connect() as conn:
            rows = list(await conn.execute(query))
        return [_message(r) for r in reversed(rows)]

    async def query(self, room: str, q: ArchiveQuery) -> ArchivePage:
        """One page of the room's archive, oldest first; raises UnknownArchiveId."""
        c = muc_archive.c
        where: list[sa.ColumnElement[bool]] = [c.room == room]
        if q.start is not None:
            where.append(c.stored_at >= q.start)
        if q.end is not None:
            where.append(c.stored_at <= q.end)
        if q.nick is not None:
            where.append(c.nick == q.nick)
        if q.sender is not None:
            where.append(c.sender == q.sender)
        if q.ids is not None:
            where.append(c.stanza_id.in_(list(q.ids)))
        async with self._engine.connect() as conn:
            count = (await conn.execute(
                sa.select(sa.func.count()).select_from(muc_archive).where(*where))).scalar_one()
            page = list(where)
            if q.after is not None:
                page.append(c.id > await _row_id(conn, room, q.after))
            backward = q.before is not None
            if q.before:
                page.append(c.id < await _row_id(conn, room, q.before))
            order = c.id.desc() if backward else c.id.asc()
            rows = list(await conn.execute(
                sa.select(*_ARCHIVE_COLUMNS).where(*page).order_by(order).limit(q.limit + 1)))
        complete = len(rows) <= q.limit
        rows = rows[: q.limit]
        if backward:
            rows.reverse()
        return ArchivePage([_message(r) for r in rows], complete, int(count))


async def _row_id(conn: AsyncConnection, room: str, stanza_id: str) -> int:
    row = (await conn.execute(sa.select(muc_archive.c.id).where(
        muc_archive.c.room == room, muc_archive.c.stanza_id == stanza_id))).first()
    if row is None:
        raise UnknownArchiveId(stanza_id)
    return int(row.id)


def _escape_like(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
