"""After a node dies: one survivor removes its traces and takes over what it left undelivered.

Every survivor stops routing to the dead node's sessions as soon as its lease is gone
(``Directory.forget_node``). One of them (``SET reaping:<node> NX``) then:

1. removes the node's directory entries and announces each removal;
2. tells each lost resource's contacts it went (``cluster-session-lost``: the presence feature
   sends unavailable presence, RFC 6121 §4.5.2, as when a session ends);
3. claims what the node's inbox still held, read or not, and routes it again (the user's other
   resources, or offline storage), acknowledging each entry only once that is durable;
4. releases the delivery-journal rows the node held for its stream-management clients
   (``cluster-node-dead``: they wait in offline storage, once);
5. forgets the node.

A survivor that fails half-way lets its claim expire; another (or itself, at its next look at
the members) does it again. Each step can be repeated without harm.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from xmpp_server.cluster.directory import Directory, RemoteSession
from xmpp_server.cluster.inbox import GROUP, Deliver, fields_of
from xmpp_server.cluster.keys import Keys
from xmpp_server.events import Events
from xmpp_server.jid import JID

log = logging.getLogger(__name__)

_CLAIM_MS = 60_000
_DELETE_IF_NODE = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if raw and cjson.decode(raw)['node'] == ARGV[2] then
    return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""


def incarnation_of(node: str) -> str:
    return node.rpartition("/")[2]


class Reaper:
    def __init__(self, redis: Redis, keys: Keys, node: str, domain: str, directory: Directory,
                 deliver: Deliver, durable: Callable[[], Awaitable[None]],
                 events: Events) -> None:
        self.redis = redis
        self.keys = keys
        self.node = node
        self.domain = domain
        self.directory = directory
        self._deliver = deliver
        self._durable = durable
        self.events = events
        self.reaped: list[str] = []  # nodes this one cleaned up after

    async def reap(self, dead: str) -> None:
        self.directory.forget_node(dead)
        keys, redis = self.keys, self.redis
        if not await redis.set(keys.reaping(dead), self.node, nx=True, px=_CLAIM_MS):
            return  # another survivor does it
        log.warning("node %s is gone; taking over what it left", dead)
        lost = await self._remove_entries(dead)
        for session in lost:
            await self.events.notify("cluster-session-lost", session)
        rerouted = await self._take_inbox(dead)
        await self.events.notify("cluster-node-dead", incarnation_of(dead))
        async with redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.node_users(dead), keys.inbox(dead), keys.inbox(dead) + ":reaped")
            pipe.hdel(keys.nodes, dead)
            await pipe.execute()
        self.reaped.append(dead)
        log.warning("node %s: %d sessions ended, %d stanzas routed again", dead, len(lost),
                    rerouted)

    async def _remove_entries(self, dead: str) -> list[RemoteSession]:
        keys, redis = self.keys, self.redis
        lost = []
        for raw_user in await redis.smembers(keys.node_users(dead)):
            username = raw_user.decode() if isinstance(raw_user, bytes) else raw_user
            fields = await redis.hgetall(keys.user(username))
            async with redis.pipeline(transaction=False) as pipe:
                for raw_resource, raw in fields.items():
                    entry = json.loads(raw)
                    if entry.get("node") != dead:
                        continue
                    resource = (raw_resource.decode() if isinstance(raw_resource, bytes)
                                else raw_resource)
                    # Only if still the dead node's: the resource may be bound again elsewhere.
                    pipe.eval(_DELETE_IF_NODE, 1, keys.user(username), resource, dead)
                    pipe.publish(keys.channel, json.dumps(
                        {"n": dead, "u": username, "r": resource, "e": None}))
                    session = RemoteSession(JID(username, self.domain, resource), entry,
                                            _nowhere)
                    session.closed = True
                    lost.append(session)
                await pipe.execute()
        return lost

    async def _take_inbox(self, dead: str) -> int:
        """Claim every entry of the dead node's inbox and route it again.

        The stream is renamed first: from then on no sender can add to it (``XADD
        NOMKSTREAM`` fails, and the sender routes the stanza itself), so nothing added
        after the last read here is lost."""
        redis = self.redis
        stream = self.keys.inbox(dead) + ":reaped"
        try:
            await redis.rename(self.keys.inbox(dead), stream)
        except ResponseError:
            if not await redis.exists(stream):  # no inbox (or a survivor renamed it earlier)
                return 0
        done = 0
        # Entries the node read but never acknowledged...
        start = "0-0"
        while True:
            reply = await redis.xautoclaim(stream, GROUP, self.node, min_idle_time=0,
                                           start_id=start, count=256)
            start, entries = reply[0], reply[1]
            done += await self._route(stream, entries)
            if start in (b"0-0", "0-0") or not entries:
                break
        # ...and those it never read.
        while True:
            replies: Any = await redis.xreadgroup(GROUP, self.node, {stream: ">"}, count=256)
            entries = [e for _s, batch in replies or () for e in batch]
            if not entries:
                break
            done += await self._route(stream, entries)
        return done

    async def _route(self, stream: str, entries: list[Any]) -> int:
        ids = []
        for entry_id, fields in entries:
            if fields is None:  # deleted meanwhile
                ids.append(entry_id)
                continue
            await self._deliver(*fields_of(fields))
            ids.append(entry_id)
        if ids:
            await self._durable()
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.xack(stream, GROUP, *ids)
                pipe.xdel(stream, *ids)
                await pipe.execute()
        return len(ids)


def _nowhere(node: str, to: str, data: bytes, key: str | None) -> None:
    """A lost session is written to no more."""
