"""Upload slots (XEP-0363) and the per-user quota they count against."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta

from storage import Storage
from storage.uploads import Upload
from tests.storage.helpers import BOTH

T0 = datetime(2025, 1, 7, 12, 0, 0, tzinfo=UTC)


def slot(username: str = "alice", size: int = 10, at: datetime = T0) -> Upload:
    return Upload(secrets.token_urlsafe(24), username, "f.bin", size, "", at,
                  at + timedelta(seconds=300))


async def test_reserve_within_the_quota(storage: Storage) -> None:
    await storage.users.create("alice", BOTH)
    assert await storage.uploads.reserve(slot(size=60), quota=100)
    assert not await storage.uploads.reserve(slot(size=41), quota=100)
    assert await storage.uploads.reserve(slot(size=40), quota=100)  # exactly the quota
    assert await storage.uploads.used("alice", T0) == 100
    # slots expired unused no longer count; 0 is no limit; no such user: nothing recorded
    later = T0 + timedelta(seconds=301)
    assert await storage.uploads.reserve(slot(size=100, at=later), quota=100)
    assert await storage.uploads.reserve(slot(size=10**9), quota=0)
    assert not await storage.uploads.reserve(slot("nobody"), quota=0)
    assert await storage.uploads.of_user("nobody") == []


async def test_concurrent_reservations_never_exceed_the_quota(storage: Storage) -> None:
    """80 requests at once against a quota of 10 slots: exactly 10 are granted."""
    await storage.users.create("alice", BOTH)
    await storage.users.create("bob", BOTH)
    results = await asyncio.gather(*(storage.uploads.reserve(slot(), quota=100)
                                     for _ in range(80)))
    assert sum(results) == 10
    assert await storage.uploads.used("alice", T0) == 100
    assert await storage.uploads.reserve(slot("bob"), quota=100)  # per user
