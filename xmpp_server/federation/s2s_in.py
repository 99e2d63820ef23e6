"""Inbound server-to-server streams (RFC 6120): the listeners and the receiving side.

Negotiation, as the receiving entity: the peer's header names the pair (``to``: one of our
domains, ``from``: the peer's); until TLS only STARTTLS is offered, and it is required
(RFC 6120 §5.3.1); over TLS we offer SASL EXTERNAL when the peer's certificate validates for
its domain (XEP-0178), dialback (XEP-0220, ``dialback.py``) and bidirectional streams
(XEP-0288). Once a domain pair is authenticated the peer's stanzas for it are routed; with
bidi the stream also carries our stanzas to that peer (``Federation.add_route``).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import TYPE_CHECKING

from lxml import etree

from xmpp_server import namespaces as ns
from xmpp_server.errors import StreamError
from xmpp_server.federation import auth, dialback
from xmpp_server.federation.stream import STREAM_TAG, ServerStream, domain_of
from xmpp_server.federation.transport import Connection
from xmpp_server.listening import cannot_listen
from xmpp_server.stanza import Stanza
from xmpp_server.stream.parser import StreamHeader
from xmpp_server.stream.tcp import HANDSHAKE_TIMEOUT, close_listener

if TYPE_CHECKING:
    from xmpp_server.federation.manager import Federation

log = logging.getLogger(__name__)

_TLS = "{" + ns.TLS + "}"


class IncomingStream(ServerStream):
    receiving = True

    def __init__(self, federation: Federation, transport: Connection) -> None:
        super().__init__(federation, transport)
        self.sasl_done = False

    # -- negotiation --------------------------------------------------------------------------

    def stream_header(self, header: StreamHeader) -> None:
        attrib = header.attrib
        to = domain_of(attrib.get("to")) or self.local or self.host.domain
        frm = domain_of(attrib.get("from"))
        federation = self.federation
        first = not self.local
        if first:
            self.local = to if federation.serves(to) else self.host.domain
            self.remote = frm
        self.open_stream()  # RFC 6120 §4.9.1.1: errors come after our header
        if header.tag != STREAM_TAG or header.default_ns != ns.SERVER:
            raise StreamError("invalid-namespace", "expected a jabber:server stream")
        if not attrib.get("version", "0.9").startswith("1."):
            raise StreamError("unsupported-version", "STARTTLS needs an XMPP 1.0 stream")
        if not federation.serves(to):
            raise StreamError("host-unknown", f"this server does not serve {to}")
        if not first and ((frm and frm != self.remote) or to != self.local):
            raise StreamError("improper-addressing", "the restarted stream names another pair")
        if frm and first:
            if federation.serves(frm):
                raise StreamError("invalid-from", "that is one of our own domains")
            if federation.limits.blocked(frm):
                raise StreamError("policy-violation", f"{frm} is blocked here")
        self.send_features(self._features())

    def _features(self) -> etree._Element:
        feats = self.features_element()
        config = self.federation.config
        if not self.transport.secure:
            starttls = etree.SubElement(feats, _TLS + "starttls", nsmap={None: ns.TLS})
            etree.SubElement(starttls, _TLS + "required")
            return feats  # RFC 6120 §5.3.1: nothing else before TLS
        if self.sasl_done:
            return feats  # authenticated: nothing left to negotiate (RFC 6120 §4.3.2)
        auth.offer(self, feats)
        if config.dialback:
            dialback_feature = etree.SubElement(
                feats, "{" + ns.DIALBACK_FEATURE + "}dialback",
                nsmap={None: ns.DIALBACK_FEATURE})
            etree.SubElement(dialback_feature, "{" + ns.DIALBACK_FEATURE + "}errors")
        if config.bidi:
            etree.SubElement(feats, "{" + ns.BIDI_FEATURE + "}bidi",
                             nsmap={None: ns.BIDI_FEATURE})
        return feats

    async def element(self, el: etree._Element) -> None:
        tag = el.tag
        if not isinstance(tag, str):
            return
        if tag.startswith(_TLS):
            await self._starttls(el)
            return
        if not self.transport.secure:
            raise StreamError("not-authorized", "STARTTLS first")
        if tag.startswith(auth.SASL):
            auth.incoming(self, el)
        elif tag == dialback.RESULT:
            await dialback.result_request(self, el)
        elif tag == dialback.VERIFY:
            dialback.verify_request(self, el)
        elif tag == "{" + ns.BIDI + "}bidi":
            if not self.is_authenticated:
                self.bidi = self.federation.config.bidi  # XEP-0288 §2
        else:
            raise StreamError("unsupported-stanza-type", tag)

    async def _starttls(self, el: etree._Element) -> None:
        if el.tag != _TLS + "starttls" or not self.transport.can_starttls:
            self.write(f"<failure xmlns='{ns.TLS}'/>".encode())
            self.close()
            return
        self.write(f"<proceed xmlns='{ns.TLS}'/>".encode())
        self.restart()
        await self.transport.starttls()

    # -- authenticated ------------------------------------------------------------------------

    def authenticated_pair(self, remote: str, local: str, method: str) -> None:
        self.authenticate(remote, local)
        self.auth_method = method
        log.info("s2s: inbound stream %s <- %s authenticated", local, remote)
        if self.bidi:
            self.federation.add_route(local, remote, self)

    @property
    def ready(self) -> bool:
        return not self.closed

    def deliver(self, stanza: Stanza) -> bool:
        """XEP-0288: our stanza to the peer over its own (bidirectional) stream."""
        if self.closed:
            return False
        self.send(stanza.el)
        return True


class S2SListener:
    """One listening socket (STARTTLS, or direct TLS per XEP-0368) for peer servers."""

    def __init__(self, federation: Federation, bind: str, port: int,
                 tls: ssl.SSLContext, direct_tls: bool) -> None:
        self.federation = federation
        self.bind = bind
        self.port = port
        self.tls = tls
        self.direct_tls = direct_tls
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: Connection(self._accept, self.tls, direct_tls=self.direct_tls),
                self.bind, self.port, reuse_address=True,
                reuse_port=self.federation.host.reuse_port or None,
                ssl=self.tls if self.direct_tls else None,
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT if self.direct_tls else None,
            )
        except OSError as exc:
            what, key = (("s2s direct TLS", "s2s.direct_tls_port") if self.direct_tls
                         else ("s2s", "s2s.port"))
            raise cannot_listen(what, self.bind, self.port, key, exc) from exc
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("s2s listening on %s:%d%s", self.bind, self.port,
                 " (direct TLS)" if self.direct_tls else "")

    def _accept(self, connection: Connection) -> IncomingStream | None:
        federation = self.federation
        if len(federation.incoming) >= federation.config.max_connections:
            log.warning("s2s: refusing %s: s2s.max_connections reached", connection.peer_ip)
            return None
        stream = IncomingStream(federation, connection)
        federation.incoming.add(stream)
        return stream

    def close(self) -> None:
        """Stop accepting connections."""
        if self._server is not None:
            self._server.close()

    async def wait_closed(self) -> None:
        """Shutdown, after the streams were told: what is still connected is cut."""
        server, self._server = self._server, None
        if server is not None:
            await close_listener(server, [s.connection for s in self.federation.incoming],
                                 grace=0.1)
