"""The session directory: every bound resource of the domain, whichever node holds it.

Each node writes the entries of its own sessions (``user:<username>`` hashes, one field per
resource) and announces each change on the ``directory`` channel; every node keeps a replica
of the others' entries, loaded at start (after subscribing, so nothing falls between) and kept
current from the channel. Entries of a node whose lease is gone are ignored at once and
removed by the survivor that reaps it (``reaper.py``).

In the replica a resource on another node is a ``RemoteSession``: what routing and features
read of a session (availability, priority, last presence, whether it asked for the roster,
enabled carbons, is congested or detached), and ``send``, which hands the stanza to the
node's inbox. The session registry lists them beside the local sessions, so the delivery
rules of RFC 6121 §8 choose among all of a user's resources wherever they are.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from lxml import etree
from redis.asyncio import Redis

from xmpp_server.cluster.keys import Keys
from xmpp_server.jid import JID
from xmpp_server.locks import WriteBehind, cancelled
from xmpp_server.routing.sessions import CARBONS

if TYPE_CHECKING:
    from xmpp_server.stream.session import Session

log = logging.getLogger(__name__)

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
# Forward(node, to, data, key): queue a serialised stanza for a session on another node.
Forward = Callable[[str, str, bytes, "str | None"], None]


def entry_of(node: str, session: Session) -> dict[str, Any]:
    """The directory entry of a local session: what other nodes need to route to it."""
    presence = session.presence
    return {
        "node": node,
        "available": session.available,
        "priority": session.priority,
        "presence": etree.tostring(presence).decode() if presence is not None else None,
        "interested": session.interested,
        "carbons": bool(session.data.get(CARBONS)),
        "congested": session.congested,
        "detached": session.detached,
    }


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RemoteSession:
    """A resource bound on another node, as this node sees it."""

    filter = None  # its own node applies its output filter (XEP-0352)
    sm = None
    remote = True

    def __init__(self, jid: JID, entry: dict[str, Any], forward: Forward) -> None:
        self.jid = jid
        self.username = jid.local
        self.closed = False
        self.directed: set[JID] = set()
        self._forward = forward
        self.update(entry)

    def update(self, entry: dict[str, Any]) -> None:
        self.node: str = entry["node"]
        self.available = bool(entry.get("available"))
        self.priority = int(entry.get("priority") or 0)
        self._presence_xml: str | None = entry.get("presence")
        self._presence: etree._Element | None = None
        self.interested = bool(entry.get("interested"))
        self.congested = bool(entry.get("congested"))
        self.detached = bool(entry.get("detached"))
        self.data: dict[str, object] = {CARBONS: True} if entry.get("carbons") else {}

    @property
    def presence(self) -> etree._Element | None:
        if self._presence is None and self._presence_xml:
            try:
                self._presence = etree.fromstring(self._presence_xml.encode(), _PARSER)
            except etree.XMLSyntaxError:
                log.error("unreadable presence of %s in the directory", self.jid)
                self._presence_xml = None
        return self._presence

    @presence.setter
    def presence(self, value: etree._Element | None) -> None:
        self._presence = value
        self._presence_xml = None if value is None else self._presence_xml

    def send(self, el: etree._Element, key: str | None = None) -> None:
        if not self.closed:
            self._forward(self.node, str(self.jid), etree.tostring(el), key)

    def send_bytes(self, data: bytes, key: str | None = None) -> None:
        if not self.closed:
            self._forward(self.node, str(self.jid), data, key)

    def close(self) -> None:
        """Only its own node ends a session; here it just stops being written to."""

    def __repr__(self) -> str:
        return f"<RemoteSession {self.jid} on {self.node}>"


class Directory(WriteBehind):
    """This node's entries (written behind, in order per resource) and the others' replica."""

    task_name = "cluster-directory"

    def __init__(self, redis: Redis, keys: Keys, node: str, domain: str,
                 forward: Forward) -> None:
        super().__init__(delay=0.002, batch=256, stop_timeout=5.0)
        self.redis = redis
        self.keys = keys
        self.node = node
        self.domain = domain
        self._forward = forward
        self.live: set[str] = {node}  # nodes holding a lease (kept by ``Membership``)
        self._remote: dict[str, dict[str, RemoteSession]] = {}
        # (username, resource) -> (entry or None for a removal, publications it stands for)
        self._pending: dict[tuple[str, str], tuple[dict[str, Any] | None, int]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._loaded = asyncio.Event()
        # Told of each resource of another node that is gone (unbound, or its node died).
        self.on_removed: Callable[[RemoteSession], None] | None = None
        # Told of each notice another node announced: (topic, key).
        self.on_notice: Callable[[str, str], None] | None = None

    # -- the replica --------------------------------------------------------------------------

    def of_user(self, username: str) -> list[RemoteSession]:
        resources = self._remote.get(username)
        if not resources:
            return []
        return [s for s in resources.values() if s.node in self.live]

    def get(self, username: str, resource: str) -> RemoteSession | None:
        resources = self._remote.get(username)
        session = resources.get(resource) if resources else None
        return session if session is not None and session.node in self.live else None

    def __iter__(self) -> Iterator[RemoteSession]:
        for resources in list(self._remote.values()):
            yield from (s for s in list(resources.values()) if s.node in self.live)

    def _apply(self, node: str, username: str, resource: str,
               entry: dict[str, Any] | None) -> None:
        if node == self.node:
            return
        resources = self._remote.get(username)
        current = resources.get(resource) if resources else None
        if entry is None:
            if current is not None and current.node == node:
                current.closed = True
                assert resources is not None
                del resources[resource]
                if not resources:
                    del self._remote[username]
                if self.on_removed is not None:
                    self.on_removed(current)
            return
        if current is None:
            jid = JID(username, self.domain, resource)
            self._remote.setdefault(username, {})[resource] = RemoteSession(
                jid, entry, self._forward)
        else:
            current.update(entry)

    def forget_node(self, node: str) -> list[RemoteSession]:
        """Drop a dead node's entries from the replica; returns them."""
        gone = []
        for username in list(self._remote):
            resources = self._remote[username]
            for resource, session in list(resources.items()):
                if session.node == node:
                    session.closed = True
                    gone.append(session)
                    del resources[resource]
            if not resources:
                del self._remote[username]
        if self.on_removed is not None:
            for session in gone:
                self.on_removed(session)
        return gone

    async def start_listening(self) -> None:
        """Subscribe, then load every entry: each change is seen either in the load or after."""
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self.keys.channel, self.keys.notices)
        await self._load()
        self._listener = asyncio.get_running_loop().create_task(
            self._listen(pubsub), name="cluster-directory-listener")

    async def _load(self) -> None:
        self._remote.clear()
        prefix = len(self.keys.user(""))
        async for key in self.redis.scan_iter(match=self.keys.user_pattern(), count=500):
            username = (key.decode() if isinstance(key, bytes) else key)[prefix:]
            fields = await self.redis.hgetall(key)
            for resource, raw in fields.items():
                entry = json.loads(raw)
                res = resource.decode() if isinstance(resource, bytes) else resource
                self._apply(entry["node"], username, res, entry)
        self._loaded.set()

    async def _listen(self, pubsub: Any) -> None:
        while True:
            try:
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    change = json.loads(message["data"])
                    if _text(message["channel"]) == self.keys.notices:
                        if change["n"] != self.node and self.on_notice is not None:
                            self.on_notice(change["t"], change["k"])
                        continue
                    self._apply(change["n"], change["u"], change["r"], change["e"])
                # listen() ends at once when the connection was reset unsubscribed: going
                # round again without a pause would never let the loop breathe.
                raise ConnectionError("the directory subscription ended")
            except asyncio.CancelledError:
                await pubsub.aclose()
                raise
            except Exception:
                # The subscription broke: whatever was announced meanwhile is lost, so
                # subscribe again and load everything afresh.
                log.warning("directory subscription lost; loading it again", exc_info=True)
                await asyncio.sleep(0.5)
                try:
                    await pubsub.aclose()
                except Exception:
                    pass
                pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                try:
                    await pubsub.subscribe(self.keys.channel, self.keys.notices)
                    await self._load()
                except Exception:
                    log.warning("directory reload failed", exc_info=True)

    async def stop_listening(self) -> None:
        task, self._listener = self._listener, None
        await cancelled(task)

    # -- this node's entries --------------------------------------------------------------------

    async def announce(self, topic: str, key: str) -> None:
        """Tell the other nodes that the state ``topic`` keeps for ``key`` changed."""
        await self.redis.publish(self.keys.notices,
                                 json.dumps({"n": self.node, "t": topic, "k": key}))

    def publish(self, jid: JID, session: Session, bound: bool) -> None:
        """Queue the current state of a local session (or, ``bound`` false, its removal)."""
        if jid.local is None or jid.resource is None:
            return
        key = (jid.local, jid.resource)
        earlier = self._pending.get(key)  # superseded: written as part of this one
        units = earlier[1] + 1 if earlier is not None else 1
        self._pending[key] = (entry_of(self.node, session) if bound else None, units)
        self._queued += 1
        self._wake.set()

    def _backlog(self) -> int:
        return len(self._pending)

    async def _write_batch(self) -> None:
        batch: list[tuple[tuple[str, str], tuple[dict[str, Any] | None, int]]] = []
        while self._pending and len(batch) < self._batch:
            key = next(iter(self._pending))
            batch.append((key, self._pending.pop(key)))
        try:
            await self._write(batch)
        except Exception:
            log.warning("writing %d directory entries failed; trying again", len(batch),
                        exc_info=True)
            for key, (entry, units) in batch:
                newer = self._pending.get(key)
                if newer is None:
                    self._pending[key] = (entry, units)
                else:  # a newer change queued meanwhile wins, and answers for this one
                    self._pending[key] = (newer[0], newer[1] + units)
            await asyncio.sleep(0.2)
            return
        self._progress.advance(self._progress.done + sum(units for _, (_, units) in batch))

    async def _write(self, batch: list[tuple[tuple[str, str],
                                             tuple[dict[str, Any] | None, int]]]) -> None:
        keys = self.keys
        async with self.redis.pipeline(transaction=False) as pipe:
            for (username, resource), (entry, _) in batch:
                if entry is None:
                    pipe.hdel(keys.user(username), resource)
                else:
                    pipe.hset(keys.user(username), resource, json.dumps(entry))
                    pipe.sadd(keys.node_users(self.node), username)
                pipe.publish(keys.channel, json.dumps(
                    {"n": self.node, "u": username, "r": resource, "e": entry}))
            await pipe.execute()
