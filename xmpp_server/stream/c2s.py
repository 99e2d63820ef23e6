"""Client-to-server listeners: TCP with STARTTLS and direct TLS (XEP-0368).

Each connection is an asyncio ``Protocol`` (no per-connection task while idle) that adapts its
transport to ``Session``. One sweeper task per listener pings silent clients (XEP-0199) and
closes the ones that do not answer, and drops connections that do not authenticate in time
(``negotiation_overdue``, shared with the WebSocket and BOSH transports).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from xmpp_server import namespaces as ns
from xmpp_server.listening import cannot_listen
from xmpp_server.stanza import element, sub
from xmpp_server.stream.session import Session
from xmpp_server.stream.tcp import TcpTransport, close_listener

if TYPE_CHECKING:
    from xmpp_server.config.network import C2SConfig
    from xmpp_server.host import Host

log = logging.getLogger(__name__)


def negotiation_overdue(session: Session, config: C2SConfig, now: float) -> str | None:
    """Why an unauthenticated stream is closed now (its connection-timeout text), or None.

    A deadline from connect (``c2s.auth_timeout``), so that a client trickling a byte now and
    then cannot keep a stream that never logs in; and silence (``c2s.ping_interval``).
    """
    if session.jid is not None or session.closed:
        return None
    if config.auth_timeout > 0 and now - session.started > config.auth_timeout:
        return "authentication took too long"
    if config.ping_interval > 0 and now - session.last_read > config.ping_interval:
        return "negotiation took too long"
    return None


class C2SConnection(TcpTransport):
    """A TCP client connection; also the Session's ``Transport``."""

    def __init__(self, listener: C2SListener, direct_tls: bool) -> None:
        super().__init__(listener.host.ssl_context, direct_tls,
                         max_output=listener.host.config.limits.max_output_buffer_bytes)
        self.listener = listener
        self._admitted = False

    def make_session(self) -> Session | None:
        listener = self.listener
        host = listener.host
        session = Session(host, self)
        if len(listener.connections) >= host.config.c2s.max_connections:
            # RFC 6120 §4.9.3.15 (the header first: §4.9.1.3); the transport closes after it.
            session.stream_error("resource-constraint", "too many connections")
        elif not host.peers.admit(self.peer_ip):
            session.stream_error("policy-violation", "too many connections from your address")
        else:
            self._admitted = True
            listener.connections.add(self)
        return session

    def connection_lost(self, exc: Exception | None) -> None:
        if self._admitted:
            self._admitted = False
            self.listener.connections.discard(self)
            self.listener.host.peers.release(self.peer_ip)
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
        try:
            self._server = await loop.create_server(
                lambda: C2SConnection(self, self.direct_tls),
                self.bind,
                self.port,
                backlog=config.backlog,
                ssl=self.host.ssl_context if self.direct_tls else None,
                ssl_handshake_timeout=30 if self.direct_tls else None,
                reuse_address=True,
                reuse_port=self.host.reuse_port or None,
            )
        except OSError as exc:
            what, key = (("c2s direct TLS", "c2s.direct_tls_port") if self.direct_tls
                         else ("c2s", "c2s.port"))
            raise cannot_listen(what, self.bind, self.port, key, exc) from exc
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
        """XEP-0199 server pings for silent clients; drop streams that do not log in in time."""
        config = self.host.config.c2s
        interval = config.ping_interval
        timeout = config.ping_timeout
        periods = [p for p in (interval, timeout if interval > 0 else 0, config.auth_timeout)
                   if p > 0]
        if not periods:
            return
        period = max(0.2, min(periods) / 2)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for conn in list(self.connections):
                session = conn.session
                if session is None or session.closed:
                    continue
                if session.jid is None:
                    overdue = negotiation_overdue(session, config, now)
                    if overdue is not None:
                        session.stream_error("connection-timeout", overdue)
                    continue
                if interval <= 0:
                    continue
                idle = now - session.last_read
                if session.ping_pending:
                    if idle > interval + timeout:
                        session.stream_error("connection-timeout", "no answer to ping")
                elif idle > interval:
                    session.ping_pending = True
                    ping = element("iq", type="get", id=f"srvping-{int(now)}",
                                   to=str(session.jid), from_=self.host.domain)
                    sub(ping, "{" + ns.PING + "}ping")
                    session.send(ping)
