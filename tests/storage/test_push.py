from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from storage import Storage, UnknownUser
from storage.push import PushRegistration
from tests.storage.helpers import BOTH

T0 = datetime(2025, 1, 7, 12, 0, 0, 123456, tzinfo=UTC)


def reg(node: str, jid: str = "push.example", options: str | None = None,
        at: datetime = T0) -> PushRegistration:
    return PushRegistration(jid, node, options, at)


@pytest.fixture
async def alice(storage: Storage) -> str:
    await storage.users.create("alice", BOTH)
    return "alice"


async def test_enable_replaces_the_same_pair_within_the_limit(storage: Storage,
                                                              alice: str) -> None:
    assert await storage.push.get(alice) == []
    assert await storage.push.enable(alice, reg("n1", options="<x/>"), limit=2)
    assert await storage.push.enable(alice, reg("n2", at=T0 + timedelta(seconds=1)), limit=2)
    assert not await storage.push.enable(alice, reg("n3"), limit=2)  # a third: refused
    later = T0 + timedelta(seconds=2)
    assert await storage.push.enable(alice, reg("n1", at=later), limit=2)  # same pair: updated
    assert await storage.push.get(alice) == [reg("n2", at=T0 + timedelta(seconds=1)),
                                             reg("n1", at=later)]
    with pytest.raises(UnknownUser):
        await storage.push.enable("nobody", reg("n"), limit=2)


async def test_disable_by_node_or_service_and_remove_if_unchanged(storage: Storage,
                                                                  alice: str) -> None:
    for r in (reg("a"), reg("b"), reg("c", jid="other.example")):
        await storage.push.enable(alice, r, limit=5)
    assert await storage.push.disable(alice, "push.example", "a") == [reg("a")]
    assert await storage.push.disable(alice, "push.example", "a") == []
    assert await storage.push.disable(alice, "push.example") == [reg("b")]
    # remove() leaves a registration that was enabled again since it was read
    old = reg("c", jid="other.example")
    await storage.push.enable(alice, reg("c", jid="other.example", at=T0 + timedelta(1)), 5)
    assert not await storage.push.remove(alice, old)
    current = (await storage.push.get(alice))[0]
    assert await storage.push.remove(alice, current)
    assert await storage.push.get(alice) == []


async def test_deleting_the_user_deletes_the_registrations(storage: Storage, alice: str) -> None:
    await storage.push.enable(alice, reg("n"), limit=5)
    await storage.users.delete(alice)
    assert await storage.push.get(alice) == []
