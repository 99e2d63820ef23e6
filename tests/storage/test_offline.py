from __future__ import annotations

import asyncio

import pytest

from storage import Storage
from storage.offline import JournalWrite
from tests.storage.helpers import BOTH


@pytest.fixture
async def alice(storage: Storage) -> str:
    await storage.users.create("alice", BOTH)
    return "alice"


async def test_store_fetch_in_arrival_order(storage: Storage, alice: str) -> None:
    assert await storage.offline.fetch(alice) == []
    for i in range(5):
        assert await storage.offline.store(alice, f"<message id='{i}'/>", 100) is True
    fetched = await storage.offline.fetch(alice)
    assert [m.xml for m in fetched] == [f"<message id='{i}'/>" for i in range(5)]
    ids = [m.id for m in fetched]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert all(isinstance(i, int) for i in ids)
    assert await storage.offline.count(alice) == 5


async def test_delete_after_delivery(storage: Storage, alice: str) -> None:
    await storage.users.create("bob", BOTH)
    for i in range(3):
        await storage.offline.store(alice, f"<m{i}/>", 10)
    await storage.offline.store("bob", "<b/>", 10)
    fetched = await storage.offline.fetch(alice)
    bob_id = (await storage.offline.fetch("bob"))[0].id

    await storage.offline.delete(alice, [fetched[0].id, fetched[2].id, bob_id])
    assert await storage.offline.fetch(alice) == [fetched[1]]
    assert await storage.offline.count("bob") == 1  # another user's id is ignored
    await storage.offline.delete(alice, [])
    assert await storage.offline.count(alice) == 1


async def test_ids_not_reused_after_delete(storage: Storage, alice: str) -> None:
    await storage.offline.store(alice, "<old/>", 10)
    [old] = await storage.offline.fetch(alice)
    old_id = old.id
    await storage.offline.delete(alice, [old_id])
    await storage.offline.store(alice, "<new/>", 10)
    [new] = await storage.offline.fetch(alice)
    new_id = new.id
    assert new_id > old_id


async def test_limit(storage: Storage, alice: str) -> None:
    for i in range(3):
        assert await storage.offline.store(alice, f"<m{i}/>", 3) is True
    assert await storage.offline.store(alice, "<over/>", 3) is False
    assert await storage.offline.count(alice) == 3
    assert "<over/>" not in [m.xml for m in await storage.offline.fetch(alice)]
    assert await storage.offline.store(alice, "<m/>", 0) is False
    # delivering makes room again
    first_id = (await storage.offline.fetch(alice))[0].id
    await storage.offline.delete(alice, [first_id])
    assert await storage.offline.store(alice, "<m3/>", 3) is True


async def test_limit_is_per_user(storage: Storage, alice: str) -> None:
    await storage.users.create("bob", BOTH)
    assert await storage.offline.store(alice, "<a/>", 1) is True
    assert await storage.offline.store("bob", "<b/>", 1) is True
    assert await storage.offline.store(alice, "<a2/>", 1) is False


async def test_concurrent_stores_respect_limit(storage: Storage, alice: str) -> None:
    results = await asyncio.gather(
        *(storage.offline.store(alice, f"<m{i}/>", 5) for i in range(12))
    )
    assert results.count(True) == 5
    assert await storage.offline.count(alice) == 5


async def test_unknown_user(storage: Storage) -> None:
    assert await storage.offline.store("nobody", "<m/>", 10) is False
    assert await storage.offline.fetch("nobody") == []
    assert await storage.offline.count("nobody") == 0


async def test_store_once_per_stanza_id(storage: Storage, alice: str) -> None:
    assert await storage.offline.store(alice, "<m1/>", 10, stanza_id="sid-1") is True
    assert await storage.offline.store(alice, "<m1/>", 10, stanza_id="sid-1") is True
    assert [m.stanza_id for m in await storage.offline.fetch(alice)] == ["sid-1"]


async def test_journal_holds_releases_and_hands_back(storage: Storage, alice: str) -> None:
    await storage.offline.journal([
        JournalWrite("insert", alice, "a", held="p1", xml="<a/>"),
        JournalWrite("insert", alice, "b", held="p1", xml="<b/>"),
        JournalWrite("insert", alice, "c", held="p2", xml="<c/>"),
        JournalWrite("insert", alice, "a", held="p1", xml="<a/>"),  # stored once
    ])
    assert await storage.offline.fetch(alice) == []  # held rows wait for no login
    assert await storage.offline.count(alice) == 0
    # acknowledged: gone; handed back: waiting again
    await storage.offline.journal([JournalWrite("delete", alice, "a"),
                                   JournalWrite("hold", alice, "b", held=None)])
    assert [m.stanza_id for m in await storage.offline.fetch(alice)] == ["b"]
    # a process that died: its rows wait again, those of the live one stay held
    assert await storage.offline.release_held(keep={"p1"}) == 1
    assert [m.stanza_id for m in await storage.offline.fetch(alice)] == ["b", "c"]
    fetched = await storage.offline.fetch(alice)
    assert all(m.stored_at.tzinfo is not None for m in fetched)


async def test_journal_row_of_a_deleted_user_is_skipped(storage: Storage, alice: str) -> None:
    await storage.offline.journal([JournalWrite("insert", "nobody", "x", xml="<x/>"),
                                   JournalWrite("insert", alice, "y", xml="<y/>")])
    assert [m.stanza_id for m in await storage.offline.fetch(alice)] == ["y"]
