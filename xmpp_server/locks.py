"""Small coordination helpers shared by features: per-key locks, progress of write-behind work."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from typing import Any

log = logging.getLogger(__name__)


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


class WriteBehind:
    """One task that writes queued work in batches, and waits that callers can rely on.

    A subclass queues work (counting it in ``_queued``), wakes the task (``_wake.set()``),
    and writes one batch in ``_write_batch``, advancing ``_progress``. After the first item of
    a quiet period the task waits ``delay`` seconds for company, so a busy server writes few
    large transactions. ``flush`` returns once what was queued before it is written; ``stop``
    writes what is left, within ``stop_timeout`` seconds.
    """

    task_name = "write-behind"

    def __init__(self, delay: float, batch: int, stop_timeout: float) -> None:
        self._delay = delay
        self._batch = batch
        self._stop_timeout = stop_timeout
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._queued = 0  # units of work ever queued
        self._progress = Progress()  # units finished (written, or given up at stop)

    def _backlog(self) -> int:
        """How much waits to be written."""
        raise NotImplementedError

    async def _write_batch(self) -> None:
        raise NotImplementedError

    def _stopped(self, in_time: bool) -> None:
        """After the task ended (``in_time``) or was given up at ``stop``."""

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self.task_name)

    async def flush(self) -> None:
        """Return once everything queued before the call is written."""
        target = self._queued
        if self._progress.done >= target:
            return
        if self._task is None or self._task.done():
            raise RuntimeError(f"the {self.task_name} task is not running")
        self._wake.set()
        await self._progress.reach(target)

    async def stop(self) -> None:
        """Write what is queued, then end the task (cancelled if storage does not answer)."""
        self._closing = True
        self._wake.set()
        task, self._task = self._task, None
        if task is None:
            return
        in_time = True
        try:
            await asyncio.wait_for(task, self._stop_timeout)
        except TimeoutError:
            in_time = False
        finally:
            self._stopped(in_time)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if not (self._closing or self._progress.waiting) and self._backlog() < self._batch:
                await asyncio.sleep(self._delay)  # let a batch gather
            self._wake.clear()
            while self._backlog():
                await self._write_batch()
            if self._closing:
                return


async def cancelled(task: asyncio.Task[Any] | None) -> None:
    """Cancel a background task (if any) and wait until it has ended.

    Again and again if need be: a library that turns the cancellation into an error of its
    own (redis-py, interrupted mid-read) leaves a task that retries on errors running."""
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.5)
    if not task.cancelled() and task.exception() is not None:
        log.warning("task %s ended with %r", task.get_name(), task.exception())
