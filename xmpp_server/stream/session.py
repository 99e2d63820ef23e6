"""A client session (RFC 6120): one XML stream from one client, whatever the transport.

TCP, direct TLS, WebSocket and BOSH are thin transports that feed bytes into ``Session.feed``
and write what ``Session.send`` produces. Stanzas are handled in arrival order by a worker task
that exists only while there is work, so an idle connection costs no task.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import ssl
import time
from collections import deque
from typing import TYPE_CHECKING, Protocol

from lxml import etree

from xmpp_server import namespaces as ns
from xmpp_server.errors import StreamError
from xmpp_server.jid import JID
from xmpp_server.stream.parser import Limits, StreamHeader, StreamParser

if TYPE_CHECKING:
    from xmpp_server.host import Host
    from xmpp_server.stream.sasl import SaslMechanism

log = logging.getLogger(__name__)

# Read no more from a client that has this many stanzas waiting (backpressure).
_INBOX_HIGH = 64
_INBOX_LOW = 16


class Transport(Protocol):
    """What a Session needs from its connection."""

    framed: bool  # RFC 7395 framing: <open/>/<close/> instead of <stream:stream>

    @property
    def secure(self) -> bool: ...
    @property
    def can_starttls(self) -> bool: ...
    @property
    def peer_ip(self) -> str: ...
    @property
    def ssl_object(self) -> ssl.SSLObject | None: ...
    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    async def starttls(self) -> None: ...


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
        self.closed = False
        self._closing = False
        self._ended = False
        self._inbox: deque[StreamHeader | etree._Element | None] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._paused = False
        self.last_read = time.monotonic()
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
        from xmpp_server.stream import negotiation

        inbox = self._inbox
        try:
            while inbox:
                item = inbox.popleft()
                if self._paused and len(inbox) < _INBOX_LOW:
                    self._paused = False
                    self.transport.resume_reading()
                if self.closed and (self.jid is None or not isinstance(item, etree._Element)):
                    continue  # gone: only stanzas already received still get routed
                try:
                    if item is None:
                        self.close()
                    elif isinstance(item, StreamHeader):
                        negotiation.stream_header(self, item)
                    elif self.jid is not None and item.tag in _STANZA_TAGS:
                        await self.host.router.route_from_client(self, item)
                    else:
                        await negotiation.handle_element(self, item)
                except StreamError as exc:
                    self.stream_error(exc.condition, exc.text)
                except Exception:
                    log.exception("error handling input of %s", self.jid or self.transport.peer_ip)
                    self.stream_error("internal-server-error")
        finally:
            self._worker = None
            if self.closed:
                self._end()

    # -- output -------------------------------------------------------------------------------

    def send(self, el: etree._Element) -> None:
        if not self.closed:
            self.transport.write(etree.tostring(el))

    def send_bytes(self, data: bytes) -> None:
        if not self.closed:
            self.transport.write(data)

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
        self.transport.write(header.encode())

    def send_features(self, features: etree._Element) -> None:
        data = etree.tostring(features)
        if not self.transport.framed:
            # Inside <stream:stream> the features element uses the stream prefix.
            data = data.replace(
                b'<features xmlns="http://etherx.jabber.org/streams"',
                b"<stream:features",
                1,
            ).replace(b"</features>", b"</stream:features>")
        self.transport.write(data)

    # -- closing ------------------------------------------------------------------------------

    def stream_error(self, condition: str, text: str | None = None) -> None:
        """RFC 6120 §4.9: send the error and close the stream."""
        if self.closed or self._closing:
            return
        if not self.header_sent:
            self.open_stream()
        log.info("stream error %s for %s: %s", condition, self.jid or self.transport.peer_ip, text)
        err = StreamError(condition, text).to_bytes()
        if self.transport.framed:
            err = err.replace(b"<stream:error>", f"<stream:error xmlns:stream='{ns.STREAM}'>"
                              .encode(), 1)
        self.transport.write(err)
        self.close()

    def close(self) -> None:
        """Graceful close: our closing tag, then the transport (RFC 6120 §4.4)."""
        if self.closed or self._closing:
            return
        self._closing = True
        if self.header_sent:
            closing = (
                b"<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"
                if self.transport.framed
                else b"</stream:stream>"
            )
            self.transport.write(closing)
        self.transport.close()

    def connection_lost(self) -> None:
        """The transport is gone, by any cause: tell the features exactly once."""
        if self.closed:
            return
        self.closed = True
        if self._worker is None:
            self._end()
        # else the worker routes what was already received, then ends the session

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
