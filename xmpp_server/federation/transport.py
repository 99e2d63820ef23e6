"""TCP connections of server-to-server and component streams, as a ``Session`` transport.

One asyncio ``Protocol`` serves both directions: accepted connections (server side of
STARTTLS, direct TLS) and the ones we open to a peer (client side). It adapts the asyncio
transport to what ``Session`` needs (``stream.session.Transport``) and keeps the peer's
certificate chain once TLS is up, for XEP-0178 authentication.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

from xmpp_server.federation.certs import peer_chain

if TYPE_CHECKING:
    from xmpp_server.stream.session import Session

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 30.0


class Connection(asyncio.Protocol):
    """One TCP connection feeding one stream.

    ``make_session`` builds the stream once the connection is up (after the handshake for
    direct TLS); returning None refuses the connection. ``tls`` is the context STARTTLS uses
    (None: no STARTTLS); ``server_hostname`` makes this the client side of TLS (SNI).
    """

    framed = False

    def __init__(self, make_session: Callable[[Connection], Session | None],
                 tls: ssl.SSLContext | None, server_hostname: str | None = None,
                 direct_tls: bool = False) -> None:
        self._make_session = make_session
        self._tls = tls
        self._server_hostname = server_hostname
        self._secure = direct_tls
        self._transport: asyncio.Transport | None = None
        self._peer_ip = ""
        self.session: Session | None = None
        self.chain: list[bytes] = []  # the peer's certificate chain, leaf first (after TLS)
        self.lost: asyncio.Future[None] = asyncio.get_event_loop().create_future()

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self._peer_ip = peer[0] if peer else ""
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._secure:
            self.chain = peer_chain(self.ssl_object)
        self.session = self._make_session(self)
        if self.session is None:
            transport.close()

    def data_received(self, data: bytes) -> None:
        if self.session is not None:
            self.session.feed(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        if self.session is not None:
            self.session.connection_lost()

    # -- Transport for Session ----------------------------------------------------------------

    @property
    def secure(self) -> bool:
        return self._secure

    @property
    def can_starttls(self) -> bool:
        return not self._secure and self._tls is not None

    @property
    def peer_ip(self) -> str:
        return self._peer_ip

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        if not self._secure or self._transport is None:
            return None
        obj = self._transport.get_extra_info("ssl_object")
        return obj if isinstance(obj, ssl.SSLObject) else None

    def write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def pause_reading(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    async def starttls(self) -> None:
        """RFC 6120 §5.4.3.3: the TLS handshake on this connection; on failure it is dropped."""
        assert self._transport is not None and self._tls is not None
        loop = asyncio.get_running_loop()
        try:
            new = await loop.start_tls(
                self._transport, self, self._tls,
                server_side=self._server_hostname is None,
                server_hostname=self._server_hostname,
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT,
            )
        except (TimeoutError, OSError, ssl.SSLError, ConnectionError) as exc:
            log.info("s2s TLS handshake with %s failed: %s", self._peer_ip, exc)
            self._transport.abort()
            return
        if new is None:
            return
        self._transport = new
        self._secure = True
        self.chain = peer_chain(self.ssl_object)
