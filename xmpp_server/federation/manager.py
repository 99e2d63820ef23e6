"""Server-to-server federation (RFC 6120): listeners, one outgoing link per domain pair,
routing of stanzas for remote domains, bouncing, idle and negotiation timeouts.

The router fires ``route/remote`` for a domain that is neither ours nor a cluster peer's;
``route`` sends the stanza over the pair's route: an established or connecting ``Link``
(``s2s_out.py``), or an inbound stream the peer made bidirectional (XEP-0288). What cannot
be delivered comes back to the local sender as an error (``bounce``): what was queued when a
link fails, and the IQ requests still unanswered when the route they took closes or the
server stops (``inflight``; the peer may have lost them with the connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Iterable
from copy import deepcopy
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from xmpp_server.errors import StanzaError
from xmpp_server.federation.certs import Validator, request_client_certificates
from xmpp_server.federation.dialback import hashed_secret
from xmpp_server.federation.limits import Limits
from xmpp_server.federation.link import Link
from xmpp_server.federation.resolver import Resolver
from xmpp_server.federation.s2s_in import IncomingStream, S2SListener
from xmpp_server.federation.s2s_out import OutgoingStream
from xmpp_server.jid import JID
from xmpp_server.stanza import Stanza, error_reply
from xmpp_server.stream import tls

if TYPE_CHECKING:
    from xmpp_server.federation.stream import ServerStream
    from xmpp_server.host import Host

log = logging.getLogger(__name__)

ALPN = ["xmpp-server"]  # XEP-0368 §3 for direct TLS
INFLIGHT_MAX = 10000  # unanswered IQs remembered for bouncing
INFLIGHT_TTL = 120.0  # seconds; longer than clients and router.iq wait for an answer


class Route(Protocol):
    closed: bool

    @property
    def ready(self) -> bool: ...
    def deliver(self, stanza: Stanza) -> bool: ...


def bounceable(stanza: Stanza) -> bool:
    """Errors and results never get errors (RFC 6120 §8.3.1); of presence, available (a
    room join, a contact's status: the client shows why) and subscription requests do."""
    type_ = stanza.type
    if type_ in ("error", "result"):
        return False
    return stanza.kind != "presence" or type_ in (None, "subscribe")


class Federation:
    def __init__(self, host: Host, cert: Path, key: Path) -> None:
        self.host = host
        self.config = config = host.config.s2s
        self.validator = Validator(config.ca_file)
        self.resolver = Resolver(config.hosts, config.nameservers)
        self.limits = Limits(config)
        self.dialback_key = hashed_secret(config.dialback_secret or secrets.token_hex(32))
        self.tls_server = tls.server_context(cert, key)
        self.tls_server.set_alpn_protocols(ALPN)
        request_client_certificates(self.tls_server)
        self.tls_client = tls.client_context(verify=False)  # validated by certs.Validator
        self.tls_client.load_cert_chain(str(cert), str(key))  # for SASL EXTERNAL (XEP-0178)
        self.tls_direct = tls.client_context(verify=False)
        self.tls_direct.load_cert_chain(str(cert), str(key))
        self.tls_direct.set_alpn_protocols(ALPN)
        self.links: dict[tuple[str, str], Link] = {}
        self.routes: dict[tuple[str, str], Route] = {}
        self.incoming: set[IncomingStream] = set()
        # (iq id, local sender) -> (a copy of the request, the route it took, when)
        self.inflight: dict[tuple[str, str], tuple[Stanza, Route, float]] = {}
        self.listeners: list[S2SListener] = []
        self._sweeper: asyncio.Task[None] | None = None
        self._handler = self.route  # one bound method: Events.off finds it by identity

    @property
    def port(self) -> int:
        return self.listeners[0].port

    def serves(self, domain: str) -> bool:
        return domain == self.host.domain or domain in self.host.router.components

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        config = self.config
        self.listeners.append(S2SListener(self, config.bind, config.port, self.tls_server,
                                          direct_tls=False))
        if config.direct_tls_port:
            self.listeners.append(S2SListener(self, config.bind, config.direct_tls_port,
                                              self.tls_server, direct_tls=True))
        for listener in self.listeners:
            await listener.start()
        self.host.events.on("route/remote", self._handler)
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="s2s-sweeper")

    def stop_accepting(self) -> None:
        """Shutdown, first step: no new inbound connections; streams keep working."""
        for listener in self.listeners:
            listener.close()

    async def stop(self) -> None:
        """Shutdown: close every stream; what is queued or unanswered is bounced.

        Called after the client sessions were closed: first their ends are seen through
        (unavailable presence for remote contacts, RFC 6121 §4.5.2, still goes out).
        """
        host = self.host
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                while len(host.sessions):  # noqa: ASYNC110 (connection_lost has no event)
                    await asyncio.sleep(0.01)
        await host.drain(timeout=5.0)
        self.host.events.off("route/remote", self._handler)
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None
        self.stop_accepting()
        bounces = self._bounce_inflight(None)
        streams: list[ServerStream] = list(self.incoming)
        for link in list(self.links.values()):
            queued = list(link.queue)
            link.queue.clear()
            bounces += self.bounce(queued, "remote-server-timeout", "the server is shutting down")
            if link.stream is not None:
                streams.append(link.stream)
            link.close()
        for stream in streams:
            stream.stream_error("system-shutdown", "the server is shutting down")
        waits = [s.connection.lost for s in streams] + bounces
        if waits:
            await asyncio.wait(waits, timeout=2.0)
        for listener in self.listeners:
            await listener.wait_closed()
        self.listeners.clear()
        self.links.clear()
        self.routes.clear()

    # -- routing ------------------------------------------------------------------------------

    def route(self, stanza: Stanza) -> bool:
        """``route/remote``: a stanza from one of our domains to another server's."""
        frm, to = stanza.frm, stanza.to
        if frm is None or to is None:
            return False
        local, remote = frm.domain, to.domain
        if not self.serves(local):
            log.info("s2s: dropping %r: %s is not ours to send from", stanza, local)
            return True
        if self.limits.blocked(remote):
            raise StanzaError("policy-violation", f"{remote} is blocked here")
        if remote in self.host.config.components.secrets:
            raise StanzaError("service-unavailable", f"the component {remote} is not connected")
        pair = (local, remote)
        route = self.routes.get(pair)
        if route is None or route.closed or not route.deliver(stanza):
            route = self.link(local, remote)
            if not route.deliver(stanza):
                return False
        if route.ready:
            self.track(stanza, route)  # (a queued one is tracked when the link sends it)
        return True

    def track(self, stanza: Stanza, route: Route) -> None:
        """Remember an IQ request written to a peer until its answer comes back."""
        if stanza.kind != "iq" or stanza.type not in ("get", "set") or not stanza.id:
            return
        inflight = self.inflight
        if len(inflight) >= INFLIGHT_MAX:
            del inflight[next(iter(inflight))]  # the oldest
        copy = Stanza(deepcopy(stanza.el), stanza.kind, stanza.frm, stanza.to)
        inflight[(stanza.id or "", str(stanza.frm))] = (copy, route, time.monotonic())

    def answered(self, iq_id: str | None, to: JID) -> None:
        """An IQ result or error came from a peer: the request is no longer in flight."""
        if self.inflight and iq_id:
            self.inflight.pop((iq_id, str(to)), None)

    def _bounce_inflight(self, route: Route | None) -> list[asyncio.Task[Any]]:
        """IQ requests that went over ``route`` (None: any) and got no answer."""
        gone = [key for key, (_, r, _) in self.inflight.items() if route is None or r is route]
        return self.bounce([self.inflight.pop(key)[0] for key in gone], "remote-server-timeout",
                           "the connection to the remote server was lost")

    def link(self, local: str, remote: str) -> Link:
        """The outgoing link of a pair, made if there is none."""
        pair = (local, remote)
        link = self.links.get(pair)
        if link is None or link.closed:
            link = self.links[pair] = Link(self, local, remote)
            route = self.routes.get(pair)
            if route is None or route.closed:
                self.routes[pair] = link
        return link

    async def verify(self, local: str, remote: str, stream_id: str, key: str) -> str:
        """Dialback (XEP-0220 §2.1.2): ask the Authoritative server of ``remote``."""
        return await self.link(local, remote).verify(stream_id, key)

    def add_route(self, local: str, remote: str, stream: IncomingStream) -> None:
        """XEP-0288: an authenticated bidirectional inbound stream may carry our stanzas."""
        route = self.routes.get((local, remote))
        if route is None or route.closed:
            self.routes[(local, remote)] = stream

    def link_ready(self, link: Link) -> None:
        pair = (link.local, link.remote)
        if self.links.get(pair) is link:
            self.routes[pair] = link

    def link_closed(self, link: Link) -> None:
        self._bounce_inflight(link)
        pair = (link.local, link.remote)
        if self.links.get(pair) is link:
            del self.links[pair]
        if self.routes.get(pair) is link:
            del self.routes[pair]

    def stream_ended(self, stream: ServerStream) -> None:
        self.limits.release(stream)
        if isinstance(stream, IncomingStream):
            self.incoming.discard(stream)
            self._bounce_inflight(stream)
            for pair in [p for p, r in self.routes.items() if r is stream]:
                del self.routes[pair]
        elif isinstance(stream, OutgoingStream):
            stream.link.stream_ended(stream)

    def bounce(self, stanzas: Iterable[Stanza], condition: str,
               text: str) -> list[asyncio.Task[Any]]:
        """The stanzas could not be sent: errors back to their local senders."""
        error = StanzaError(condition, text)
        tasks = []
        for stanza in stanzas:
            if not bounceable(stanza) or stanza.to is None or stanza.frm is None:
                continue
            reply = error_reply(stanza, error)
            tasks.append(self.host.spawn(self.host.router.route(
                Stanza(reply, stanza.kind, stanza.to, stanza.frm)), name="s2s-bounce"))
        return tasks

    # -- timeouts -----------------------------------------------------------------------------

    async def _sweep(self) -> None:
        config = self.config
        period = max(0.1, min(config.idle_timeout, config.connect_timeout) / 4)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            while self.inflight:
                key, (_, _, when) = next(iter(self.inflight.items()))
                if now - when < INFLIGHT_TTL:
                    break
                del self.inflight[key]
            for stream in list(self.incoming):
                if stream.closed:
                    continue
                if not stream.is_authenticated and now - stream.created > config.connect_timeout:
                    stream.stream_error("connection-timeout", "negotiation took too long")
                elif stream.is_authenticated and now - stream.last_active > config.idle_timeout:
                    stream.close()
            for link in list(self.links.values()):
                out = link.stream
                if out is not None and now - out.last_active > config.idle_timeout:
                    log.debug("s2s: closing idle %s -> %s", link.local, link.remote)
                    with contextlib.suppress(Exception):
                        link.close()
