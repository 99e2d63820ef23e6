"""Incremental XML stream parser (RFC 6120 §4 and §11) with safety limits.

lxml's pull parser is fed raw bytes as they arrive and yields the stream header and then each
complete top-level element (a stanza or a stream-level element). Entity resolution, DTD loading
and network access are off. RFC 6120 §11.1 restricted XML (comments, processing instructions,
DTDs, entity declarations, non-predefined entity references) is refused with ``restricted-xml``
before it reaches lxml; limits on stanza size, depth and attribute count raise
``policy-violation``. Malformed XML raises ``not-well-formed``.
"""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass

from lxml import etree

from xmpp_server.errors import StreamError

# Markup RFC 6120 §11.1 forbids. CDATA sections are allowed. "<?" is allowed only for the XML
# declaration before the stream header. Only the predefined entities and character references
# may be referenced.
_CDATA = b"<![CDATA["
_ENTITIES = (b"&amp;", b"&lt;", b"&gt;", b"&quot;", b"&apos;", b"&#")
# A read larger than the stanza limit is parsed in pieces of this size (see StreamParser.feed).
_PIECE = 4096


def _declaration_only(buf: bytes) -> bool:
    """A framed document (RFC 7395) may begin with the XML declaration: no other "<?"."""
    head = buf.lstrip()
    return buf.count(b"<?") == 1 and head.startswith(b"<?xml") and head[5:6].isspace()


@dataclass(frozen=True)
class Limits:
    max_stanza_bytes: int = 262144
    max_depth: int = 64
    max_attributes: int = 64


class StreamHeader:
    """The attributes of an opening ``<stream:stream>`` (or RFC 7395 ``<open/>``) element."""

    __slots__ = ("attrib", "default_ns", "tag")

    def __init__(self, tag: str, attrib: dict[str, str], default_ns: str | None) -> None:
        self.tag = tag
        self.attrib = attrib
        self.default_ns = default_ns


class StreamParser:
    """Feed bytes, get stream events.

    ``feed`` returns a list whose items are a ``StreamHeader`` (the root opened), a stanza
    (``lxml`` element, detached from the root), or ``None`` (the root closed: ``</stream:stream>``).
    With ``framed=True`` (RFC 7395 WebSocket) every top-level element is a complete document
    and the parser is reset after each one.
    """

    __slots__ = (
        "_depth",
        "_ended",
        "_framed",
        "_limits",
        "_parser",
        "_pending",
        "_root",
        "_tail",
    )

    def __init__(self, limits: Limits, framed: bool = False) -> None:
        self._limits = limits
        self._framed = framed
        self._parser: etree.XMLPullParser | None = None
        self.reset()

    def reset(self) -> None:
        """Start a new stream (after STARTTLS or SASL success, RFC 6120 §5.4.3.3, §6.4.6)."""
        self._parser = None
        self._root: etree._Element | None = None
        self._depth = 0
        self._pending = 0  # bytes of the top-level element being parsed (an upper bound)
        self._ended = False  # a top-level element ended in the piece being fed
        self._tail = b""

    def _new_parser(self) -> etree.XMLPullParser:
        return etree.XMLPullParser(
            events=("start", "end"),
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
            remove_comments=False,
            remove_pis=False,
        )

    def _check_restricted(self, data: bytes) -> None:
        # Scan this chunk (plus an unfinished "<..." kept from the previous one, so that markup
        # split across reads is still seen). Only "<!" and "<?" can start restricted markup;
        # undefined entity references are refused by lxml itself (see feed).
        buf = self._tail + data if self._tail else data
        self._tail = b""
        i = buf.find(b"<!")
        while i != -1:
            rest = buf[i : i + len(_CDATA)]
            if not _CDATA.startswith(rest):
                raise StreamError("restricted-xml", "DTDs and comments are not allowed")
            if len(rest) < len(_CDATA):
                self._tail = rest  # undecided until more bytes arrive
                return
            i = buf.find(b"<!", i + 2)
        if b"<?" in buf and (self._root is not None
                             or (self._framed and not _declaration_only(buf))):
            raise StreamError("restricted-xml", "processing instructions are not allowed")
        i = buf.find(b"&")
        while i != -1:
            rest = buf[i : i + 6]
            if not any(rest.startswith(e) for e in _ENTITIES):
                if len(rest) < 6 and any(e.startswith(rest) for e in _ENTITIES):
                    self._tail = rest  # a reference split across reads
                    return
                raise StreamError("restricted-xml", "entity references are not allowed")
            i = buf.find(b"&", i + 1)
        if buf.endswith(b"<"):
            self._tail = b"<"

    def feed(self, data: bytes) -> list[StreamHeader | etree._Element | None]:
        # A read of whitespace alone is parsed like any other: it is a keepalive (RFC 6120
        # §4.6.1) only between stanzas, and TCP may just as well cut inside a stanza's start
        # tag or text. Between stanzas it lands in the root's text, dropped at the next stanza.
        self._check_restricted(data)
        if len(data) <= _PIECE:
            return self._feed_piece(data)
        # The limit is on one stanza, not on one read: a large read of many small stanzas is
        # fine. Fed in pieces, the bytes of the element being parsed are known to within a
        # piece (lxml does not say where in a piece an element ended).
        out: list[StreamHeader | etree._Element | None] = []
        for i in range(0, len(data), _PIECE):
            out.extend(self._feed_piece(data[i : i + _PIECE]))
        return out

    def _feed_piece(self, data: bytes) -> list[StreamHeader | etree._Element | None]:
        if self._parser is None:
            self._parser = self._new_parser()
        self._ended = False
        try:
            self._parser.feed(data)
            out = self._collect(self._parser.read_events())
        except etree.XMLSyntaxError as exc:
            msg = str(exc)
            if "Entity" in msg or "entity" in msg:
                raise StreamError("restricted-xml", "entity references are not allowed") from None
            raise StreamError("not-well-formed", msg.split("(", 1)[0].strip()) from None
        if not self._ended:
            self._pending += len(data)
        elif self._depth > (0 if self._framed else 1):
            self._pending = len(data)  # the next element began in this piece: at most this much
        else:
            self._pending = 0
        if self._pending > self._limits.max_stanza_bytes:
            raise StreamError("policy-violation", "stanza too large")
        return out

    def _collect(self, events: object) -> list[StreamHeader | etree._Element | None]:
        out: list[StreamHeader | etree._Element | None] = []
        limits = self._limits
        for event, el in events:  # type: ignore[attr-defined]
            if event == "start":
                self._depth += 1
                if self._depth == 1 and not self._framed:
                    self._root = el
                    out.append(StreamHeader(el.tag, dict(el.attrib), el.nsmap.get(None)))
                    self._ended = True
                elif self._depth > limits.max_depth:
                    raise StreamError("policy-violation", "XML nested too deeply")
                if len(el.attrib) > limits.max_attributes:
                    raise StreamError("policy-violation", "too many attributes")
            else:
                self._depth -= 1
                if self._framed:
                    if self._depth == 0:
                        out.append(el)
                        self._parser = None
                        self._ended = True
                elif self._depth == 1:
                    # A deep copy is detached with clean namespace declarations (a moved
                    # element would get generated prefixes); the original leaves the tree.
                    stanza = deepcopy(el)
                    stanza.tail = None
                    root = self._root
                    if root is not None:
                        root.remove(el)
                        root.text = None  # drop whitespace between stanzas
                    out.append(stanza)
                    self._ended = True
                elif self._depth == 0:
                    out.append(None)
        return out
