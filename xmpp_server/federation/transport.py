"""TCP connections of server-to-server and component streams, as a ``Session`` transport.

One asyncio ``Protocol`` serves both directions: accepted connections (server side of
STARTTLS, direct TLS) and the ones we open to a peer (client side). It adapts the asyncio
transport to what ``Session`` needs (``stream.transport.Transport``) and keeps the peer's
certificate chain once TLS is up, for XEP-0178 authentication.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

from xmpp_server.federation.certs import peer_chain
from xmpp_server.stream.tcp import TcpTransport

if TYPE_CHECKING:
    from xmpp_server.stream.session import Session

log = logging.getLogger(__name__)


class Connection(TcpTransport):
    """One TCP connection feeding one stream.

    ``make_session`` builds the stream once the connection is up (after the handshake for
    direct TLS); returning None refuses the connection. ``tls`` is the context STARTTLS uses
    (None: no STARTTLS); ``server_hostname`` makes this the client side of TLS (SNI).
    """

    def __init__(self, make_session: Callable[[Connection], Session | None],
                 tls: ssl.SSLContext | None, server_hostname: str | None = None,
                 direct_tls: bool = False) -> None:
        super().__init__(tls, direct_tls, server_hostname)
        self._make_session = make_session
        self.chain: list[bytes] = []  # the peer's certificate chain, leaf first (after TLS)
        self.lost: asyncio.Future[None] = asyncio.get_event_loop().create_future()

    def make_session(self) -> Session | None:
        return self._make_session(self)

    def tls_started(self) -> None:
        self.chain = peer_chain(self.ssl_object)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        super().connection_lost(exc)
