"""A client session (RFC 6120): one XML stream from one client, whatever the transport.

TCP, direct TLS, WebSocket and BOSH are thin transports that feed bytes into ``Session.feed``
and write what ``Session.send`` produces. Stanzas are handled in arrival order by a worker task
that exists only while there is work, so an idle connection costs no task.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from lxml import etree

from xmpp_server import namespaces as ns
from xmpp_server.errors import StreamError
from xmpp_server.jid import JID
from xmpp_server.stream.parser import Limits, StreamHeader, StreamParser
from xmpp_server.stream.rate import TokenBucket
from xmpp_server.stream.transport import Detached, Transport, repoint

if TYPE_CHECKING:
    from xmpp_server.host import Host
    from xmpp_server.stream.sasl import SaslMechanism

log = logging.getLogger(__name__)

# Read no more from a client that has this many stanzas waiting (backpressure).
_INBOX_HIGH = 64
_INBOX_LOW = 16


class StreamManagement(Protocol):
    """What a session tells stream management (XEP-0198) once a feature has enabled it."""

    def received(self) -> None:
        """A stanza from the client was handled."""

    def sent(self, data: bytes, key: str | None = None) -> None:
        """A stanza was written to the client (or, while detached, would have been).

        ``key``: the XEP-0359 id of a message to keep durably until acknowledged."""

    def lost(self, reason: str | None) -> bool:
        """The connection is gone: True keeps the session bound and detached.

        ``reason`` is None when the connection just dropped, "close" after a closing tag,
        else the condition of the stream error that closed it.
        """


class Session:
    """State of one client stream; negotiation lives in ``negotiation.py``."""

    def __init__(self, host: Host, transport: Transport) -> None:
        self.host = host
        self.transport = transport
        limits = host.config.limits
        self.parser = StreamParser(
            Limits(limits.max_stanza_bytes, limits.max_depth, limits.max_attributes),
            framed=transport.framed,
        )
        self.stream_id = ""
        self.header_sent = False
        self._pending_header: bytes | None = None  # our header, not written yet (see open_stream)
        self.closed = False
        self._closing = False
        self._ended = False
        self._inbox: deque[StreamHeader | etree._Element | None] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._paused = False
        rate = limits.stanzas_per_second  # after authentication (see rate.py)
        self._rate = TokenBucket(rate, rate) if rate > 0 else None
        self.last_read = self.started = time.monotonic()
        self.ping_pending = False
        # negotiation state
        self.sasl: SaslMechanism | None = None
        self.sasl_failures = 0
        self.username: str | None = None
        self.jid: JID | None = None
        self.lang = "en"
        # presence state (RFC 6121 §4): filled by the presence and roster features
        self.available = False
        self.priority = 0
        self.presence: etree._Element | None = None
        self.interested = False  # requested the roster: gets roster pushes and probes' answers
        self.directed: set[JID] = set()
        self.data: dict[str, object] = {}  # per-feature state, keyed by feature name
        # Output filter (XEP-0352 client state indication): consulted by send(); returning
        # True means it took the stanza and will write it later (send_bytes) or drop it; it
        # must copy or serialise what it keeps, as callers reuse the element.
        self.filter: Callable[[etree._Element], bool] | None = None
        # XEP-0198 stream management, set by its feature; a detached session has lost its
        # connection but stays bound (presence and all) until it is resumed or ended.
        self.sm: StreamManagement | None = None
        self.detached = False
        # Set by stream management while the client has a full queue unacknowledged: messages
        # for the account wait in offline storage instead (``messages.top_resources``).
        self.congested = False
        self._close_reason: str | None = None

    # -- input --------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Bytes from the transport."""
        if self.closed:
            return
        self.last_read = time.monotonic()
        self.ping_pending = False
        try:
            items = self.parser.feed(data)
        except StreamError as exc:
            self.stream_error(exc.condition, exc.text)
            return
        if not items:
            return
        self._inbox.extend(items)
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._work())
        if len(self._inbox) > _INBOX_HIGH and not self._paused:
            self._paused = True
            self.transport.pause_reading()

    async def _work(self) -> None:
        inbox = self._inbox
        try:
            while inbox:
                item = inbox.popleft()
                if self._paused and len(inbox) < _INBOX_LOW:
                    self._paused = False
                    self.transport.resume_reading()
                if self.closed and (self.jid is None or not isinstance(item, etree._Element)):
                    continue  # gone: only stanzas already received still get routed
                if (self._rate is not None and self.jid is not None and not self.closed
                        and isinstance(item, etree._Element) and item.tag in _STANZA_TAGS):
                    await self._keep_rate()
                try:
                    await self.handle(item)
                    for backlog in self.host.backlogs:  # storage behind: this client waits
                        if backlog.over():
                            await backlog.relieve()
                except StreamError as exc:
                    self.stream_error(exc.condition, exc.text)
                except Exception:
                    log.exception("error handling input of %s", self.jid or self.transport.peer_ip)
                    self.stream_error("internal-server-error")
        finally:
            self._worker = None
            if self.closed:
                self._end()

    async def _keep_rate(self) -> None:
        """limits.stanzas_per_second: over the rate, read nothing until tokens are back."""
        assert self._rate is not None
        delay = self._rate.take()
        if delay > 0:
            self.transport.pause_reading()
            await asyncio.sleep(delay)
            if not self._paused:
                self.transport.resume_reading()

    async def handle(self, item: StreamHeader | etree._Element | None) -> None:
        """One parsed item: the closing tag (None), a stream header, or a top-level element.

        Other kinds of stream (server-to-server, components) override this.
        """
        from xmpp_server.stream import negotiation

        if item is None:
            self.close()
        elif isinstance(item, StreamHeader):
            negotiation.stream_header(self, item)
        elif self.jid is not None and item.tag in _STANZA_TAGS:
            await self.host.router.route_from_client(self, item)
            if self.sm is not None:
                self.sm.received()
        else:
            await negotiation.handle_element(self, item)

    # -- output -------------------------------------------------------------------------------

    def send(self, el: etree._Element, key: str | None = None) -> None:
        """Write a stanza; ``key`` names a message kept until acknowledged (see ``sent``)."""
        if self.closed or (self.filter is not None and self.filter(el)):
            return
        data = etree.tostring(el)
        self._write_out(data)
        if self.sm is not None:
            self.sm.sent(data, key)

    def send_bytes(self, data: bytes, key: str | None = None) -> None:
        if not self.closed:
            self._write_out(data)
            if self.sm is not None:
                self.sm.sent(data, key)

    def send_nonza(self, data: bytes) -> None:
        """Stream-level output that is not a stanza (XEP-0198 <r/>, <a/>): never counted."""
        if not self.closed:
            self._write_out(data)

    def _write_out(self, data: bytes) -> None:
        header = self._pending_header
        if header is not None:
            self._pending_header = None
            data = header + data
        self.transport.write(data)

    def _flush_header(self) -> None:
        header, self._pending_header = self._pending_header, None
        if header is not None:
            self.transport.write(header)

    def open_stream(self, to: str | None = None) -> None:
        """Send our stream header (RFC 6120 §4.7) with a fresh stream id."""
        self.stream_id = secrets.token_hex(12)
        domain = self.host.domain
        to_attr = f" to='{_attr(to)}'" if to else ""
        if self.transport.framed:
            header = (
                f"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='{domain}'{to_attr}"
                f" id='{self.stream_id}' version='1.0' xml:lang='en'/>"
            )
        else:
            header = (
                f"<?xml version='1.0'?><stream:stream xmlns='{ns.CLIENT}' "
                f"xmlns:stream='{ns.STREAM}' from='{domain}'{to_attr} id='{self.stream_id}' "
                f"version='1.0' xml:lang='en'>"
            )
        self.header_sent = True
        if self.transport.framed:  # RFC 7395 §3.3.3: one element per frame
            self.transport.write(header.encode())
            return
        # Written together with what follows it at once (the features, or a stream error): one
        # write and one TCP segment less per stream, two per login. The header never waits
        # longer than this turn of the event loop.
        self._pending_header = header.encode()
        try:
            asyncio.get_running_loop().call_soon(self._flush_header)
        except RuntimeError:  # no event loop: nothing will follow soon
            self._flush_header()

    def send_features(self, features: etree._Element) -> None:
        # Inside <stream:stream> the features element uses the stream prefix; framed (RFC 7395
        # §3.3.3 examples, XEP-0206) it declares the prefix itself, as clients look for it.
        prefix = b"<stream:features" + (b" xmlns:stream='%s'" % ns.STREAM.encode()
                                        if self.transport.framed else b"")
        data = etree.tostring(features).replace(
            b'<features xmlns="http://etherx.jabber.org/streams"', prefix, 1
        ).replace(b"</features>", b"</stream:features>")
        self._write_out(data)

    # -- closing ------------------------------------------------------------------------------

    def stream_error(self, condition: str, text: str | None = None, extra: bytes = b"") -> None:
        """RFC 6120 §4.9: send the error and close the stream.

        ``extra``: an application-specific condition element (§4.9.4), serialised.
        """
        if self.closed or self._closing:
            return
        if not self.header_sent:
            self.open_stream()
        log.info("stream error %s for %s: %s", condition, self.jid or self.transport.peer_ip, text)
        self._close_reason = condition
        self._write_out(self._error_bytes(condition, text, extra))
        self.close()

    def _error_bytes(self, condition: str, text: str | None, extra: bytes = b"") -> bytes:
        err = StreamError(condition, text).to_bytes()
        if extra:
            err = err.replace(b"</stream:error>", extra + b"</stream:error>", 1)
        if self.transport.framed:
            err = err.replace(b"<stream:error>", f"<stream:error xmlns:stream='{ns.STREAM}'>"
                              .encode(), 1)
        return err

    def close(self) -> None:
        """Graceful close: our closing tag, then the transport (RFC 6120 §4.4)."""
        if self.closed or self._closing:
            return
        self._closing = True
        if self._close_reason is None:
            self._close_reason = "close"
        if self.header_sent:
            closing = (
                b"<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"
                if self.transport.framed
                else b"</stream:stream>"
            )
            self._write_out(closing)
        self.transport.close()

    def connection_lost(self) -> None:
        """The transport is gone, by any cause: tell the features exactly once."""
        if self.closed:
            return
        sm = self.sm
        if sm is not None and not self.detached and sm.lost(self._close_reason):
            self._detach()
            return
        self.closed = True
        if self._worker is None:
            self._end()
        # else the worker routes what was already received, then ends the session

    # -- stream management (XEP-0198 §5): detached sessions and resumption -------------------

    def _detach(self) -> None:
        """Stay bound without a connection: output goes nowhere (stream management queues
        the stanzas); input received before the drop is still handled. ``close()`` ends it."""
        self.detached = True
        self.transport = Detached(self, self.transport)
        self._paused = False
        self._closing = False
        self._close_reason = None
        self.host.sessions.changed(self)

    def detach(self, condition: str, text: str | None = None) -> None:
        """Cut a live connection with a stream error but keep the session, detached."""
        if self.closed or self.detached:
            return
        old = self.transport
        repoint(old, None)  # what the old connection still reports is no longer ours
        self._flush_header()
        if self.header_sent:  # two writes: one element per frame when framed (RFC 7395)
            old.write(self._error_bytes(condition, text))
            old.write(b"<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>" if old.framed
                      else b"</stream:stream>")
        old.close()
        self._detach()

    async def settled(self) -> None:
        """Wait until the input received so far has been handled."""
        while self._worker is not None and self._worker is not asyncio.current_task():
            await asyncio.wait({self._worker})

    def resume(self, new: Session) -> None:
        """Continue this detached session on ``new``'s connection (transport swap).

        ``new`` is the authenticated, unbound stream that asked for resumption; it is
        finished without ending anything. What its client sent after <resume/> is ours.
        """
        assert self.detached and not self.closed
        new._flush_header()
        transport = new.transport
        repoint(transport, self)
        self.transport = transport
        self.parser = new.parser
        self.stream_id, self.header_sent, self.lang = new.stream_id, new.header_sent, new.lang
        self.detached = False
        self.last_read = time.monotonic()
        self.ping_pending = False
        self._paused = new._paused
        self._inbox.extend(new._inbox)
        new._inbox.clear()
        new.closed = new._ended = True
        if self._inbox and self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._work())
        self.host.sessions.changed(self)

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self.host.session_ended(self)

    def __repr__(self) -> str:
        return f"<Session {self.jid or self.username or self.transport.peer_ip}>"


_STANZA_TAGS = frozenset(
    "{" + ns.CLIENT + "}" + name for name in ("message", "presence", "iq")
)


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace("'", "&apos;").replace("<", "&lt;")
