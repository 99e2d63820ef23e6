"""XEP-0352: Client State Indication — hold what can wait while the client is inactive.

Offered as a stream feature after authentication (§4.1). A client sends a top-level
<inactive/> or <active/> (§4.2); the server never answers them. What the server does meanwhile
is its own business (§3.2); here, as Prosody's mod_csi_simple does, plus presence collapsing:

- presence updates (available and unavailable) are held, and only the newest one from each
  full JID is kept: an inactive client needs the current state, not the history;
- messages that need no attention (chat states, receipts, headlines...) are held in order;
- anything else (a message with a body, subject or invitation, a carbon of one, an error,
  an IQ, a subscription request) flushes what is held, then goes out itself, so the client
  sees the stream in order; so do <active/> (before the next input is handled, §5.1) and
  reaching ``MAX_HELD`` stanzas. A resumed stream (XEP-0198) starts active again, as every
  stream does (§5).

It works through the session's output filter (``Session.filter``), set only while inactive:
an active session pays one attribute check per stanza.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxml import etree

from xmpp_server import namespaces as ns
from xmpp_server.modules.base import Module

if TYPE_CHECKING:
    from xmpp_server.stream.session import Session

ACTIVE = "{" + ns.CSI + "}active"
INACTIVE = "{" + ns.CSI + "}inactive"
MAX_HELD = 256  # Prosody's default queue size: then the client gets everything at once

_C = "{" + ns.CLIENT + "}"
_PRESENCE = _C + "presence"
_MESSAGE = _C + "message"
_CARBON_INNER = tuple(
    f"{{{ns.CARBONS}}}{direction}/{{{ns.FORWARD}}}forwarded/{_C}message"
    for direction in ("received", "sent")
)
# Children that make a message worth waking the client for.
_IMPORTANT = frozenset((
    _C + "body",
    _C + "subject",  # the last step of joining a room
    "{jabber:x:conference}x",  # XEP-0249 invitation
    "{urn:xmpp:eme:0}encryption",  # encrypted: it may well be a message (XEP-0380)
    "{urn:xmpp:jingle-message:0}propose",  # a call (XEP-0353)
))
_INVITE = f"{{{ns.MUC_USER}}}x/{{{ns.MUC_USER}}}invite"


def important(el: etree._Element) -> bool:
    """Whether a stanza goes out at once (after what is held), rather than being held."""
    tag = el.tag
    if tag == _PRESENCE:
        # Subscription requests and the like need the user; updates can wait.
        return el.get("type") not in (None, "unavailable")
    if tag != _MESSAGE:
        return True  # IQs (a request waits for its answer) and anything else
    type_ = el.get("type")
    if type_ == "error":
        return True  # a delivery failure
    if type_ == "headline":
        return False  # ephemeral by definition
    for path in _CARBON_INNER:
        inner = el.find(path)
        if inner is not None:
            el = inner  # a carbon matters as much as the message it carries
            break
    return any(child.tag in _IMPORTANT for child in el) or el.find(_INVITE) is not None


class Held:
    """The output filter of one inactive session: what it holds, in order."""

    __slots__ = ("_count", "held", "session")

    def __init__(self, session: Session) -> None:
        self.session = session
        # Insertion-ordered: a presence update replaces the held one from the same full JID
        # and moves to the end; other held stanzas get a key of their own.
        self.held: dict[object, bytes] = {}
        self._count = 0

    def __call__(self, el: etree._Element) -> bool:
        if important(el):
            self.flush()
            return False
        if el.tag == _PRESENCE:
            key: object = el.get("from", "")
            self.held.pop(key, None)
        else:
            self._count += 1
            key = self._count
        self.held[key] = etree.tostring(el)  # serialised now: callers reuse the element
        if len(self.held) >= MAX_HELD:
            self.flush()
        return True

    def flush(self) -> None:
        held, self.held = self.held, {}
        for data in held.values():
            self.session.send_bytes(data)


class ClientStateIndication(Module):
    name = "csi"
    xeps = (352,)

    def setup(self) -> None:
        self.on("stream-element/" + ACTIVE, self.active)
        self.on("stream-element/" + INACTIVE, self.inactive)
        self.on("session-resumed", self.resumed)
        self.offer(self._stream_feature)

    @staticmethod
    def _stream_feature(session: Session, features: etree._Element) -> None:
        if session.username is not None and session.jid is None:
            etree.SubElement(features, "{" + ns.CSI + "}csi", nsmap={None: ns.CSI})

    @staticmethod
    def inactive(arg: tuple[Session, etree._Element]) -> bool:
        session, _ = arg
        if session.username is None:
            return False  # before authentication: the stream's not-authorized
        if not isinstance(session.filter, Held):
            session.filter = Held(session)
        return True

    @staticmethod
    def active(arg: tuple[Session, etree._Element]) -> bool:
        session, _ = arg
        if session.username is None:
            return False
        _activate(session)
        return True

    @staticmethod
    def resumed(session: Session) -> None:
        _activate(session)


def _activate(session: Session) -> None:
    held = session.filter
    if isinstance(held, Held):
        session.filter = None
        held.flush()
