"""RFC 7395: XMPP over WebSocket at ``/xmpp-websocket``, a thin transport for ``Session``.

The handshake needs the ``xmpp`` subprotocol (§3.1-§3.2) and an allowed Origin (RFC 6455
§10.2). Each text frame carries exactly one element (§3.3.3): the session's parser runs in
framed mode, ``<open/>``/``<close/>`` replace the stream tags (§3.3.1, §3.6), and every
``write`` of the session (one stanza or stream-level element per call) becomes one frame.
Frames go out in order through one writer task per connection, which also closes the
WebSocket after our ``<close/>``. WebSocket pings (``http.websocket_ping``) find dead peers
(§3.4); a stream that is not authenticated within ``c2s.auth_timeout``, or stays silent
longer than ``c2s.ping_interval`` before, is closed, as on TCP.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, hdrs, web

from web_bridge.security import origin_allowed
from xmpp_server.stream.c2s import negotiation_overdue
from xmpp_server.stream.session import Session

if TYPE_CHECKING:
    from web_bridge.app import HttpService

log = logging.getLogger(__name__)

SUBPROTOCOL = "xmpp"
_CLOSE_TIMEOUT = 5.0  # seconds to wait for the client's closing frame
_OVERFLOW_GRACE = 5.0  # seconds a client that stopped reading has to take its stream error


class WebSocketTransport:
    """One WebSocket connection as the ``Transport`` of a Session."""

    framed = True
    can_starttls = False
    ssl_object = None

    def __init__(self, service: HttpService, request: web.Request,
                 ws: web.WebSocketResponse) -> None:
        self.service = service
        self.ws = ws
        self.peer_ip = request.remote or ""
        self.secure = service.secure or request.secure
        self.session: Session | None = None  # re-pointed by stream resumption (XEP-0198)
        self._out: deque[str] = deque()
        self._queued = 0  # characters in _out
        self._max_output = service.host.config.limits.max_output_buffer_bytes
        self._socket = request.transport  # the TCP connection under the WebSocket
        self._wake = asyncio.Event()
        self._readable = asyncio.Event()
        self._readable.set()
        self._closing = False
        self._timer: asyncio.TimerHandle | None = None

    # -- Transport ----------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if not self._closing:
            self._out.append(data.decode())
            self._queued += len(data)
            self._wake.set()
            if self._queued + self._socket_buffered() > self._max_output:
                self._overflow()

    def _socket_buffered(self) -> int:
        socket = self._socket
        return socket.get_write_buffer_size() if socket is not None else 0

    def _overflow(self) -> None:
        """The client stopped reading: a stream error (the session ends as on TCP), and the
        connection is dropped if even that is not taken in time."""
        log.info("websocket %s stopped reading: more than %d bytes wait", self.peer_ip,
                 self._max_output)
        session = self.session
        self._max_output = 1 << 62  # once
        if session is not None:
            session.stream_error("policy-violation", "client not reading")
        else:
            self.close()
        socket = self._socket
        if socket is not None:
            asyncio.get_running_loop().call_later(_OVERFLOW_GRACE, socket.abort)

    def close(self) -> None:
        """Send what is queued, then close the WebSocket."""
        self._closing = True
        self._wake.set()
        self._readable.set()  # a paused reader must see the close

    def pause_reading(self) -> None:
        self._readable.clear()

    def resume_reading(self) -> None:
        self._readable.set()

    async def starttls(self) -> None:
        pass  # never offered: TLS belongs to the HTTP layer

    # -- the connection -----------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until it closes, by either side."""
        writer = asyncio.get_running_loop().create_task(self._write_loop())
        self._watch_negotiation()
        try:
            await self._read_loop()
        finally:
            self.close()
            if self._timer is not None:
                self._timer.cancel()
            session = self.session
            if session is not None:
                session.connection_lost()
            await writer

    async def _read_loop(self) -> None:
        ws = self.ws
        while True:
            if not self._readable.is_set():
                await self._readable.wait()
            msg = await ws.receive()
            session = self.session
            if msg.type is WSMsgType.TEXT:
                if session is not None:
                    session.feed(msg.data.encode())
            elif msg.type is WSMsgType.BINARY:
                # RFC 7395 §3.3.3: XMPP travels in text frames, one element each.
                if session is not None:
                    session.stream_error("bad-format", "binary frames are not XMPP")
            else:  # CLOSE, CLOSING, CLOSED, ERROR: the connection is over
                return

    async def _write_loop(self) -> None:
        ws, out = self.ws, self._out
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while out:
                    frame = out.popleft()
                    self._queued -= len(frame)
                    await ws.send_str(frame)
                if self._closing:
                    break
        except (ConnectionError, RuntimeError) as exc:
            log.debug("websocket to %s: %s", self.peer_ip, exc)
        finally:
            self._closing = True  # nothing more can be sent: later writes are dropped
            out.clear()
            if not ws.closed:
                await ws.close()

    def _watch_negotiation(self) -> None:
        """Close streams that do not authenticate in time (as c2s does)."""
        config = self.service.host.config.c2s
        session = self.session
        if session is None or session.closed or session.jid is not None:
            return
        now = time.monotonic()
        overdue = negotiation_overdue(session, config, now)
        if overdue is not None:
            session.stream_error("connection-timeout", overdue)
            return
        waits = [deadline - now for limit, deadline in (
            (config.auth_timeout, session.started + config.auth_timeout),
            (config.ping_interval, session.last_read + config.ping_interval)) if limit > 0]
        if waits:
            self._timer = asyncio.get_running_loop().call_later(
                max(0.0, min(waits)) + 0.05, self._watch_negotiation)


async def handle(request: web.Request) -> web.StreamResponse:
    from web_bridge.app import SERVICE_KEY

    service = request.app[SERVICE_KEY]
    config = service.host.config
    ws = web.WebSocketResponse(
        protocols=(SUBPROTOCOL,),
        heartbeat=config.http.websocket_ping or None,
        max_msg_size=2 * config.limits.max_stanza_bytes,  # the parser's limit answers first
        timeout=_CLOSE_TIMEOUT,
        compress=False,  # no compression of secrets next to attacker-chosen text (CRIME)
    )
    if not ws.can_prepare(request).ok:
        raise web.HTTPBadRequest(text="XMPP over WebSocket (RFC 7395): upgrade required\n")
    if not origin_allowed(request, "WebSocket"):
        raise web.HTTPForbidden(text="origin not allowed\n")
    offered = request.headers.get(hdrs.SEC_WEBSOCKET_PROTOCOL, "")
    if SUBPROTOCOL not in (p.strip() for p in offered.split(",")):
        # RFC 7395 §3.2: the client offers "xmpp"; a WebSocket without it is not XMPP.
        raise web.HTTPBadRequest(text="the WebSocket subprotocol 'xmpp' is required\n")
    if service.connection_count() >= config.c2s.max_connections:
        raise web.HTTPServiceUnavailable(text="too many connections\n")
    await ws.prepare(request)
    transport = WebSocketTransport(service, request, ws)
    session = transport.session = Session(service.host, transport)
    peers = service.host.peers
    admitted = peers.admit(transport.peer_ip)
    if not admitted:  # RFC 6120 §4.9.3.17, as on TCP
        session.stream_error("policy-violation", "too many connections from your address")
    service.websockets.add(transport)
    try:
        await transport.run()
    finally:
        service.websockets.discard(transport)
        if admitted:
            peers.release(transport.peer_ip)
    return ws
