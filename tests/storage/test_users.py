from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest

from storage import RosterItem, Storage, UserExists
from tests.storage.helpers import BOTH, creds


async def test_create_and_get_credentials(storage: Storage) -> None:
    await storage.users.create("alice", BOTH)
    assert await storage.users.get_credentials("alice", "SCRAM-SHA-1") == BOTH[0]
    assert await storage.users.get_credentials("alice", "SCRAM-SHA-256") == BOTH[1]
    assert await storage.users.get_credentials("alice", "SCRAM-SHA-512") is None
    assert await storage.users.get_credentials("nobody", "SCRAM-SHA-1") is None


async def test_binary_keys_round_trip(storage: Storage) -> None:
    raw = creds(salt=bytes(range(256)))
    await storage.users.create("alice", [raw])
    got = await storage.users.get_credentials("alice", raw.mechanism)
    assert got == raw
    assert got is not None and isinstance(got.salt, bytes)


async def test_create_taken_name_raises(storage: Storage) -> None:
    await storage.users.create("alice", BOTH)
    with pytest.raises(UserExists):
        await storage.users.create("alice", [creds(salt=b"other")])
    assert await storage.users.get_credentials("alice", "SCRAM-SHA-256") == BOTH[1]


async def test_concurrent_create_one_wins(storage: Storage) -> None:
    results = await asyncio.gather(
        *(storage.users.create("bob", [creds(salt=bytes([i]))]) for i in range(10)),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, UserExists) for r in results if r is not None)
    assert await storage.users.count() == 1


async def test_duplicate_mechanism_rejected(storage: Storage) -> None:
    with pytest.raises(ValueError):
        await storage.users.create("alice", [creds(), creds()])
    assert not await storage.users.exists("alice")


async def test_set_credentials_replaces_all(storage: Storage) -> None:
    await storage.users.create("alice", BOTH)
    new = creds("SCRAM-SHA-256", salt=b"new")
    assert await storage.users.set_credentials("alice", [new]) is True
    assert await storage.users.get_credentials("alice", "SCRAM-SHA-256") == new
    assert await storage.users.get_credentials("alice", "SCRAM-SHA-1") is None
    assert await storage.users.set_credentials("nobody", [new]) is False
    assert not await storage.users.exists("nobody")


async def test_exists_list_count(storage: Storage) -> None:
    assert await storage.users.list() == []
    assert await storage.users.count() == 0
    for name in ["carol", "Bob", "alice", "bob"]:
        await storage.users.create(name, BOTH)
    assert await storage.users.exists("carol")
    assert not await storage.users.exists("dave")
    assert await storage.users.list() == ["Bob", "alice", "bob", "carol"]
    assert await storage.users.count() == 4


async def test_delete_cascades_everything(storage: Storage) -> None:
    for name in ("alice", "bob"):
        await storage.users.create(name, BOTH)
        await storage.roster.put(name, RosterItem("carol@example.com"))
        await storage.roster.add_pending(name, "dave@example.com", "<presence/>")
        assert await storage.offline.store(name, "<message/>", 10)
        await storage.users.set_last_logout(name, datetime.now(UTC), None)

    old_version = await storage.roster.version("alice")
    assert await storage.users.delete("alice") is True
    assert await storage.users.delete("alice") is False
    assert not await storage.users.exists("alice")
    assert await storage.users.get_credentials("alice", "SCRAM-SHA-1") is None
    assert await storage.roster.get("alice") == ([], 0)  # no such user: no version
    assert await storage.roster.list_pending("alice") == []
    assert await storage.offline.fetch("alice") == []
    assert await storage.users.get_last_logout("alice") is None

    # bob is untouched
    assert await storage.users.get_credentials("bob", "SCRAM-SHA-1") == BOTH[0]
    assert len((await storage.roster.get("bob"))[0]) == 1
    assert len(await storage.roster.list_pending("bob")) == 1
    assert await storage.offline.count("bob") == 1
    assert await storage.users.get_last_logout("bob") is not None

    # the name is free again, with a fresh roster version that a client's cached 'ver' of
    # the old account does not match (RFC 6121 §2.6: a new start, not a restart at the old one)
    await storage.users.create("alice", BOTH)
    assert await storage.roster.version("alice") != old_version


async def test_last_logout(storage: Storage) -> None:
    await storage.users.create("alice", BOTH)
    assert await storage.users.get_last_logout("alice") is None
    first = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
    await storage.users.set_last_logout("alice", first, "gone fishing")
    assert await storage.users.get_last_logout("alice") == (first, "gone fishing")

    # another zone is stored as the same instant and returned in UTC
    second = datetime(2024, 5, 2, 9, 0, tzinfo=timezone(timedelta(hours=2)))
    await storage.users.set_last_logout("alice", second, None)
    got = await storage.users.get_last_logout("alice")
    assert got == (second, None)
    assert got is not None and got[0].utcoffset() == timedelta(0)
    assert got[0].hour == 7

    await storage.users.set_last_logout("nobody", first, None)  # ignored
    assert await storage.users.get_last_logout("nobody") is None


async def test_naive_datetime_rejected(storage: Storage) -> None:
    await storage.users.create("alice", BOTH)
    with pytest.raises(ValueError):
        await storage.users.set_last_logout("alice", datetime(2024, 1, 1), None)
