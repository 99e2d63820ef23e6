"""The XEP-0313 archive repository: order, bounds, paging, filters, retention, preferences, and
the query plans that keep a page an index range scan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from storage import Storage
from storage.archive import ArchiveEntry, ArchivePage, ArchivePrefs, UnknownArchiveId
from tests.storage.helpers import BOTH

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def entry(i: int, with_jid: str = "bob@x", second: int | None = None,
          resource: str | None = None) -> ArchiveEntry:
    """Message ``i``; ``second`` puts several in the same instant."""
    ts = T0 + timedelta(seconds=i if second is None else second)
    return ArchiveEntry(f"id-{i:04d}", ts, with_jid, "in" if i % 2 else "out",
                        f"<message xmlns='jabber:client'><body>{i}</body></message>", resource)


def ids(page: ArchivePage) -> list[str]:
    return [e.id for e in page.entries]


def span(a: int, b: int) -> list[str]:
    return [f"id-{i:04d}" for i in range(a, b)]


@pytest.fixture
async def alice(storage: Storage) -> str:
    await storage.users.create("alice", BOTH)
    await storage.users.create("bob", BOTH)
    return "alice"


async def fill(storage: Storage, n: int, **kw: object) -> None:
    assert await storage.archive.append([("alice", entry(i, **kw)) for i in range(n)]) == n  # type: ignore[arg-type]


async def test_round_trip_and_order_of_same_instant(storage: Storage, alice: str) -> None:
    # All in one second: arrival order (seq) decides, not the random part of the ids.
    rows = [entry(i, second=0) for i in (3, 1, 2)]
    await storage.archive.append([("alice", e) for e in rows])
    page = await storage.archive.query("alice")
    assert page.entries == rows and page.complete
    assert page.entries[0].ts == T0 and page.entries[0].ts.tzinfo is not None
    assert (await storage.archive.query("bob")).entries == []  # one archive per user
    assert await storage.archive.count("alice") == 3


async def test_paging_forwards_and_backwards(storage: Storage, alice: str) -> None:
    await fill(storage, 25)
    archive = storage.archive
    p1 = await archive.query("alice", limit=10)
    assert ids(p1) == span(0, 10) and not p1.complete
    p2 = await archive.query("alice", limit=10, after=[p1.entries[-1].id])
    assert ids(p2) == span(10, 20) and not p2.complete
    p3 = await archive.query("alice", limit=10, after=[p2.entries[-1].id])
    assert ids(p3) == span(20, 25) and p3.complete
    # RSM <before/> empty: the last page, then older pages; each in chronological order.
    b1 = await archive.query("alice", limit=10, backwards=True)
    assert ids(b1) == span(15, 25) and not b1.complete
    b2 = await archive.query("alice", limit=10, backwards=True, before=[b1.entries[0].id])
    assert ids(b2) == span(5, 15) and not b2.complete
    b3 = await archive.query("alice", limit=10, backwards=True, before=[b2.entries[0].id])
    assert ids(b3) == span(0, 5) and b3.complete
    exact = await archive.query("alice", limit=25)
    assert len(exact.entries) == 25 and exact.complete
    none = await archive.query("alice", limit=0)
    assert none.entries == [] and not none.complete


async def test_filters(storage: Storage, alice: str) -> None:
    archive = storage.archive
    await archive.append([("alice", entry(i, "carol@x" if i % 3 == 0 else "bob@x",
                                         resource="r1" if i == 6 else None)) for i in range(12)])
    with_carol = await archive.query("alice", with_jid="carol@x")
    assert ids(with_carol) == ["id-0000", "id-0003", "id-0006", "id-0009"]
    assert ids(await archive.query("alice", with_jid="carol@x", with_resource="r1")) == ["id-0006"]
    # start and end are inclusive (§4.1.2)
    window = await archive.query("alice", start=T0 + timedelta(seconds=4),
                                 end=T0 + timedelta(seconds=7))
    assert ids(window) == span(4, 8) and window.complete
    between = await archive.query("alice", after=["id-0002"], before=["id-0006"])
    assert ids(between) == span(3, 6)
    mixed = await archive.query("alice", with_jid="carol@x", after=["id-0001"], limit=2)
    assert ids(mixed) == ["id-0003", "id-0006"] and not mixed.complete
    picked = await archive.query("alice", ids=["id-0007", "id-0002"])
    assert ids(picked) == ["id-0002", "id-0007"] and picked.complete


async def test_unknown_ids_and_other_owners_ids(storage: Storage, alice: str) -> None:
    await fill(storage, 3)
    await storage.archive.append([("bob", ArchiveEntry("bobs", T0, "alice@x", "in", "<m/>"))])
    for kw in ({"after": ["nope"]}, {"before": ["nope"]}, {"ids": ["id-0001", "nope"]},
               {"after": ["bobs"]}):
        with pytest.raises(UnknownArchiveId):
            await storage.archive.query("alice", **kw)  # type: ignore[arg-type]


async def test_append_skips_refused_rows(storage: Storage, alice: str) -> None:
    ok = ArchiveEntry("a", T0, "bob@x", "in", "<m/>")
    dup = ArchiveEntry("a", T0, "bob@x", "out", "<m/>")  # same id, same owner
    stored = await storage.archive.append([("alice", ok), ("alice", dup), ("ghost", ok),
                                           ("bob", ok)])
    assert stored == 2  # alice's first and bob's: ids are unique per owner only
    assert await storage.archive.count("alice") == 1
    await storage.users.delete("alice")
    assert await storage.archive.count("alice") == 0  # deleted with the account


async def test_bounds_and_expire(storage: Storage, alice: str) -> None:
    assert await storage.archive.bounds("alice") == (None, None)
    await fill(storage, 10)
    await storage.archive.append([("bob", entry(i)) for i in range(4)])
    first, last = await storage.archive.bounds("alice")
    assert first is not None and last is not None
    assert (first.id, last.id) == ("id-0000", "id-0009")
    assert await storage.archive.expire(T0 + timedelta(seconds=6), batch=3) == 6 + 4
    assert ids(await storage.archive.query("alice")) == span(6, 10)  # the oldest went
    assert await storage.archive.count("bob") == 0


async def test_prefs(storage: Storage, alice: str) -> None:
    archive = storage.archive
    assert await archive.get_prefs("alice") is None
    prefs = ArchivePrefs("roster", ["bob@x"], ["eve@x", "mallory@x/phone"])
    assert await archive.set_prefs("alice", prefs) is True
    assert await archive.get_prefs("alice") == prefs
    assert await archive.set_prefs("alice", ArchivePrefs("never")) is True
    assert await archive.get_prefs_of(["alice", "bob", "ghost"]) == {"alice": ArchivePrefs("never")}
    assert await archive.set_prefs("ghost", prefs) is False
    with pytest.raises(ValueError):
        await archive.set_prefs("alice", ArchivePrefs("sometimes"))


async def test_pages_are_index_range_scans(storage: Storage, alice: str) -> None:
    """EXPLAIN of each kind of page shows an index search, never a scan of the table."""
    archive = storage.archive
    await archive.append([("alice", entry(i, f"c{i % 7}@x")) for i in range(2000)])
    await archive.append([("bob", entry(i)) for i in range(200)])
    await archive.analyze()
    middle = "id-1000"
    queries: list[dict[str, Any]] = [
        {},
        {"after": [middle]},
        {"before": [middle], "backwards": True},
        {"backwards": True},
        {"with_jid": "c3@x", "after": [middle]},
        {"with_jid": "c3@x", "backwards": True},
        {"start": T0 + timedelta(seconds=500)},
        {"ids": [middle, "id-0005"]},
    ]
    sqlite = storage.url.startswith("sqlite")
    for query in queries:
        plan = await archive.plan("alice", **query)
        if sqlite:
            # SEARCH: a range of an index; SCAN would read the whole table (or index).
            assert "SEARCH archive USING" in plan and "SCAN" not in plan, (query, plan)
        else:
            assert "Index Scan" in plan and "Seq Scan" not in plan, (query, plan)
