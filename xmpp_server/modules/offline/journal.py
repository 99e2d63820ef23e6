"""The delivery journal: messages in unacknowledged XEP-0198 queues, durable until acknowledged.

A normal or chat message written to a stream-management session lives in that session's queue
(memory) until the client acknowledges it. The journal keeps a copy in offline storage
meanwhile, ``held`` by this process, so that nothing the server accepted depends on memory:

==========================  ==================================================================
what happens                the message's row
==========================  ==================================================================
written to SM sessions      inserted, held (``hold``); a stored message delivered from
                            offline storage is held in place (``adopt``, then ``hold``)
a client acknowledges it    deleted (``acked``): delivered
every holder ended first    held no more: it waits in offline storage (``dropped``), once,
                            whatever else the user's sessions are doing; ``on_waiting`` hands
                            it to the user's available sessions
the process dies            its held rows wait again when the next one starts
                            (``OfflineRepository.release_held``)
==========================  ==================================================================

Nothing here waits on the routing path: changes are kept in memory and written in batches by
one task, and a message acknowledged before its batch is written never touches the database.
``flush()`` waits until every change made so far is written: stream management answers a
client's ``<r/>`` only after it, so what the server acknowledged to a sender is durable (see
docs/guarantees.md). A failing write is retried with backoff while the server runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime

from storage.offline import JournalWrite
from xmpp_server.locks import WriteBehind

log = logging.getLogger(__name__)

Write = Callable[[Sequence[JournalWrite]], Awaitable[None]]

_HELD, _WAITING, _GONE = "held", "waiting", "gone"


class _Entry:
    __slots__ = ("db_held", "holders", "in_db", "stamp", "want", "xml")

    def __init__(self, want: str, in_db: bool, xml: str | None = None) -> None:
        self.want = want
        self.in_db = in_db  # a row exists
        self.db_held = False  # the row is held by this process
        self.holders = 0  # sessions whose queue holds the message
        self.xml = xml  # until written
        self.stamp = datetime.now(UTC)


class Journal(WriteBehind):
    task_name = "offline-journal"

    def __init__(self, write: Write, holder: str,
                 on_waiting: Callable[[set[str]], None] | None = None,
                 delay: float = 0.005, batch: int = 2000, stop_timeout: float = 10.0) -> None:
        super().__init__(delay, batch, stop_timeout)
        self._write = write
        self.holder = holder  # this process's incarnation, written into held rows
        self._on_waiting = on_waiting
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._dirty: dict[tuple[str, str], _Entry] = {}
        self.stats = {"inserted": 0, "deleted": 0, "released": 0, "failures": 0}

    def __len__(self) -> int:
        return len(self._entries)

    def knows(self, username: str, stanza_id: str) -> bool:
        """Whether the message is in some session's queue (or being written)."""
        return (username, stanza_id) in self._entries

    # -- what sessions report (plain functions: the routing path) -----------------------------

    def adopt(self, username: str, stanza_id: str) -> None:
        """A stored, waiting message is about to be written to sessions (offline delivery)."""
        key = (username, stanza_id)
        if key not in self._entries:
            self._entries[key] = _Entry(_WAITING, in_db=True)

    def hold(self, username: str, stanza_id: str, data: bytes) -> None:
        """The message was written to (the queue of) one more stream-management session."""
        key = (username, stanza_id)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(_HELD, in_db=False, xml=data.decode())
        elif entry.want == _WAITING:
            entry.want = _HELD
        entry.holders += 1
        self._mark(key, entry)

    def settle(self, username: str, stanza_id: str, delivered: bool) -> None:
        """After ``adopt`` and writing: with no holder (or also written to a session without
        stream management, ``delivered``) the stored message is delivered and goes."""
        key = (username, stanza_id)
        entry = self._entries.get(key)
        if entry is not None and (delivered or entry.holders == 0):
            entry.want = _GONE
            self._mark(key, entry)

    def acked(self, username: str, stanza_ids: Iterable[str]) -> None:
        """A client acknowledged these: delivered."""
        for stanza_id in stanza_ids:
            key = (username, stanza_id)
            entry = self._entries.get(key)
            if entry is not None and entry.want != _GONE:
                entry.want = _GONE
                self._mark(key, entry)

    def dropped(self, username: str, stanza_ids: Iterable[str]) -> None:
        """A session ended with these unacknowledged: once no session holds one, it waits."""
        for stanza_id in stanza_ids:
            key = (username, stanza_id)
            entry = self._entries.get(key)
            if entry is None or entry.want == _GONE:
                continue
            entry.holders -= 1
            if entry.holders <= 0:
                entry.want = _WAITING
                self._mark(key, entry)

    def _mark(self, key: tuple[str, str], entry: _Entry) -> None:
        self._dirty[key] = entry
        self._queued += 1
        if not self._wake.is_set():
            self._wake.set()

    # -- writing ------------------------------------------------------------------------------

    def _backlog(self) -> int:
        return len(self._dirty)

    def _stopped(self, in_time: bool) -> None:
        if not in_time:
            log.error("delivery journal: %d changes not written at stop; the rows of held "
                      "messages wait for delivery at the next start", len(self._dirty))
        self._progress.fail(RuntimeError("the delivery journal stopped"))

    async def _write_batch(self) -> None:
        marks = self._queued
        keys = list(self._dirty)[: self._batch]
        batch = [(key, self._dirty.pop(key)) for key in keys]
        # When this batch empties the dirty set, everything marked so far is in it.
        target = self._progress.done if self._dirty else marks
        writes: list[JournalWrite] = []
        planned: list[tuple[tuple[str, str], _Entry, str, bool]] = []
        for key, entry in batch:
            want = entry.want
            write = self._plan(key, entry, want)
            if write is not None:
                writes.append(write)
            planned.append((key, entry, want, write is not None))
        backoff = 0.1
        while True:
            try:
                await self._write(writes)
                break
            except Exception:
                self.stats["failures"] += 1
                log.exception("delivery journal: writing %d changes failed", len(writes))
                if self._closing and backoff > 1.0:
                    for key, entry in batch:  # given up: kept for the log line at stop
                        self._dirty.setdefault(key, entry)
                    raise
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
        waiting: set[str] = set()
        for key, entry, want, _ in planned:
            if want == _HELD:
                entry.in_db, entry.db_held, entry.xml = True, True, None
            elif want == _WAITING:
                entry.in_db, entry.db_held, entry.xml = True, False, None
                waiting.add(key[0])
            else:
                entry.in_db = entry.db_held = False
            # Terminal states are forgotten, unless changed again meanwhile.
            if (want != _HELD and entry.want == want and key not in self._dirty
                    and self._entries.get(key) is entry):
                del self._entries[key]
        for write in writes:
            if write.action == "insert":
                self.stats["inserted"] += 1
            elif write.action == "delete":
                self.stats["deleted"] += 1
            elif write.held is None:
                self.stats["released"] += 1
        self._progress.advance(target)
        if waiting and self._on_waiting is not None:
            try:
                self._on_waiting(waiting)
            except Exception:
                log.exception("delivery journal: handing waiting messages on failed")

    def _plan(self, key: tuple[str, str], entry: _Entry, want: str) -> JournalWrite | None:
        username, stanza_id = key
        if want == _HELD:
            if not entry.in_db:
                return JournalWrite("insert", username, stanza_id, self.holder, entry.xml or "",
                                    entry.stamp)
            return None if entry.db_held else JournalWrite("hold", username, stanza_id,
                                                           self.holder)
        if want == _WAITING:
            if not entry.in_db:
                return JournalWrite("insert", username, stanza_id, None, entry.xml or "",
                                    entry.stamp)
            return JournalWrite("hold", username, stanza_id, None) if entry.db_held else None
        return JournalWrite("delete", username, stanza_id) if entry.in_db else None
