"""Which nodes are alive: each holds a lease in Redis that it renews about every second.

A node joins by adding itself to ``nodes`` and setting ``lease:<node>`` with a time to live
(``cluster.lease_ttl``), then renews it five times per period with ``SET ... XX``: a lease that
has expired is never taken back. A node whose lease is gone (renewal found no key, or Redis
did not answer for a whole period) must stop serving: ``on_lost`` fires once, and the server
closes its clients, who reconnect to a node that holds its lease (no split brain).

At each renewal the node looks at the others: a member without a lease is dead. Its sessions
vanish from the routing view at once (``live``), and ``on_dead`` runs for it once, on every
survivor (``reaper.py`` lets one of them clean up).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from xmpp_server.cluster.keys import Keys
from xmpp_server.locks import cancelled

log = logging.getLogger(__name__)


class Membership:
    def __init__(self, redis: Redis, keys: Keys, node: str, ttl: float,
                 on_live: Callable[[set[str]], None],
                 on_dead: Callable[[str], Awaitable[None]],
                 on_lost: Callable[[str], None]) -> None:
        self.redis = redis
        self.keys = keys
        self.node = node
        self.ttl = ttl
        self._ttl_ms = max(100, int(ttl * 1000))
        self._on_live = on_live
        self._on_dead = on_dead
        self._on_lost = on_lost
        self.live: set[str] = {node}
        self._reaped: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._reaping: set[asyncio.Task[None]] = set()
        self.lost = False

    async def join(self, info: dict[str, object]) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.nodes, self.node, json.dumps(info))
            pipe.set(self.keys.lease(self.node), "1", px=self._ttl_ms)
            await pipe.execute()
        await self.refresh()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="cluster-lease")

    async def _run(self) -> None:
        interval = self.ttl / 5
        renewed = time.monotonic()
        while not self.lost:
            await asyncio.sleep(interval)
            try:
                held = await asyncio.wait_for(
                    self.redis.set(self.keys.lease(self.node), "1", px=self._ttl_ms, xx=True),
                    self.ttl / 2)
            except Exception as exc:
                if time.monotonic() - renewed > self.ttl:
                    self._lose(f"Redis did not answer for {self.ttl:g} s ({exc})")
                continue
            if not held:
                self._lose("the lease expired before it was renewed")
                return
            renewed = time.monotonic()
            try:
                await self.refresh()
            except Exception:
                log.warning("reading the cluster's members failed", exc_info=True)

    def _lose(self, why: str) -> None:
        if not self.lost:
            self.lost = True
            log.error("cluster node %s lost its lease: %s", self.node, why)
            self._on_lost(why)

    async def refresh(self) -> None:
        """Read the members and their leases; reap those without one."""
        members = [m.decode() if isinstance(m, bytes) else m
                   for m in await self.redis.hkeys(self.keys.nodes)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for member in members:
                pipe.exists(self.keys.lease(member))
            alive = await pipe.execute()
        live = {m for m, ok in zip(members, alive, strict=True) if ok} | {self.node}
        self.live = live
        self._on_live(live)
        for member in members:
            if member not in live and member not in self._reaped:
                self._reaped.add(member)
                task = asyncio.get_running_loop().create_task(
                    self._reap(member), name=f"cluster-reap-{member}")
                self._reaping.add(task)
                task.add_done_callback(self._reaping.discard)

    def presume_dead(self, node: str) -> None:
        """Another node's inbox is gone: stop routing to it now, before the next look."""
        if node != self.node and node in self.live:
            self.live = self.live - {node}
            self._on_live(self.live)

    async def _reap(self, member: str) -> None:
        try:
            await self._on_dead(member)
        except Exception:
            log.exception("cleaning up after node %s failed; trying again later", member)
            self._reaped.discard(member)

    async def stop(self) -> None:
        task, self._task = self._task, None
        for t in [task, *self._reaping]:
            await cancelled(t)

    async def leave(self) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.lease(self.node))
            pipe.hdel(self.keys.nodes, self.node)
            await pipe.execute()
