"""XEP-0114: Jabber Component Protocol — external components on a shared secret.

A component opens a ``jabber:component:accept`` stream to its domain (a key of
``components.secrets``) and proves the secret with ``<handshake>``: the hex SHA-1 of the
stream id followed by the secret (§3). It then receives every stanza the router has for its
domain (``router.components``) and may send stanzas from any address at its domain, to local
users, other components or remote servers. One connection per domain: a second one gets
``<conflict/>``. XEP-0225 (SASL-based component connections) is not implemented.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from typing import TYPE_CHECKING

from lxml import etree

from xmpp_server import namespaces as ns
from xmpp_server.errors import JIDError, StreamError
from xmpp_server.federation.stream import STREAM_TAG, domain_of
from xmpp_server.federation.transport import Connection
from xmpp_server.federation.wire import to_client, wire_bytes
from xmpp_server.jid import JID
from xmpp_server.listening import cannot_listen
from xmpp_server.stanza import Stanza
from xmpp_server.stream.parser import StreamHeader
from xmpp_server.stream.session import Session
from xmpp_server.stream.tcp import close_listener

if TYPE_CHECKING:
    from xmpp_server.host import Host

log = logging.getLogger(__name__)

_ACCEPT = "{" + ns.COMPONENT + "}"
_KINDS = {_ACCEPT + kind: kind for kind in ("message", "presence", "iq")}


class ComponentStream(Session):
    def __init__(self, listener: ComponentListener, transport: Connection) -> None:
        super().__init__(listener.host, transport)
        self.listener = listener
        self.domain = ""
        self.bound = False

    async def handle(self, item: StreamHeader | etree._Element | None) -> None:
        if item is None:
            self.close()
        elif isinstance(item, StreamHeader):
            self._header(item)
        elif item.tag == _ACCEPT + "handshake":
            self._handshake(item)
        elif item.tag in _KINDS and self.bound:
            await self._stanza(item)
        elif not self.bound:
            raise StreamError("not-authorized", "handshake first")
        else:
            raise StreamError("unsupported-stanza-type", str(item.tag))

    def _header(self, header: StreamHeader) -> None:
        self.domain = domain_of(header.attrib.get("to"))
        self.open_stream()
        if header.tag != STREAM_TAG or header.default_ns != ns.COMPONENT:
            raise StreamError("invalid-namespace", "expected a jabber:component:accept stream")
        if self.domain not in self.listener.secrets:
            raise StreamError("host-unknown", f"no component is configured for {self.domain}")

    def open_stream(self, to: str | None = None) -> None:
        self.stream_id = secrets.token_hex(16)
        self.header_sent = True
        self.transport.write(
            f"<?xml version='1.0'?><stream:stream xmlns='{ns.COMPONENT}' "
            f"xmlns:stream='{ns.STREAM}' from='{self.domain or self.host.domain}' "
            f"id='{self.stream_id}'>".encode())

    def _handshake(self, el: etree._Element) -> None:
        secret = self.listener.secrets.get(self.domain)
        if self.bound or secret is None:
            raise StreamError("not-authorized", "unexpected handshake")
        expected = hashlib.sha1((self.stream_id + secret).encode()).hexdigest()
        if not hmac.compare_digest(expected, (el.text or "").strip().lower()):
            raise StreamError("not-authorized", "wrong secret")
        router = self.host.router
        if self.domain in router.components or self.domain == self.host.domain:
            raise StreamError("conflict", f"{self.domain} is already connected")
        router.components[self.domain] = self._deliver
        self.bound = True
        self.transport.write(f"<handshake xmlns='{ns.COMPONENT}'/>".encode())
        log.info("component %s connected from %s", self.domain, self.transport.peer_ip)

    async def _deliver(self, stanza: Stanza) -> None:
        """Router handler: a stanza for the component's domain."""
        self.send(stanza.el)

    def send(self, el: etree._Element, key: str | None = None) -> None:
        if not self.closed:
            self.transport.write(wire_bytes(el, ns.COMPONENT))

    async def _stanza(self, el: etree._Element) -> None:
        try:
            frm = JID.parse(el.get("from") or "")
            to = JID.parse(el.get("to") or "")
        except JIDError:
            raise StreamError("improper-addressing", "from and to are required") from None
        if frm.domain != self.domain:
            raise StreamError("invalid-from", f"a component sends from {self.domain} only")
        kind = _KINDS[el.tag]
        await self.host.router.route(Stanza(to_client(el, ns.COMPONENT), kind, frm, to))

    def _end(self) -> None:
        if self._ended:
            return
        self._ended = True
        self.listener.streams.discard(self)
        router = self.host.router
        if self.bound and router.components.get(self.domain) == self._deliver:
            del router.components[self.domain]
            log.info("component %s disconnected", self.domain)


class ComponentListener:
    def __init__(self, host: Host) -> None:
        config = host.config.components
        self.host = host
        self.secrets = config.secrets
        self.bind = config.bind
        self.port = config.port
        self.streams: set[ComponentStream] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: Connection(self._accept, None), self.bind, self.port, reuse_address=True,
                reuse_port=self.host.reuse_port or None)
        except OSError as exc:
            raise cannot_listen("components", self.bind, self.port, "components.port",
                                exc) from exc
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("components listening on %s:%d", self.bind, self.port)

    def _accept(self, connection: Connection) -> ComponentStream:
        stream = ComponentStream(self, connection)
        self.streams.add(stream)
        return stream

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        streams = list(self.streams)
        for stream in streams:
            stream.stream_error("system-shutdown", "the server is shutting down")
        lost = [s.transport.lost for s in streams if isinstance(s.transport, Connection)]
        if lost:
            await asyncio.wait(lost, timeout=2.0)
        server, self._server = self._server, None
        if server is not None:
            await close_listener(server, [s.transport for s in streams
                                          if isinstance(s.transport, Connection)], grace=0.1)
