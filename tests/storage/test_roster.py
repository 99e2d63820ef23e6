from __future__ import annotations

import asyncio

import pytest

from storage import RosterItem, Storage, UnknownUser
from tests.storage.helpers import BOTH


@pytest.fixture
async def alice(storage: Storage) -> str:
    await storage.users.create("alice", BOTH)
    return "alice"


async def test_empty_roster(storage: Storage, alice: str) -> None:
    items, version = await storage.roster.get(alice)
    assert items == [] and version == await storage.roster.version(alice)
    assert await storage.roster.get_item(alice, "bob@example.com") is None
    assert await storage.roster.get("nobody") == ([], 0)
    assert await storage.roster.version("nobody") == 0


async def test_put_get_round_trip(storage: Storage, alice: str) -> None:
    item = RosterItem(
        jid="bob@example.com",
        name="Bob ✨",
        subscription="both",
        ask=True,
        approved=True,
        groups=["Friends", "Work", "Ünïcode"],
    )
    v0 = await storage.roster.version(alice)
    assert await storage.roster.put(alice, item) == v0 + 1
    assert await storage.roster.get_item(alice, "bob@example.com") == item
    assert await storage.roster.get(alice) == ([item], v0 + 1)


async def test_put_replaces_and_bumps_version(storage: Storage, alice: str) -> None:
    v0 = await storage.roster.version(alice)
    assert await storage.roster.put(alice, RosterItem("bob@example.com", ask=True)) == v0 + 1
    replaced = RosterItem("bob@example.com", name="Bob", subscription="to", groups=["G"])
    assert await storage.roster.put(alice, replaced) == v0 + 2
    assert await storage.roster.get_item(alice, "bob@example.com") == replaced
    assert await storage.roster.put(alice, RosterItem("carol@example.com")) == v0 + 3
    assert await storage.roster.version(alice) == v0 + 3


async def test_items_ordered_by_jid(storage: Storage, alice: str) -> None:
    v0 = await storage.roster.version(alice)
    for jid in ["zed@example.com", "Bob@example.com", "amy@example.com", "bob@example.com"]:
        await storage.roster.put(alice, RosterItem(jid))
    items, version = await storage.roster.get(alice)
    assert [i.jid for i in items] == sorted(i.jid for i in items)
    assert version == v0 + 4


async def test_remove(storage: Storage, alice: str) -> None:
    v0 = await storage.roster.version(alice)
    await storage.roster.put(alice, RosterItem("bob@example.com"))
    await storage.roster.put(alice, RosterItem("carol@example.com"))
    assert await storage.roster.remove(alice, "bob@example.com") == v0 + 3
    assert await storage.roster.remove(alice, "bob@example.com") is None
    assert await storage.roster.version(alice) == v0 + 3
    assert [i.jid for i in (await storage.roster.get(alice))[0]] == ["carol@example.com"]
    assert await storage.roster.remove("nobody", "bob@example.com") is None


async def test_rosters_are_per_user(storage: Storage, alice: str) -> None:
    await storage.users.create("bob", BOTH)
    bob0 = await storage.roster.version("bob")
    await storage.roster.put(alice, RosterItem("carol@example.com", name="A's"))
    await storage.roster.put("bob", RosterItem("carol@example.com", name="B's"))
    assert (await storage.roster.get_item(alice, "carol@example.com")) == RosterItem(
        "carol@example.com", name="A's"
    )
    assert await storage.roster.version("bob") == bob0 + 1
    await storage.roster.remove("bob", "carol@example.com")
    assert await storage.roster.get_item(alice, "carol@example.com") is not None


async def test_put_unknown_user(storage: Storage) -> None:
    with pytest.raises(UnknownUser):
        await storage.roster.put("nobody", RosterItem("bob@example.com"))


async def test_put_bad_subscription(storage: Storage, alice: str) -> None:
    with pytest.raises(ValueError):
        await storage.roster.put(alice, RosterItem("bob@example.com", subscription="all"))


async def test_concurrent_puts_get_distinct_versions(storage: Storage, alice: str) -> None:
    v0 = await storage.roster.version(alice)
    versions = await asyncio.gather(
        *(storage.roster.put(alice, RosterItem(f"c{i}@example.com")) for i in range(10))
    )
    assert sorted(versions) == list(range(v0 + 1, v0 + 11))
    items, version = await storage.roster.get(alice)
    assert len(items) == 10 and version == v0 + 10


async def test_pending_requests(storage: Storage, alice: str) -> None:
    v0 = await storage.roster.version(alice)
    assert await storage.roster.list_pending(alice) == []
    await storage.roster.add_pending(alice, "zed@example.com", "<presence id='1'/>")
    await storage.roster.add_pending(alice, "amy@example.com", "<presence id='2'/>")
    await storage.roster.add_pending(alice, "bob@example.com", "<presence id='3'/>")
    # oldest first, not alphabetical
    assert await storage.roster.list_pending(alice) == [
        ("zed@example.com", "<presence id='1'/>"),
        ("amy@example.com", "<presence id='2'/>"),
        ("bob@example.com", "<presence id='3'/>"),
    ]
    # a repeat replaces the earlier request
    await storage.roster.add_pending(alice, "amy@example.com", "<presence id='4'/>")
    pending = dict(await storage.roster.list_pending(alice))
    assert pending["amy@example.com"] == "<presence id='4'/>"
    assert len(pending) == 3

    assert await storage.roster.remove_pending(alice, "zed@example.com") is True
    assert await storage.roster.remove_pending(alice, "zed@example.com") is False
    assert [jid for jid, _ in await storage.roster.list_pending(alice)] == [
        "bob@example.com",
        "amy@example.com",
    ]
    # pending requests do not touch the roster version
    assert await storage.roster.version(alice) == v0


async def test_pending_unknown_user(storage: Storage) -> None:
    with pytest.raises(UnknownUser):
        await storage.roster.add_pending("nobody", "bob@example.com", "<presence/>")
    assert await storage.roster.remove_pending("nobody", "bob@example.com") is False
