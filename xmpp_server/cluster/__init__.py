"""One domain on several processes and machines: sessions and delivery through Redis.

Each node (an ``xmppd serve`` process) keeps its clients' streams; what the nodes share is in
PostgreSQL (everything stored) and Redis (who is where, and stanzas in flight):

- ``membership.py``: leases: which nodes are alive; a node that loses its lease stops serving;
- ``directory.py``: every bound resource, replicated on every node; the session registry lists
  other nodes' resources as ``RemoteSession`` objects, so routing needs no special case;
- ``inbox.py``: a stanza for a session on another node goes to that node's stream and is
  acknowledged there only once delivered or stored (at least once);
- ``reaper.py``: after a node dies, one survivor cleans up and routes what it left.

See docs/cluster.md for the design, the guarantees and how to run it.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Awaitable, Callable

from lxml import etree
from redis.asyncio import Redis

from storage.unavailable import safe_url
from xmpp_server.cluster.directory import Directory, RemoteSession
from xmpp_server.cluster.inbox import Inbox, Outbox
from xmpp_server.cluster.keys import Keys
from xmpp_server.cluster.membership import Membership
from xmpp_server.cluster.reaper import Reaper, incarnation_of
from xmpp_server.cluster.rooms import RoomPlacement
from xmpp_server.config import ClusterConfig
from xmpp_server.config.types import ConfigError
from xmpp_server.host import Host
from xmpp_server.jid import JID
from xmpp_server.stanza import KINDS, Stanza
from xmpp_server.stream.session import Session

log = logging.getLogger(__name__)

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def node_name(config: ClusterConfig, worker: int | None = None) -> str:
    """``cluster.node``, else the host name; with ``--workers``, the worker's number added."""
    name = config.node or socket.gethostname()
    return f"{name}-{worker}" if worker is not None else name


