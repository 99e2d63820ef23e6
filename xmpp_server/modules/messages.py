"""RFC 6121 §8.5: delivery of messages to local users, stamped with XEP-0359 stanza ids.

To a bare JID (§8.5.2), by type:

=============  ===========================================  ================================
type           available resources with priority >= 0       none
=============  ===========================================  ================================
normal, chat   the ones with the highest priority (all of   ``message/offline`` (the offline
               them on a tie: Prosody's "top resources")    module stores it), else
                                                            service-unavailable
headline       all of them                                  dropped
groupchat      service-unavailable                          service-unavailable
error          dropped                                      dropped
=============  ===========================================  ================================

Resources with a negative priority never get messages addressed to the bare JID
(§8.5.2.1.1). No such account (§8.5.1): normal, chat and groupchat get service-unavailable,
headline and error are dropped. To a full JID (§8.5.3.1): that session gets it whatever its
priority; if the resource is not bound the router falls back to the rules above for normal and
chat, answers groupchat with service-unavailable and drops the rest (§8.5.3.2).

This is the hot path of a chat server: for an online recipient there is no database access,
no task, and one serialisation however many sessions get the message.

Fires ``message/delivering`` (arg: ``(stanza, sessions)``) for a normal or chat message to a
local user once its recipients are chosen and it is stamped, just before it is written (or,
with ``sessions`` empty, handed to offline storage). Handlers may still change the element
(carbons strip ``<private/>``, XEP-0280 §9). It is fired only when someone listens, so the
hot path pays one dict lookup for it.

Calls each function in ``accepted`` with ``(stanza, stanza_id)`` once a normal or chat message
carrying our XEP-0359 id was written to its recipients or stored offline (not when it was
refused): the archive (XEP-0313) records it under that id. Plain functions, no coroutine.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from lxml import etree

from xmpp_server import namespaces as ns
from xmpp_server.errors import JIDError, StanzaError
from xmpp_server.jid import JID
from xmpp_server.modules.base import Module
from xmpp_server.stanza import Stanza

if TYPE_CHECKING:
    from xmpp_server.host import Host
    from xmpp_server.stream.session import Session

log = logging.getLogger(__name__)

_BODY = "{" + ns.CLIENT + "}body"
_STORE = "{" + ns.HINTS + "}store"
_STANZA_ID = "{" + ns.SID + "}stanza-id"
_SID_NSMAP = {None: ns.SID}
DELIVERING = "message/delivering"
# RFC 6121 §5.2.2: a missing or unknown type is "normal"; these are the others.
_OTHER_TYPES = frozenset(("headline", "groupchat", "error"))
# RFC 9562 §5.7: the variant nibble of a UUIDv7 is 10xx; this maps a random hex digit onto it.
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def new_stanza_id() -> str:
    """A fresh XEP-0359 id: a UUIDv7 (48-bit Unix milliseconds, then 74 random bits).

    Why not uuid4: the archive (MAM) pages by these ids, and ids that sort by time keep its
    index appends local. The 74 bits from the OS CSPRNG keep ids unique and unpredictable
    (XEP-0359 wants them unpredictable); the time they reveal is the arrival time the
    recipient sees anyway (delay stamps, MAM results). Built from strings, not a 128-bit
    integer: half the cost, on the hot path.
    """
    t = f"{time.time_ns() // 1_000_000:012x}"
    r = os.urandom(10).hex()
    return f"{t[:8]}-{t[8:]}-7{r[:3]}-{_VARIANT[r[3]]}{r[4:7]}-{r[7:19]}"


def strip_stanza_ids(el: etree._Element, by: str) -> None:
    """Remove the <stanza-id/> elements that claim to be assigned by ``by``.

    XEP-0359: only the entity named in 'by' assigns its ids; a sender's copy is forged and
    would be overridden anyway. The sender's <origin-id/> is not touched.
    """
    forged = [sid for sid in el.iterchildren(_STANZA_ID) if _same_jid(sid.get("by"), by)]
    for sid in forged:
        el.remove(sid)


def stamp_stanza_id(el: etree._Element, by: str) -> str:
    """Add ``<stanza-id id=... by=by/>`` (XEP-0359) to a message; returns the new id.

    Any stanza-id the sender put there under the same 'by' is removed first, so the message
    carries exactly one.
    """
    strip_stanza_ids(el, by)
    return _add_stanza_id(el, by)


def _add_stanza_id(el: etree._Element, by: str) -> str:
    sid = new_stanza_id()
    etree.SubElement(el, _STANZA_ID, {"id": sid, "by": by}, nsmap=_SID_NSMAP)
    return sid


def top_resources(sessions: Sequence[Session]) -> list[Session]:
    """The available sessions with the highest non-negative priority (RFC 6121 §8.5.2.1.1).

    A session whose client has not acknowledged a full queue (``congested``) is left out
    until it catches up: what it would get waits in offline storage meanwhile.
    """
    best: list[Session] = []
    top = 0  # so a negative priority never qualifies
    for session in sessions:
        if not session.available or session.closed or session.congested:
            continue
        priority = session.priority
        if priority < top:
            continue
        if priority > top or not best:
            top = priority
            best = [session]
        else:
            best.append(session)
    return best


def deliver(el: etree._Element, sessions: Sequence[Session], key: str | None = None) -> None:
    """Write one message to every session, serialising it once.

    ``key``: the message's XEP-0359 id for the recipient, when it is one to keep until the
    client acknowledges it (stream management hands it to the delivery journal).
    """
    if len(sessions) == 1:
        sessions[0].send(el, key)
        return
    data = etree.tostring(el)
    for session in sessions:
        if session.filter is None:
            session.send_bytes(data, key)
        else:
            session.send(el, key)  # its output filter (XEP-0352) sees the stanza


class Messages(Module):
    name = "messages"
    xeps = (359,)
    features = (ns.SID,)

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        self.accepted: list[Callable[[Stanza, str], None]] = []

    def setup(self) -> None:
        self.on("message/bare", self.to_bare)
        self.on("message/full", self.to_full)
        self.on("message/again", self.again)

    # Plain functions, not coroutine functions: an online recipient costs no coroutine. The
    # slow paths return an awaitable, which ``Events.fire`` awaits.

    def to_bare(self, stanza: Stanza) -> bool | Awaitable[bool]:
        """§8.5.2 (also §8.5.3.2.1: a full JID whose resource is not bound)."""
        to = stanza.to
        assert to is not None and to.local is not None
        type_ = stanza.type
        sessions = self.host.sessions.of_user(to.local)
        if type_ not in _OTHER_TYPES:  # normal or chat
            recipients = top_resources(sessions) if sessions else sessions
            if not recipients:
                return self._undeliverable(stanza, known=bool(sessions))
            el = stanza.el
            bare = to.bare_str
            if el.get("to") is None:
                el.set("to", bare)  # no 'to': the sender's own account (RFC 6120 §10.3.1)
            sid = _prepare(el, bare)
            if self.host.events.has(DELIVERING):
                return self._deliver_hooked(stanza, recipients, sid)
            deliver(el, recipients, sid)
            if sid is not None and self.accepted:
                self._accepted(stanza, sid)
        elif type_ == "headline":
            # §8.5.2.1.1: every available resource with non-negative priority, else dropped
            # (§8.5.2.2.1; §8.5.1 for no account).
            recipients = [s for s in sessions if s.available and s.priority >= 0 and not s.closed]
            if recipients:
                strip_stanza_ids(stanza.el, to.bare_str)
                deliver(stanza.el, recipients)
        elif type_ == "groupchat":
            # §8.5.2.1.1 / §8.5.2.2.1 / §8.5.1: a user's bare JID is not a room occupant.
            raise StanzaError("service-unavailable")
        # type error: dropped (§8.5.2.1.1), never answered (RFC 6120 §8.3.1)
        return True

    def to_full(self, stanza: Stanza) -> bool | Awaitable[bool]:
        """§8.5.3.1: the bound resource gets it, even with a negative priority."""
        to = stanza.to
        assert to is not None
        session = self.host.sessions.get(to)
        if session is None:
            return False  # the router applies §8.5.3.2 (and calls to_bare for normal/chat)
        type_ = stanza.type
        if session.closed or (session.congested and type_ not in _OTHER_TYPES):
            # Still bound while its last input is routed, but it can no longer be written to:
            # the same as no such resource (§8.5.3.2). A full queue: the same, for now.
            if type_ not in _OTHER_TYPES:
                return self.to_bare(stanza)
            if type_ == "groupchat":
                raise StanzaError("service-unavailable")
            return True
        el = stanza.el
        if type_ not in _OTHER_TYPES:
            sid = _prepare(el, to.bare_str)
            if self.host.events.has(DELIVERING):
                return self._deliver_hooked(stanza, [session], sid)
            session.send(el, sid)
            if sid is not None and self.accepted:
                self._accepted(stanza, sid)
            return True
        strip_stanza_ids(el, to.bare_str)
        session.send(el)
        return True

    async def _deliver_hooked(self, stanza: Stanza, recipients: list[Session],
                              sid: str | None = None) -> bool:
        await self.host.events.fire(DELIVERING, (stanza, recipients))
        deliver(stanza.el, recipients, sid)
        if sid is not None and self.accepted:
            self._accepted(stanza, sid)
        return True

    def _accepted(self, stanza: Stanza, sid: str) -> None:
        for hook in tuple(self.accepted):
            try:
                hook(stanza, sid)
            except Exception:  # delivered already: a failing listener must not undo that
                log.exception("accepted-message hook failed for id=%s", stanza.id)

    async def again(self, stanza: Stanza) -> bool:
        """A message routed already (stamped with our stanza-id, archived) that its session
        never got: a cluster node died with it in its inbox. To the user's top resources as it
        is, else offline storage (which keeps one copy per stanza-id); never stamped or
        archived again. Other stanzas (False) are routed anew."""
        to, el = stanza.to, stanza.el
        if (stanza.kind != "message" or stanza.type in _OTHER_TYPES or to is None
                or to.local is None):
            return False
        bare = to.bare_str
        sid = next((c.get("id") for c in el.iterchildren(_STANZA_ID)
                    if _same_jid(c.get("by"), bare)), None)
        if sid is None:
            return False
        stanza.to = to.bare
        recipients = top_resources(self.host.sessions.of_user(to.local))
        if recipients:
            deliver(el, recipients, sid)
        elif not await self.host.events.fire("message/offline", stanza):
            log.error("message %s for %s could be neither delivered nor stored", sid, bare)
        return True

    async def _undeliverable(self, stanza: Stanza, known: bool) -> bool:
        """§8.5.2.2.1: normal/chat with no available resource: offline storage or an error."""
        to = stanza.to
        assert to is not None and to.local is not None
        if not known and not await self.host.accounts.exists(to.local):
            raise StanzaError("service-unavailable")  # §8.5.1: no such account
        el = stanza.el
        bare = to.bare_str
        if el.get("to") is None:
            el.set("to", bare)
        sid = _prepare(el, bare)
        await self.host.events.fire(DELIVERING, (stanza, []))
        try:
            if await self.host.events.fire("message/offline", stanza):
                if sid is not None and self.accepted:
                    self._accepted(stanza, sid)
                return True
            raise StanzaError("service-unavailable")
        except StanzaError:
            if sid is not None:  # not stored: the error reply must not carry our id
                for child in el.iterchildren(_STANZA_ID):
                    if child.get("id") == sid:
                        el.remove(child)
            raise


def _prepare(el: etree._Element, bare: str) -> str | None:
    """XEP-0359 for a normal/chat message to ``bare``: our stanza-id if it has a body (or <store/>).

    One pass over the children finds the body and any stanza-id to check for forgery.
    """
    body = False
    claimed: list[etree._Element] | None = None
    for child in el:
        tag = child.tag
        if tag in (_BODY, _STORE):  # XEP-0334 <store/>: kept (archived) without a body
            body = True
        elif tag == _STANZA_ID:
            if claimed is None:
                claimed = []
            claimed.append(child)
    if claimed is not None:
        for sid in claimed:
            if _same_jid(sid.get("by"), bare):
                el.remove(sid)
    return _add_stanza_id(el, bare) if body else None


def _same_jid(value: str | None, bare: str) -> bool:
    if value is None:
        return False
    if value == bare:
        return True
    try:
        return str(JID.parse(value)) == bare  # case and other normalisation (RFC 7622)
    except JIDError:
        return False
