"""The archive writer: rows queued on the routing path, written in batches by one task.

Routing never waits for the database: a message is delivered first, and archiving it costs the
routing path one serialisation and a ``deque.append`` (``add`` is a plain function). One task
owned by the module writes what was queued, in queue order (so the archive's ``seq`` follows
arrival order), up to ``batch`` rows per transaction. After the first row of a quiet period it
waits ``delay`` seconds for company, so a busy server writes a few large transactions per
second instead of one per message (bench/archive_bench.py measures both).

``flush()`` waits until everything queued so far is written: an archive query calls it first, so
a client always finds the messages it has just sent and received. ``stop()`` writes what is left
(graceful shutdown loses nothing that was accepted). A failing write is retried with backoff
while the server runs; it is given up only when stopping.

The queue is bounded: past ``max_queue`` rows the writer is ``over`` and the sessions that
produce them wait in ``relieve`` (their input stops being read) until it is half empty, so a
slow database slows senders instead of growing memory. Stream management also waits for
``flush`` before acknowledging (``Host.durable``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from storage.archive import ArchiveEntry
from xmpp_server.locks import WriteBehind

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Pending:
    owner: str  # the username whose archive gets the entry
    entry: ArchiveEntry


Write = Callable[[list[Pending]], Awaitable[None]]


class ArchiveWriter(WriteBehind):
    task_name = "mam-writer"

    def __init__(self, write: Write, delay: float = 0.005, batch: int = 500,
                 stop_timeout: float = 10.0, max_queue: int = 20_000) -> None:
        super().__init__(delay, batch, stop_timeout)
        self._write = write
        self._queue: deque[Pending] = deque()
        self._max_queue = max_queue
        self._relieved: asyncio.Event | None = None  # set while producers wait
        self.stats = {"written_batches": 0, "failures": 0}

    def over(self) -> bool:
        """Whether producers should wait (``relieve``) before queueing more."""
        return len(self._queue) >= self._max_queue and self._task is not None

    async def relieve(self) -> None:
        """Wait until the queue is at most half full (or the writer stops)."""
        while self.over():
            if self._relieved is None:
                self._relieved = asyncio.Event()
            await self._relieved.wait()

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, owner: str, entry: ArchiveEntry) -> None:
        """Queue one entry (the routing path: no await, no I/O)."""
        self._queue.append(Pending(owner, entry))
        self._queued += 1
        self._wake.set()

    def _backlog(self) -> int:
        return len(self._queue)

    def _stopped(self, in_time: bool) -> None:
        if not in_time:
            log.error("archive writer: gave up on %d queued entries at stop", len(self._queue))
        self._progress.advance(self._queued)
        if self._relieved is not None:
            self._relieved.set()
            self._relieved = None

    async def _write_batch(self) -> None:
        size = min(len(self._queue), self._batch)
        batch = [self._queue[i] for i in range(size)]
        backoff = 0.1
        while True:
            try:
                await self._write(batch)
                self.stats["written_batches"] += 1
                break
            except Exception:
                self.stats["failures"] += 1
                log.exception("archive writer: writing %d entries failed", size)
                if self._closing:
                    break  # at shutdown: logged, not retried forever
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
        for _ in range(size):
            self._queue.popleft()
        self._progress.advance(self._progress.done + size)
        if self._relieved is not None and len(self._queue) <= self._max_queue // 2:
            self._relieved.set()
            self._relieved = None
