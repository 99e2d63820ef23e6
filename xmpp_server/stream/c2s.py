"""Client-to-server listeners: TCP with STARTTLS and direct TLS (XEP-0368).

Each connection is an asyncio ``Protocol`` (no per-connection task while idle) that adapts its
transport to ``Session``. One sweeper task per listener pings silent clients (XEP-0199) and
closes the ones that do not answer, and drops connections that never authenticate.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from typing import TYPE_CHECKING

from xmpp_server import namespaces as ns
from xmpp_server.stanza import element, sub
from xmpp_server.stream.session import Session

if TYPE_CHECKING:
    from xmpp_server.host import Host

log = logging.getLogger(__name__)


class C2SConnection(asyncio.Protocol):
    """A TCP client connection; also the Session's ``Transport``."""

    framed = False

    def __init__(self, listener: C2SListener, direct_tls: bool) -> None:
        self.listener = listener
        self._secure = direct_tls
        self._transport: asyncio.Transport | None = None
        self.session: Session | None = None
        self._peer_ip = ""

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self._peer_ip = peer[0] if peer else ""
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if len(self.listener.connections) >= self.listener.host.config.c2s.max_connections:
            transport.close()
            return
        self.session = Session(self.listener.host, self)
        self.listener.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self.session is not None:
            self.session.feed(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.listener.connections.discard(self)
        if self.session is not None:
            self.session.connection_lost()

    # -- Transport for Session ----------------------------------------------------------------

    @property
    def secure(self) -> bool:
        return self._secure

    @property
    def can_starttls(self) -> bool:
        return not self._secure and self.listener.host.ssl_context is not None

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
        if self._transport is not None:
            self._transport.write(data)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def pause_reading(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    async def starttls(self) -> None:
        host = self.listener.host
        assert self._transport is not None and host.ssl_context is not None
        loop = asyncio.get_running_loop()
        try:
            new = await loop.start_tls(
                self._transport, self, host.ssl_context, server_side=True,
                ssl_handshake_timeout=30,
            )
        except (TimeoutError, OSError, ssl.SSLError, ConnectionError) as exc:
            log.info("TLS handshake with %s failed: %s", self._peer_ip, exc)
            self._transport.abort()
            return
        if new is None:
            return
        self._transport = new
        self._secure = True


class C2SListener:
    """One listening socket (plain+STARTTLS, or direct TLS) and its connections."""

    def __init__(self, host: Host, bind: str, port: int, direct_tls: bool) -> None:
        self.host = host
        self.bind = bind
        self.port = port
        self.direct_tls = direct_tls
        self.connections: set[C2SConnection] = set()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        config = self.host.config.c2s
        self._server = await loop.create_server(
            lambda: C2SConnection(self, self.direct_tls),
            self.bind,
            self.port,
            backlog=config.backlog,
            ssl=self.host.ssl_context if self.direct_tls else None,
            ssl_handshake_timeout=30 if self.direct_tls else None,
            reuse_address=True,
        )
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]
        self._sweeper = loop.create_task(self._sweep(), name=f"c2s-sweeper-{self.port}")
        log.info("c2s listening on %s:%d%s", self.bind, self.port,
                 " (direct TLS)" if self.direct_tls else "")

    async def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None

    async def close_sessions(self, condition: str = "system-shutdown") -> None:
        for conn in list(self.connections):
            if conn.session is not None:
                conn.session.stream_error(condition, "the server is shutting down")
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _sweep(self) -> None:
        """XEP-0199 server pings for silent clients; drop unauthenticated idlers."""
        config = self.host.config.c2s
        interval = config.ping_interval
        if interval <= 0:
            return
        timeout = config.ping_timeout
        period = max(0.2, min(interval, timeout) / 2)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for conn in list(self.connections):
                session = conn.session
                if session is None or session.closed:
                    continue
                idle = now - session.last_read
                if session.ping_pending:
                    if idle > interval + timeout:
                        session.stream_error("connection-timeout", "no answer to ping")
                elif idle > interval:
                    if session.jid is None:
                        session.stream_error("connection-timeout", "negotiation took too long")
                        continue
                    session.ping_pending = True
                    ping = element("iq", type="get", id=f"srvping-{int(now)}",
                                   to=str(session.jid), from_=self.host.domain)
                    sub(ping, "{" + ns.PING + "}ping")
                    session.send(ping)
