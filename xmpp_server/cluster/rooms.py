"""Each group chat room (XEP-0045) lives on one node of the cluster at a time.

The first stanza for a room on any node claims it (``room:<jid>`` names the node, replaced only
when that node's lease is gone: one Lua script, so two nodes never both hold a room). Stanzas
for a room held elsewhere go to that node's inbox; occupants may be on any node, the room
writes to them through the session registry like to any resource. What a node holds in
memory of a room it loses when it dies; the next stanza for the room claims it again, and a
persistent room comes back from PostgreSQL (configuration, affiliations, history), its
occupants rejoining (XEP-0410 self-pings tell clients to). A node that stops cleanly gives
its rooms up at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from lxml import etree
from redis.asyncio import Redis

from xmpp_server.cluster.directory import Forward
from xmpp_server.cluster.keys import Keys
from xmpp_server.stanza import Stanza

Handler = Callable[[Stanza], Awaitable[None]]

_CLAIM = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] and redis.call('EXISTS', ARGV[2] .. holder) == 1 then
    return holder
end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RoomPlacement:
    def __init__(self, redis: Redis, keys: Keys, node: str, forward: Forward,
                 live: Callable[[], set[str]]) -> None:
        self.redis = redis
        self.keys = keys
        self.node = node
        self._forward = forward
        self._live = live
        self._holders: dict[str, str] = {}  # room bare JID -> node (as last seen)
        self.held: set[str] = set()  # rooms this node holds

    def wrap(self, handler: Handler) -> Handler:
        """The component handler of a MUC service, placed: rooms held elsewhere forwarded."""

        async def placed(stanza: Stanza) -> None:
            to = stanza.to
            if to is None or to.local is None:  # the service itself: any node answers
                await handler(stanza)
                return
            room = to.bare_str
            holder = self._holders.get(room)
            if holder is None or holder not in self._live():
                holder = await self._claim(room)
            if holder == self.node:
                await handler(stanza)
            else:
                self._forward(holder, str(to), etree.tostring(stanza.el), None)

        return placed

    async def _claim(self, room: str) -> str:
        raw = await self.redis.eval(
            _CLAIM, 1, self.keys.room(room), self.node, self.keys.lease(""))
        holder = raw.decode() if isinstance(raw, bytes) else str(raw)
        self._holders[room] = holder
        if holder == self.node:
            self.held.add(room)
        return holder

    def forget_node(self, node: str) -> None:
        for room, holder in list(self._holders.items()):
            if holder == node:
                del self._holders[room]

    async def release(self) -> None:
        """Give up every room this node holds (a clean stop): others claim them at once."""
        if not self.held:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for room in self.held:
                pipe.eval(_RELEASE, 1, self.keys.room(room), self.node)
            await pipe.execute()
        self.held.clear()
