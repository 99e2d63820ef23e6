"""Message archives (XEP-0313) and archiving preferences (XEP-0441), one archive per user.

Order and paging. A row's position is ``(ts, seq)``: the time it was archived, then ``seq``, the
autoincrement key, which breaks ties between messages of the same instant in arrival order (the
archive writer inserts in the order messages were accepted; XEP-0313 §3.1 warns that timestamps
alone do not order). Every bound of a query, whether a time (start/end) or an archive id
(after-id/before-id, RSM after/before), becomes a bound on that position: an id is looked up
through the unique (username, id) index, then the page is one range scan of the index on
(username, ts, seq), or (username, with_jid, ts, seq) with a ``with`` filter, reading the page
plus one row (to know whether the result is complete). So a page costs O(log n + page) whatever
the archive's size and wherever the page is; no count of the whole result is taken.

Why not order by the ids: they are UUIDv7 (time, then random bits), so two messages of the same
millisecond would sort at random. Why not ``seq`` alone: the time filters would then need a
second lookup to turn a time into a position; with ``ts`` leading the index they are the range.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable

from storage.base import Repository, lock_user
from storage.models import UTCDateTime, archive, archive_prefs

POLICIES = ("always", "never", "roster")  # XEP-0441 §2.1.1
_FIRST_SEQ = -1  # below every seq: a start time includes all rows of that instant
_LAST_SEQ = 2**62  # above every seq: so does an end time
_EXPIRE_BATCH = 5000


@dataclass(frozen=True)
class ArchiveEntry:
    """One archived message, to store or as read back."""

    id: str  # the archive id: the XEP-0359 stanza-id, unique in the owner's archive
    ts: datetime  # aware UTC: when the server received (incoming) or sent (outgoing) it
    with_jid: str  # bare JID of the other party
    direction: str  # "in" or "out"
    xml: str  # the message stanza as serialised
    with_resource: str | None = None


@dataclass
class ArchivePage:
    entries: list[ArchiveEntry]  # in chronological order
    complete: bool  # no more rows in the direction of the query


@dataclass
class ArchivePrefs:
    """XEP-0441 preferences: the default policy and JIDs always / never archived."""

    policy: str = "always"
    always: list[str] = field(default_factory=list)
    never: list[str] = field(default_factory=list)


class UnknownArchiveId(LookupError):
    """An id named by a query is not in the archive (XEP-0313: item-not-found)."""


_ENTRY_COLUMNS = (
    archive.c.id,
    archive.c.ts,
    archive.c.with_jid,
    archive.c.direction,
    archive.c.xml,
    archive.c.with_resource,
)
_position = sa.tuple_(archive.c.ts, archive.c.seq)
Position = tuple[datetime, int]


def _entry(row: Any) -> ArchiveEntry:
    return ArchiveEntry(row.id, row.ts, row.with_jid, row.direction, row.xml, row.with_resource)


class ArchiveRepository(Repository):
    # -- writing ------------------------------------------------------------------------------

    async def append(self, username_entries: Sequence[tuple[str, ArchiveEntry]]) -> int:
        """Store (owner, entry) pairs in this order, in one transaction; returns how many.

        Should one row be refused (its owner deleted meanwhile, an id already stored), the
        others are stored one by one and the refused ones skipped.
        """
        rows = [_row(username, entry) for username, entry in username_entries]
        if not rows:
            return 0
        try:
            async with self._engine.begin() as conn:
                await conn.execute(archive.insert(), rows)
            return len(rows)
        except IntegrityError:
            pass
        stored = 0
        for row in rows:
            try:
                async with self._engine.begin() as conn:
                    await conn.execute(archive.insert(), [row])
                stored += 1
            except IntegrityError:
                continue
        return stored

    async def expire(self, older_than: datetime, batch: int = _EXPIRE_BATCH) -> int:
        """Delete every message archived before ``older_than``; returns how many.

        The oldest of each archive go first, so no archive gets a hole (XEP-0313 §3.2); small
        transactions keep the database open to the writers meanwhile.
        """
        cutoff = sa.literal(older_than, UTCDateTime)
        victims = sa.select(archive.c.seq).where(archive.c.ts < cutoff).limit(batch)
        total = 0
        while True:
            async with self._engine.begin() as conn:
                result = await conn.execute(
                    archive.delete().where(archive.c.seq.in_(victims.scalar_subquery()))
                )
            total += result.rowcount
            if result.rowcount < batch:
                return total

    # -- reading ------------------------------------------------------------------------------

    async def query(
        self,
        username: str,
        *,
        with_jid: str | None = None,
        with_resource: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        after: Iterable[str] = (),
        before: Iterable[str] = (),
        ids: Sequence[str] | None = None,
        limit: int = 50,
        backwards: bool = False,
    ) -> ArchivePage:
        """One page of the archive, oldest first.

        ``after``/``before``: archive ids the results lie strictly after / before (the form's
        after-id/before-id and RSM's after/before alike). ``backwards``: the page is the newest
        ``limit`` results rather than the oldest (RSM <before/>). ``ids``: only these.
        Raises UnknownArchiveId if a named id is not in the archive.
        """
        async with self._engine.connect() as conn:
            stmt = await self._page_statement(
                conn, username, with_jid, with_resource, start, end, after, before, ids,
                limit, backwards,
            )
            entries = [_entry(row) for row in await conn.execute(stmt)]
        complete = len(entries) <= limit
        del entries[limit:]
        if backwards:
            entries.reverse()
        return ArchivePage(entries, complete)

    async def plan(self, username: str, analyze: bool = False, **query: Any) -> str:
        """The database's plan for ``query(username, **query)`` (EXPLAIN), one line per step.

        ``analyze``: on PostgreSQL, run it and show the rows and buffers each step touched.
        """
        async with self._engine.connect() as conn:
            stmt = await self._page_statement(
                conn, username, query.get("with_jid"), query.get("with_resource"),
                query.get("start"), query.get("end"), query.get("after", ()),
                query.get("before", ()), query.get("ids"), query.get("limit", 50),
                query.get("backwards", False),
            )
            rows = (await conn.execute(_Explain(stmt, analyze))).all()
        return "\n".join(str(row[-1]) for row in rows)

    async def bounds(self, username: str) -> tuple[ArchiveEntry | None, ArchiveEntry | None]:
        """The first and the last message of the archive (XEP-0313 §5 metadata)."""
        base = sa.select(*_ENTRY_COLUMNS).where(archive.c.username == username).limit(1)
        async with self._engine.connect() as conn:
            first = (await conn.execute(base.order_by(archive.c.ts, archive.c.seq))).first()
            if first is None:
                return None, None
            last = (
                await conn.execute(base.order_by(archive.c.ts.desc(), archive.c.seq.desc()))
            ).first()
        return _entry(first), (_entry(last) if last is not None else None)

    async def count(self, username: str) -> int:
        query = (
            sa.select(sa.func.count())
            .select_from(archive)
            .where(archive.c.username == username)
        )
        async with self._engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def analyze(self) -> None:
        """Refresh the planner's statistics of the archive (after a bulk load)."""
        async with self._engine.begin() as conn:
            await conn.exec_driver_sql("ANALYZE archive")

    async def _page_statement(
        self,
        conn: AsyncConnection,
        username: str,
        with_jid: str | None,
        with_resource: str | None,
        start: datetime | None,
        end: datetime | None,
        after: Iterable[str],
        before: Iterable[str],
        ids: Sequence[str] | None,
        limit: int,
        backwards: bool,
    ) -> sa.Select[Any]:
        after, before = list(after), list(before)
        positions = await _positions(conn, username, [*after, *before, *(ids or ())])
        lower: list[Position] = [positions[i] for i in after]
        upper: list[Position] = [positions[i] for i in before]
        if start is not None:
            lower.append((start, _FIRST_SEQ))
        if end is not None:
            upper.append((end, _LAST_SEQ))
        stmt = sa.select(*_ENTRY_COLUMNS).where(archive.c.username == username)
        if with_jid is not None:
            stmt = stmt.where(archive.c.with_jid == with_jid)
            if with_resource is not None:
                stmt = stmt.where(archive.c.with_resource == with_resource)
        if ids is not None:
            stmt = stmt.where(archive.c.id.in_(list(ids)))
        # One bound on each side, the tightest: a single range of the index.
        if lower:
            stmt = stmt.where(_position > _bound(max(lower)))
        if upper:
            stmt = stmt.where(_position < _bound(min(upper)))
        if backwards:
            stmt = stmt.order_by(archive.c.ts.desc(), archive.c.seq.desc())
        else:
            stmt = stmt.order_by(archive.c.ts, archive.c.seq)
        return stmt.limit(limit + 1)

    # -- preferences (XEP-0441) -----------------------------------------------------------------

    async def get_prefs(self, username: str) -> ArchivePrefs | None:
        """The user's preferences, or None if they never set any."""
        return (await self.get_prefs_of([username])).get(username)

    async def get_prefs_of(self, usernames: Iterable[str]) -> dict[str, ArchivePrefs]:
        """The preferences of those of ``usernames`` who set some, in one query."""
        names = sorted(set(usernames))
        if not names:
            return {}
        query = sa.select(archive_prefs).where(archive_prefs.c.username.in_(names))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {
            row.username: ArchivePrefs(row.policy, json.loads(row.always), json.loads(row.never))
            for row in rows
        }

    async def set_prefs(self, username: str, prefs: ArchivePrefs) -> bool:
        """Replace the user's preferences; False if there is no such user."""
        if prefs.policy not in POLICIES:
            raise ValueError(f"bad archiving policy {prefs.policy!r}")
        values = {
            "username": username,
            "policy": prefs.policy,
            "always": json.dumps(list(prefs.always)),
            "never": json.dumps(list(prefs.never)),
        }
        try:
            async with self._engine.begin() as conn:
                if not await lock_user(conn, username):
                    return False
                await conn.execute(
                    archive_prefs.delete().where(archive_prefs.c.username == username)
                )
                await conn.execute(archive_prefs.insert().values(**values))
        except IntegrityError:  # the user was deleted meanwhile
            return False
        return True


def _row(username: str, entry: ArchiveEntry) -> dict[str, Any]:
    if entry.direction not in ("in", "out"):
        raise ValueError(f"bad direction {entry.direction!r}")
    return {
        "username": username,
        "id": entry.id,
        "ts": entry.ts,
        "with_jid": entry.with_jid,
        "with_resource": entry.with_resource,
        "direction": entry.direction,
        "xml": entry.xml,
    }


def _bound(position: Position) -> Any:
    return sa.tuple_(sa.literal(position[0], UTCDateTime), sa.literal(position[1], sa.BigInteger))


async def _positions(conn: AsyncConnection, username: str, ids: list[str]) -> dict[str, Position]:
    """(ts, seq) of each id, through the unique (username, id) index; UnknownArchiveId if any
    is missing."""
    if not ids:
        return {}
    query = sa.select(archive.c.id, archive.c.ts, archive.c.seq).where(
        archive.c.username == username, archive.c.id.in_(sorted(set(ids)))
    )
    found = {row.id: (row.ts, int(row.seq)) for row in await conn.execute(query)}
    for id_ in ids:
        if id_ not in found:
            raise UnknownArchiveId(id_)
    return found


class _Explain(Executable, ClauseElement):
    """``EXPLAIN`` of a statement, its parameters bound as the statement would bind them."""

    inherit_cache = False

    def __init__(self, statement: sa.Select[Any], analyze: bool = False) -> None:
        self.statement = statement
        self.analyze = analyze


@compiles(_Explain)
def _compile_explain(element: _Explain, compiler: SQLCompiler, **kw: Any) -> str:
    if compiler.dialect.name == "sqlite":
        prefix = "EXPLAIN QUERY PLAN "
    else:
        prefix = "EXPLAIN (ANALYZE, BUFFERS) " if element.analyze else "EXPLAIN "
    return prefix + compiler.process(element.statement, **kw)
