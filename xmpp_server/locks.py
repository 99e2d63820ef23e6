"""Small coordination helpers shared by features: per-key locks, progress of write-behind work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager


class _Held:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class KeyedLocks:
    """One lock per key (a user), alive only while someone holds or waits for it."""

    __slots__ = ("_locks",)

    def __init__(self) -> None:
        self._locks: dict[Hashable, _Held] = {}

    @asynccontextmanager
    async def __call__(self, key: Hashable) -> AsyncIterator[None]:
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = _Held()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._locks[key]


class Progress:
    """How much of a write-behind queue's work is done, and who waits for how much."""

    __slots__ = ("_waiters", "done")

    def __init__(self) -> None:
        self.done = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    @property
    def waiting(self) -> bool:
        return bool(self._waiters)

    async def reach(self, target: int) -> None:
        """Return once ``done`` is at least ``target``."""
        if self.done >= target:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((target, future))
        await future

    def advance(self, done: int) -> None:
        """``done`` units are finished: wake whoever waited for no more."""
        self.done = max(self.done, done)
        if not self._waiters:
            return
        waiting = []
        for target, future in self._waiters:
            if target <= self.done:
                if not future.done():
                    future.set_result(None)
            else:
                waiting.append((target, future))
        self._waiters = waiting

    def fail(self, error: Exception) -> None:
        """The work stopped: every waiter gets ``error``."""
        for _, future in self._waiters:
            if not future.done():
                future.set_exception(error)
        self._waiters.clear()
