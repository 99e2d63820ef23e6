"""Stanzas between nodes: each node's inbox is a Redis stream read by a consumer group.

A stanza for a session on another node is queued in the ``Outbox`` and appended (``XADD``,
pipelined in batches) to that node's ``inbox:<node>`` stream, never creating it: a node that
left or was reaped has none, and the sender routes what was meant for it again. ``flush`` is
one of the host's durability barriers, so a client's XEP-0198 ack covers what it sent to
another node only once Redis holds it. The receiving node reads its inbox (``XREADGROUP``),
hands each stanza to the session it names (or, when that session is gone, routes it again:
another resource, offline storage), waits until what that caused is durable (the delivery
journal keeps what a stream-management client has not acknowledged yet) and only then
acknowledges and deletes the entries. An entry a node read but never acknowledged stays
pending: the survivor that reaps the node claims and routes it (``reaper.py``). Delivery is at
least once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from xmpp_server.cluster.keys import Keys
from xmpp_server.locks import WriteBehind, cancelled

log = logging.getLogger(__name__)

GROUP = "node"
# Deliver(to, data, key): one stanza from the inbox, for the session ``to`` on this node.
Deliver = Callable[[str, bytes, "str | None"], Awaitable[None]]


def fields_of(entry: dict[Any, Any]) -> tuple[str, bytes, str | None]:
    to = entry[b"to"].decode()
    key = entry.get(b"key")
    return to, entry[b"xml"], key.decode() if key else None


class Outbox(WriteBehind):
    """Stanzas queued for other nodes' inboxes, written in pipelined batches."""

    task_name = "cluster-outbox"

    def __init__(self, redis: Redis, keys: Keys, node: str,
                 bounced: Callable[[str, str, bytes, str | None], None],
                 max_queue: int = 20_000) -> None:
        super().__init__(delay=0.001, batch=512, stop_timeout=5.0)
        self._max_queue = max_queue
        self._relieved: asyncio.Event | None = None  # set while producers wait
        self.redis = redis
        self.keys = keys
        self.node = node
        self._bounced = bounced
        self._queue: list[tuple[str, str, bytes, str | None]] = []
        self.sent = 0

    def over(self) -> bool:
        """Whether producers should wait (``relieve``): Redis is slower than the clients."""
        return len(self._queue) >= self._max_queue and self._task is not None

    async def relieve(self) -> None:
        """Wait until the queue is at most half full (or the outbox stops)."""
        while self.over():
            if self._relieved is None:
                self._relieved = asyncio.Event()
            await self._relieved.wait()

    def forward(self, node: str, to: str, data: bytes, key: str | None) -> None:
        log.debug("%s -> %s for %s: %.120s", self.node, node, to, data)
        self._queue.append((node, to, data, key))
        self._queued += 1
        self._wake.set()

    def _backlog(self) -> int:
        return len(self._queue)

    async def _write_batch(self) -> None:
        batch = self._queue[: self._batch]
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for node, to, data, key in batch:
                    fields: dict[str, str | bytes] = {"to": to, "xml": data, "from": self.node}
                    if key is not None:
                        fields["key"] = key
                    # A node's inbox exists from its start until it leaves or is reaped:
                    # never made again here, so nothing lands where no one reads.
                    pipe.xadd(self.keys.inbox(node), fields,  # type: ignore[arg-type]
                              nomkstream=True)
                ids = await pipe.execute()
        except Exception:
            log.warning("forwarding %d stanzas to other nodes failed; trying again",
                        len(batch), exc_info=True)
            await asyncio.sleep(0.2)
            return
        del self._queue[: len(batch)]
        relieved = self._relieved
        if relieved is not None and len(self._queue) <= self._max_queue // 2:
            self._relieved = None
            relieved.set()
        for entry, entry_id in zip(batch, ids, strict=True):
            if entry_id is None:  # that node is gone: the stanza is routed anew here
                self._bounced(*entry)
        self.sent += len(batch)
        self._progress.advance(self._progress.done + len(batch))

    def _stopped(self, in_time: bool) -> None:
        if self._relieved is not None:  # nobody writes any more: producers go on
            self._relieved.set()
            self._relieved = None
        if self._queue:
            log.error("%d stanzas for other nodes were not forwarded at stop", len(self._queue))


class Inbox:
    """Reads this node's stream and delivers what it holds."""

    def __init__(self, redis: Redis, keys: Keys, node: str, deliver: Deliver,
                 durable: Callable[[], Awaitable[None]]) -> None:
        self.redis = redis
        self.stream = keys.inbox(node)
        self.node = node
        self._deliver = deliver
        self._durable = durable
        self._task: asyncio.Task[None] | None = None
        self.received = 0

    async def create(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="cluster-inbox")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancelled(task)

    async def _run(self) -> None:
        while True:
            try:
                replies: Any = await self.redis.xreadgroup(
                    GROUP, self.node, {self.stream: ">"}, count=256, block=1000)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("reading the inbox failed; trying again", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            for _stream, entries in replies or ():
                await self.handle(entries)

    async def handle(self, entries: list[tuple[bytes, dict[Any, Any]]]) -> None:
        """Deliver entries, then acknowledge and delete them once what they caused is durable."""
        ids = []
        for entry_id, fields in entries:
            try:
                await self._deliver(*fields_of(fields))
            except Exception:  # left pending: never acknowledged means never lost
                log.exception("delivering inbox entry %s failed; it stays pending", entry_id)
                continue
            ids.append(entry_id)
        self.received += len(ids)
        if not ids:
            return
        await self._durable()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xack(self.stream, GROUP, *ids)
            pipe.xdel(self.stream, *ids)
            await pipe.execute()
