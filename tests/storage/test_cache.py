"""The roster read cache: fewer queries, never stale through the repository, copies only."""

from __future__ import annotations

import asyncio

from storage import RosterItem, Storage
from storage.cache import CachedRosterRepository
from tests.storage.helpers import BOTH


def _count_queries(storage: Storage) -> list[str]:
    """Every statement from now on, through the engine or the driver (its operation)."""
    seen: list[str] = []
    storage.time_statements(lambda operation, _seconds: seen.append(operation))
    return seen


async def test_second_read_costs_no_query(storage: Storage) -> None:
    assert isinstance(storage.roster, CachedRosterRepository)
    await storage.users.create("alice", BOTH)
    await storage.roster.put("alice", RosterItem("bob@example.test", subscription="both"))
    queries = _count_queries(storage)
    first = await storage.roster.get("alice")
    n = len(queries)
    assert n > 0
    assert await storage.roster.get("alice") == first
    assert await storage.roster.get_item("alice", "bob@example.test") == first[0][0]
    assert await storage.roster.get_item("alice", "nobody@example.test") is None
    assert await storage.roster.version("alice") == first[1]
    assert len(queries) == n


async def test_writes_are_seen(storage: Storage) -> None:
    await storage.users.create("alice", BOTH)
    await storage.roster.get("alice")
    await storage.roster.list_pending("alice")
    version = await storage.roster.put("alice", RosterItem("bob@example.test"))
    items, cached_version = await storage.roster.get("alice")
    assert [i.jid for i in items] == ["bob@example.test"] and cached_version == version
    await storage.roster.add_pending("alice", "carol@example.test", "<presence/>")
    assert await storage.roster.list_pending("alice") == [("carol@example.test", "<presence/>")]
    await storage.roster.remove_pending("alice", "carol@example.test")
    assert await storage.roster.list_pending("alice") == []
    await storage.roster.remove("alice", "bob@example.test")
    assert (await storage.roster.get("alice"))[0] == []


async def test_callers_get_copies(storage: Storage) -> None:
    await storage.users.create("alice", BOTH)
    await storage.roster.put("alice", RosterItem("bob@example.test", groups=["a"]))
    items, _ = await storage.roster.get("alice")
    items[0].subscription = "both"
    items[0].groups.append("b")
    again, _ = await storage.roster.get("alice")
    assert again[0].subscription == "none" and again[0].groups == ["a"]


async def test_deleting_the_user_drops_the_entry(storage: Storage) -> None:
    await storage.users.create("alice", BOTH)
    await storage.roster.put("alice", RosterItem("bob@example.test"))
    await storage.roster.get("alice")
    await storage.users.delete("alice")
    await storage.users.create("alice", BOTH)
    assert (await storage.roster.get("alice"))[0] == []


async def test_a_read_racing_a_write_does_not_fill_the_cache(storage: Storage) -> None:
    await storage.users.create("alice", BOTH)
    read = asyncio.create_task(storage.roster.get("alice"))
    await asyncio.sleep(0)  # the read is in flight
    await storage.roster.put("alice", RosterItem("bob@example.test"))
    await read
    assert [i.jid for i in (await storage.roster.get("alice"))[0]] == ["bob@example.test"]
