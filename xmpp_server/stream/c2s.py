"""Client-to-server listeners: TCP with STARTTLS and direct TLS (XEP-0368).

Each connection is an asyncio ``Protocol`` (no per-connection task while idle) that adapts its
transport to ``Session``. One sweeper task per listener pings silent clients (XEP-0199) and
closes the ones that do not answer, and drops connections that never authenticate.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from xmpp_server import namespaces as ns
from xmpp_server.stanza import element, sub
from xmpp_server.stream.session import Session
from xmpp_server.stream.tcp import TcpTransport, close_listener

if TYPE_CHECKING:
    from xmpp_server.host import Host

log = logging.getLogger(__name__)


class C2SConnection(TcpTransport):
    """A TCP client connection; also the Session's ``Transport``."""

    def __init__(self, listener: C2SListener, direct_tls: bool) -> None:
        super().__init__(listener.host.ssl_context, direct_tls)
        self.listener = listener

    def make_session(self) -> Session | None:
        listener = self.listener
        if len(listener.connections) >= listener.host.config.c2s.max_connections:
            return None
        listener.connections.add(self)
        return Session(listener.host, self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.listener.connections.discard(self)
        super().connection_lost(exc)


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
        """Every session gets the stream error; connections not gone in time are cut."""
        for conn in list(self.connections):
            if conn.session is not None:
                conn.session.stream_error(condition, "the server is shutting down")
        server, self._server = self._server, None
        if server is not None:
            await close_listener(server, self.connections)

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