class Cluster:
    def __init__(self, host: Host, config: ClusterConfig, worker: int | None = None,
                 on_lost: Callable[[str], None] | None = None) -> None:
        self.host = host
        self.config = config
        self.name = node_name(config, worker)
        self.node = f"{self.name}/{host.incarnation}"
        # A command that hangs longer than this fails; the lease has its own, shorter limit.
        self.redis = Redis.from_url(config.redis_url, socket_timeout=10,
                                    socket_connect_timeout=config.lease_ttl)
        self.keys = keys = Keys(host.domain)
        self.outbox = Outbox(self.redis, keys, self.node, self._bounced)
        self.directory = Directory(self.redis, keys, self.node, host.domain,
                                   self.outbox.forward)
        self.inbox = Inbox(self.redis, keys, self.node, self.deliver, host.durable)
        self.reaper = Reaper(self.redis, keys, self.node, host.domain, self.directory,
                             self.deliver, host.durable, host.events)
        self.rooms = RoomPlacement(self.redis, keys, self.node, self.outbox.forward,
                                   lambda: self.membership.live)
        self.membership = Membership(self.redis, keys, self.node, config.lease_ttl,
                                     self._live, self._dead, self._lost)
        self._on_lost = on_lost
        self._joined = False
        self._muc_handler: Callable[[Stanza], Awaitable[None]] | None = None

    # -- life ---------------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self.redis.ping()
        except Exception as exc:
            raise ConfigError(f"cluster.redis_url: cannot reach Redis at "
                              f"{safe_url(self.config.redis_url)}: {exc}") from None
        self.outbox.start()
        self.directory.start()
        await self.directory.start_listening()
        await self.inbox.create()
        await self.membership.join({"name": self.name, "started": time.time()})
        self._joined = True
        sessions = self.host.sessions
        sessions.remote = self.directory
        sessions.watchers.append(self._watch)
        self.directory.on_removed = self._removed
        self.directory.on_notice = self._notice
        self.host.announcers.append(self.directory.announce)
        components = self.host.router.components
        muc = self.host.config.muc.domain
        if muc in components:
            self._muc_handler = components[muc]
            components[muc] = self.rooms.wrap(self._muc_handler)
        self.host.barriers.append(self.outbox.flush)
        self.host.backlogs.append(self.outbox)  # bounded: producers wait when Redis lags
        self.host.live_holders = self.live_incarnations
        self.host.readiness["cluster"] = self.ready
        self.inbox.start()
        self.membership.start()
        log.info("cluster node %s joined (%d live)", self.node, len(self.membership.live))

    async def stop(self) -> None:
        """Leave: this node's entries are gone (its sessions ended first), what is in flight
        to it is routed again, then the lease goes. A node that never joined (Redis did not
        answer at start) only lets go of what it started."""
        if not self._joined:
            await self.outbox.stop()
            await self.directory.stop()
            await self.directory.stop_listening()
            await self.redis.aclose()
            return
        sessions = self.host.sessions
        if self._watch in sessions.watchers:
            sessions.watchers.remove(self._watch)
        await self.directory.flush()
        muc = self.host.config.muc.domain
        if self._muc_handler is not None:
            self.host.router.components[muc] = self._muc_handler
        try:
            await self.rooms.release()
        except Exception:
            log.warning("giving up the rooms failed; they pass on when the lease ends",
                        exc_info=True)
        await self.membership.stop()
        await self.inbox.stop()
        await self.outbox.stop()
        await self.directory.stop()
        await self.directory.stop_listening()
        sessions.remote = None
        if self.directory.announce in self.host.announcers:
            self.host.announcers.remove(self.directory.announce)
        if self.outbox in self.host.backlogs:
            self.host.backlogs.remove(self.outbox)
        if self.outbox.flush in self.host.barriers:
            self.host.barriers.remove(self.outbox.flush)
        try:
            await self._leave()
        finally:
            await self.redis.aclose()

    async def _leave(self) -> None:
        stream = self.keys.inbox(self.node)
        if self.membership.lost:
            return
        if await self.redis.xlen(stream):
            # Stanzas arrived after the inbox stopped: a survivor routes them (reaper.py).
            await self.redis.delete(self.keys.lease(self.node))
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.lease(self.node), stream, self.keys.node_users(self.node))
            pipe.hdel(self.keys.nodes, self.node)
            await pipe.execute()

    # -- what the parts report ----------------------------------------------------------------

    def _watch(self, jid: JID, session: Session, bound: bool) -> None:
        self.directory.publish(jid, session, bound)

    def _live(self, live: set[str]) -> None:
        self.directory.live = live

    def _bounced(self, node: str, to: str, data: bytes, key: str | None) -> None:
        """A node had no inbox any more (it left, or was reaped): route the stanza here."""
        self.membership.presume_dead(node)
        self.rooms.forget_node(node)
        self.host.spawn(self.deliver(to, data, key), name="cluster-bounced")

    async def _dead(self, node: str) -> None:
        self.rooms.forget_node(node)
        await self.reaper.reap(node)

    def _notice(self, topic: str, key: str) -> None:
        self.host.spawn(self.host.events.notify(f"notice/{topic}", key), name="cluster-notice")

    def _removed(self, session: RemoteSession) -> None:
        """A resource on another node is gone: features that keep it (room occupants) let go."""
        self.host.spawn(self.host.events.notify("remote-session-ended", session),
                        name="remote-session-ended")

    def live_incarnations(self) -> set[str]:
        return {incarnation_of(node) for node in self.membership.live}

    def _lost(self, why: str) -> None:
        if self._on_lost is not None:
            self._on_lost(why)

    # -- delivery -----------------------------------------------------------------------------

    async def deliver(self, to: str, data: bytes, key: str | None) -> None:
        """A stanza from another node (or a dead node's inbox) for the session ``to``."""
        host = self.host
        log.debug("%s delivers to %s: %.120s", self.node, to, data)
        jid = JID.parse(to)
        session = host.sessions.local(jid)
        if session is not None and not session.closed:
            if session.filter is None:
                session.send_bytes(data, key)
            else:
                session.send(etree.fromstring(data, _PARSER), key)
            return
        # The session ended (or lived on a dead node): route the stanza again, as if it had
        # just arrived: the user's other resources, offline storage, or nowhere (RFC 6121 §8).
        el = etree.fromstring(data, _PARSER)
        kind = KINDS.get(el.tag)
        if kind is None:
            return
        frm = el.get("from")
        stanza = Stanza(el, kind, JID.parse(frm) if frm else host.router.jid, jid)
        if await host.events.fire("message/again", stanza):
            return  # a message delivered or stored once already has its id and archive row
        await host.router.route(stanza)

    async def ready(self) -> bool:
        """Redis answers and this node still holds its lease."""
        return not self.membership.lost and bool(await self.redis.ping())
