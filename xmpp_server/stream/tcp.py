"""A TCP connection as a ``Session`` transport: what client and server streams share.

An asyncio ``Protocol`` (no task per idle connection) that feeds the bytes it receives to its
session and gives the session what ``stream.transport.Transport`` promises: writes, closing,
backpressure and the STARTTLS handshake (server side, or client side when a
``server_hostname`` is given). TCP_NODELAY is on: asyncio and uvloop set it on every TCP
transport they make. With ``max_output`` set, a peer that lets more than that many bytes wait
to be written (it stopped reading) gets a policy-violation stream error and is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xmpp_server.stream.session import Session

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 30.0
OVERFLOW_GRACE = 5.0  # seconds a peer that stopped reading has to take its stream error


class TcpTransport(asyncio.Protocol):
    framed = False

    def __init__(self, tls: ssl.SSLContext | None, direct_tls: bool = False,
                 server_hostname: str | None = None, max_output: int = 0) -> None:
        self._tls = tls
        self._max_output = max_output  # 0: unbounded
        self._overflowed = False
        self._secure = direct_tls
        self._server_hostname = server_hostname
        self._transport: asyncio.Transport | None = None
        self._peer_ip = ""
        self.session: Session | None = None

    def make_session(self) -> Session | None:
        """The stream this connection feeds; None refuses the connection."""
        raise NotImplementedError

    def tls_started(self) -> None:
        """Called once TLS is up (after a direct-TLS accept or a STARTTLS handshake)."""

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self._peer_ip = peer[0] if peer else ""
        if self._secure:
            self.tls_started()
        self.session = self.make_session()
        if self.session is None:
            transport.close()

    def data_received(self, data: bytes) -> None:
        if self.session is not None:
            self.session.feed(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
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
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(data)
            if (self._max_output and not self._overflowed
                    and transport.get_write_buffer_size() > self._max_output):
                self._overflow()

    def _overflow(self) -> None:
        """The peer stopped reading: end its stream the normal way (the session sees a stream
        error and a lost connection), then drop the connection if it does not take even that."""
        self._overflowed = True
        log.info("%s stopped reading: more than %d bytes wait", self._peer_ip, self._max_output)
        if self.session is not None:
            self.session.stream_error("policy-violation", "client not reading")
        else:
            self.close()
        asyncio.get_running_loop().call_later(OVERFLOW_GRACE, self.abort)

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
            log.info("TLS handshake with %s failed: %s", self._peer_ip, exc)
            self._transport.abort()
            return
        if new is None:
            return
        self._transport = new
        self._secure = True
        self.tls_started()


CLOSE_GRACE = 2.0  # seconds the connections of a closing listener get to close by themselves
_ABORT_WAIT = 1.0  # seconds then allowed for the aborted ones to be gone


async def close_listener(server: asyncio.Server, transports: Iterable[TcpTransport],
                         grace: float = CLOSE_GRACE) -> None:
    """Close a listening socket and see its connections gone, within a bound on every Python.

    From Python 3.12.1 on, ``Server.wait_closed()`` waits for every connection the server
    accepted (3.11 returned at once): a connection still in its TLS handshake waits for the
    handshake timeout, a TLS one whose peer does not answer close_notify for the SSL shutdown
    timeout (30 s each; measured on 3.12.1 and 3.13), one with unsent output until its peer
    reads. After ``grace`` seconds ``transports`` are aborted, and so (3.13's
    ``abort_clients()``) are connections still in a handshake; the wait for the rest is
    bounded too.
    """
    server.close()
    if await _closed_within(server, grace):
        return
    for transport in list(transports):
        transport.abort()
    abort_clients = getattr(server, "abort_clients", None)  # Python 3.13
    if abort_clients is not None:
        abort_clients()
    if not await _closed_within(server, _ABORT_WAIT):
        log.warning("listener closed with connections still open (in a TLS handshake)")


async def _closed_within(server: asyncio.Server, seconds: float) -> bool:
    try:
        await asyncio.wait_for(server.wait_closed(), seconds)
    except TimeoutError:
        return False
    return True
