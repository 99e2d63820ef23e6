"""XEP-0124 BOSH session (XEP-0206 XMPP over BOSH): the held requests of one session and
the ``Transport`` of its Session. ``bosh.py`` parses the requests and keeps the sessions.

The Session writes one element per call; writes buffer until a request is held (§11: at
most 'hold' wait, the oldest is answered when a new one comes). The stream header it writes
only gives the authid, its closing tag becomes the terminate body, and a stream error is
sent inside that body with condition ``remote-stream-error`` (XEP-0206 §7).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import deque
from copy import deepcopy
from typing import TYPE_CHECKING
from xml.sax.saxutils import quoteattr

from lxml import etree

from xmpp_server import namespaces as ns
from xmpp_server.numbers import parse_int
from xmpp_server.stanza import element
from xmpp_server.stream.c2s import negotiation_overdue

if TYPE_CHECKING:
    from web_bridge.bosh import BoshHub
    from xmpp_server.stream.session import Session

_OPEN = f"<open xmlns='{ns.FRAMING}'".encode()  # as Session.open_stream writes it
_CLOSE = f"<close xmlns='{ns.FRAMING}'/>".encode()
_XBOSH = "{" + ns.XBOSH + "}"
VERSION = "1.11"


class Terminate(Exception):
    """End the request (and the BOSH session) with a terminal condition (§17)."""

    def __init__(self, condition: str) -> None:
        super().__init__(condition)
        self.condition = condition


class BoshSession:
    """One BOSH session: the ``Transport`` of its Session, and the held requests."""

    framed = True
    can_starttls = False
    ssl_object = None

    def __init__(self, hub: BoshHub, sid: str, peer_ip: str, secure: bool,
                 body: etree._Element, rid: int) -> None:
        config = hub.service.host.config.http
        self.hub = hub
        self.sid = sid
        self.peer_ip = peer_ip
        self.secure = secure
        self.wait = clamp(body.get("wait"), config.bosh_max_wait, 1, config.bosh_max_wait)
        self.hold = clamp(body.get("hold"), 1, 0, config.bosh_max_hold)
        self.requests = self.hold + 1
        self.inactivity = config.bosh_inactivity
        self.polling = config.bosh_polling
        self.acks = body.get("ack") == "1"  # §9
        self.key = body.get("newkey")  # §15
        self.creation_rid = rid
        self.next_rid = rid
        self.last_rid = rid
        self.session: Session | None = None  # re-pointed by stream resumption (XEP-0198)
        self.stream_id = ""
        self.held: deque[tuple[int, asyncio.Future[bytes]]] = deque()
        self.outbox: list[bytes] = []
        self._outbox_bytes = 0
        self._max_output = hub.service.host.config.limits.max_output_buffer_bytes
        self.responses: dict[int, tuple[str | None, bytes]] = {}  # rid -> (key, body) (§14.3)
        self._keys: dict[int, str | None] = {}  # rid -> key of requests not answered yet
        self.error = False  # a stream error waits in the outbox
        self.closing = False  # the stream is closed: the next response terminates
        self.ended = False
        self._advanced = asyncio.Event()
        self._flush: asyncio.Handle | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._last_empty = 0.0

    # -- Transport ----------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.ended:
            return
        if data.startswith(_OPEN):
            # The stream header is the session's attributes here; its id is the authid.
            self.stream_id = etree.fromstring(data).get("id", "")
            return
        if data == _CLOSE:
            return  # the terminate body closes the stream
        if data.startswith(b"<stream:error"):
            self.error = True
        self.outbox.append(data)
        self._outbox_bytes += len(data)
        self._want_flush()
        if self._outbox_bytes > self._max_output and not self.closing:
            # The client stopped asking for what waits: the stream ends as on TCP (once).
            self._max_output = 1 << 62
            session = self.session
            if session is not None:
                session.stream_error("policy-violation", "client not reading")

    def close(self) -> None:
        if self.closing:
            return
        self.closing = True
        self._want_flush()
        asyncio.get_running_loop().call_soon(self.lost)

    def pause_reading(self) -> None:
        pass  # input arrives only as fast as the client's requests are answered

    def resume_reading(self) -> None:
        pass

    async def starttls(self) -> None:
        pass

    # -- requests -----------------------------------------------------------------------------

    async def request(self, body: etree._Element, rid: int) -> bytes:
        """Handle one request of this session; returns the response body."""
        key = body.get("key")
        if rid in self.responses:
            sent_key, sent = self.responses[rid]
            if sent_key != key:
                raise Terminate("item-not-found")
            return sent  # §14.3: the response got lost; send it again
        for held_rid, waiting in self.held:
            if held_rid == rid:  # the same request again, while still held: share the answer
                return await self._answer_later(rid, waiting)
        if self.ended or not self.next_rid <= rid < self.next_rid + self.requests:
            raise Terminate("item-not-found")  # §14: outside the window
        await self._turn(rid)
        if rid != self.creation_rid:
            self._check_key(key, body.get("newkey"))
        self._keys[rid] = key
        self.next_rid = rid + 1
        self.last_rid = max(self.last_rid, rid)
        self._advanced.set()
        self._advanced = asyncio.Event()
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if not self.closing:  # else the request just collects the terminate body
            self._check_negotiation()
            self._feed(body, rid)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.held.append((rid, future))
        # §11: at most 'hold' requests wait; the creation request waits for the features.
        while len(self.held) > max(self.hold, 1 if rid == self.creation_rid else 0):
            self._answer(*self.held.popleft())
        if self.outbox or self.closing:
            self._want_flush()
        return await self._answer_later(rid, future)

    async def _turn(self, rid: int) -> None:
        """§14: handle requests in rid order; a later one waits for the missing ones."""
        deadline = time.monotonic() + self.wait
        while rid != self.next_rid:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.ended:
                raise Terminate("item-not-found")
            try:
                await asyncio.wait_for(self._advanced.wait(), remaining)
            except TimeoutError:
                raise Terminate("item-not-found") from None

    def _check_key(self, key: str | None, newkey: str | None) -> None:
        """§15: each key hashes to the one before it."""
        if self.key is None:
            return
        if key is None or hashlib.sha1(key.encode()).hexdigest() != self.key:
            raise Terminate("item-not-found")
        self.key = newkey or key

    def _feed(self, body: etree._Element, rid: int) -> None:
        session = self.session
        if session is None:
            return
        if rid == self.creation_rid or body.get(_XBOSH + "restart") == "true":
            # §7 and XEP-0206 §5: a (new) stream starts; the body has no payload then.
            session.feed(etree.tostring(element(
                "{" + ns.FRAMING + "}open", to=self.hub.service.host.domain, version="1.0",
                **{"{" + ns.XML + "}lang": body.get("{" + ns.XML + "}lang", "en")})))
            return
        children = [child for child in body if isinstance(child.tag, str)]
        if not children and body.get("type") != "terminate":
            self._check_polling()
        for child in children:
            # One element per feed, without the declarations inherited from <body/>.
            copy = deepcopy(child)
            copy.tail = None
            etree.cleanup_namespaces(copy)
            session.feed(etree.tostring(copy))
        if body.get("type") == "terminate":
            session.feed(_CLOSE)  # §12: like a closing stream tag

    def _check_negotiation(self) -> None:
        """Polling keeps no stream alive that does not authenticate (as on TCP)."""
        session = self.session
        if session is None:
            return
        overdue = negotiation_overdue(session, self.hub.service.host.config.c2s,
                                      time.monotonic())
        if overdue is not None:
            session.stream_error("connection-timeout", overdue)

    def _check_polling(self) -> None:
        """§12: a polling client (hold 0) sends empty requests no faster than 'polling'."""
        now = time.monotonic()
        if self.hold == 0 and now - self._last_empty < self.polling:
            raise Terminate("policy-violation")
        self._last_empty = now

    async def _answer_later(self, rid: int, future: asyncio.Future[bytes]) -> bytes:
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.wait)
        except TimeoutError:
            for i, (held_rid, _) in enumerate(self.held):
                if held_rid == rid:
                    del self.held[i]
                    self._answer(rid, future)
                    break
            return await future
        finally:
            if not self.held and not self.ended and self._idle is None:
                self._idle = asyncio.get_running_loop().call_later(self.inactivity,
                                                                    self._inactive)

    # -- responses ----------------------------------------------------------------------------

    def _want_flush(self) -> None:
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_soon(self._flush_now)

    def _flush_now(self) -> None:
        """Answer held requests: with what is buffered, or all of them once closing."""
        self._flush = None
        answered = False
        while self.held and (self.outbox or self.closing):
            self._answer(*self.held.popleft())
            answered = True
        if self.closing and answered:
            self.hub.drop(self)  # the terminate body is out

    def _answer(self, rid: int, future: asyncio.Future[bytes]) -> None:
        attrs: dict[str, str] = {}
        if rid == self.creation_rid:
            attrs.update(sid=self.sid, wait=str(self.wait), hold=str(self.hold),
                         requests=str(self.requests), inactivity=str(self.inactivity),
                         polling=str(self.polling), ver=VERSION, secure="true",
                         authid=self.stream_id, **{"from": self.hub.service.host.domain})
            attrs["xmpp:version"] = "1.0"
            attrs["xmpp:restartlogic"] = "true"
            if self.acks:
                attrs["ack"] = str(rid)
        elif self.acks and self.last_rid != rid:
            attrs["ack"] = str(self.last_rid)  # §9.1: not the rid of this request
        if self.closing:
            attrs["type"] = "terminate"
            if self.error:
                attrs["condition"] = "remote-stream-error"  # XEP-0206 §7
        data = body_bytes(attrs, b"".join(self.outbox))
        self.outbox.clear()
        self._outbox_bytes = 0
        self.responses[rid] = (self._keys.pop(rid, None), data)
        while len(self.responses) > self.requests + 1:
            del self.responses[min(self.responses)]
        if not future.done():
            future.set_result(data)

    # -- the end ------------------------------------------------------------------------------

    def lost(self) -> None:
        session = self.session
        if session is not None:
            session.connection_lost()

    def _inactive(self) -> None:
        """§8: no request for 'inactivity' seconds: the client is gone."""
        self._idle = None
        if self.held:
            return
        self.hub.drop(self)
        if not self.closing:
            self.closing = True
            self.lost()

    def end(self) -> None:
        """Forget the session (dropped from the hub); answer what is still held."""
        self.ended = True
        for timer in (self._flush, self._idle):
            if timer is not None:
                timer.cancel()
        self._flush = self._idle = None
        self._advanced.set()
        while self.held:
            self._answer(*self.held.popleft())


def body_bytes(attrs: dict[str, str], payload: bytes = b"") -> bytes:
    head = (f"<body xmlns='{ns.HTTPBIND}' xmlns:xmpp='{ns.XBOSH}' xmlns:stream='{ns.STREAM}'"
            + "".join(f" {name}={quoteattr(value)}" for name, value in attrs.items()))
    return (head + ">").encode() + payload + b"</body>" if payload else (head + "/>").encode()


def clamp(value: str | None, default: int, low: int, high: int) -> int:
    """A client's wish ('wait', 'hold') within our bounds; a malformed one ends the request."""
    try:
        number = default if value is None else parse_int(value)
    except ValueError:
        raise Terminate("bad-request") from None
    return max(low, min(high, number))
