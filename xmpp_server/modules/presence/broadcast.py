"""RFC 6121 §4: presence broadcast, probes and directed presence.

Initial presence (§4.2) goes to the user's own available resources and to every contact with
a From or Both subscription, and probes (§4.3) go to every contact with To or Both. Later
available presence (§4.4) is broadcast the same way, without probes. Unavailable presence
(§4.5) goes to the same contacts, to the other resources and to everyone who received directed
presence (§4.6); the server makes it up when a session ends without one (§4.5.2).
"""

from __future__ import annotations

import logging
from copy import deepcopy
from typing import TYPE_CHECKING

from lxml import etree

from xmpp_server import namespaces as ns
from xmpp_server.numbers import stanza_int
from xmpp_server.retry import retried
from xmpp_server.stanza import Stanza, element

if TYPE_CHECKING:
    from xmpp_server.host import Host
    from xmpp_server.stream.session import Session

log = logging.getLogger(__name__)

_PRIORITY = "{" + ns.CLIENT + "}priority"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def parse_priority(el: etree._Element) -> int:
    """§4.7.2.3: an integer from -128 to 127; none means 0."""
    text = el.findtext(_PRIORITY)
    if text is None:
        return 0
    return stanza_int(text, "priority", -128, 127)


def available_sessions(host: Host, username: str) -> list[Session]:
    """The user's resources that sent initial presence and are still connected."""
    return [s for s in host.sessions.of_user(username)
            if s.available and not s.closed and s.jid is not None]


def addressed(el: etree._Element, to: str, frm: str | None = None) -> etree._Element:
    copy = deepcopy(el)
    copy.set("to", to)
    if frm is not None:
        copy.set("from", frm)
    return copy


class Broadcast:
    def __init__(self, host: Host) -> None:
        self.host = host

    # -- presence the user sends without 'to' -------------------------------------------------

    async def available(self, session: Session, el: etree._Element) -> None:
        """§4.2 initial presence and §4.4 updates."""
        priority = parse_priority(el)  # before any state changes: a bad one is refused whole
        username, jid = session.username, session.jid
        assert username is not None and jid is not None
        initial = not session.available
        session.available = True
        session.priority = priority
        stored = deepcopy(el)
        stored.attrib.pop("to", None)
        stored.set("from", str(jid))
        session.presence = stored
        self.host.sessions.changed(session)
        # §4.2.2, §4.4.2: the user's own available resources, including this one
        for other in available_sessions(self.host, username):
            other.send(addressed(stored, str(other.jid)))
        items, _ = await self.host.storage.roster.get(username)
        for item in items:
            if item.subscription in ("from", "both"):
                await self.host.router.send(addressed(stored, item.jid))
        if not initial:
            return
        bare = str(jid.bare)
        for item in items:
            if item.subscription in ("to", "both"):
                # §4.3.1: probes come from the bare JID; the contact's server answers
                await self.host.router.send(
                    element("presence", type="probe", from_=bare, to=item.jid))
        await self._redeliver_requests(session, username)
        await self.host.events.fire("initial-presence", session)

    async def _redeliver_requests(self, session: Session, username: str) -> None:
        """§3.1.3: requests still unanswered are delivered again at each initial presence."""
        for jid, xml in await self.host.storage.roster.list_pending(username):
            try:
                session.send(etree.fromstring(xml.encode(), _PARSER))
            except etree.XMLSyntaxError:
                log.error("unreadable subscription request from %s to %s", jid, username)

    async def unavailable(self, session: Session, el: etree._Element) -> None:
        """§4.5: to the subscribers, the other resources and the directed-presence recipients."""
        was_available = session.available
        session.available = False
        session.presence = None
        if was_available:
            self.host.sessions.changed(session)
        directed = list(session.directed)
        session.directed.clear()
        username, jid = session.username, session.jid
        if username is None or jid is None or not (was_available or directed):
            return
        out = deepcopy(el)
        out.attrib.pop("to", None)
        out.set("from", str(jid))
        covered: set[str] = set()
        if was_available:
            for other in available_sessions(self.host, username):
                if other is not session:
                    other.send(addressed(out, str(other.jid)))
            try:  # a hiccup of the database must not keep the contacts from seeing us go
                items, _ = await retried(lambda: self.host.storage.roster.get(username),
                                         f"reading the roster of {username}")
            except Exception:
                log.exception("unavailable presence of %s reached no subscriber", jid)
                items = []
            for item in items:
                if item.subscription in ("from", "both"):
                    covered.add(item.jid)
                    await self.host.router.send(addressed(out, item.jid))
        for target in directed:  # §4.6
            if target.bare_str not in covered:
                await self.host.router.send(addressed(out, str(target)))

    # -- directed presence (§4.6) -------------------------------------------------------------

    async def track_directed(self, stanza: Stanza) -> None:
        """Remember who got available presence outside the roster, to tell them we left."""
        session, to, frm = stanza.origin, stanza.to, stanza.frm
        assert session is not None and to is not None and frm is not None
        if to.bare == frm.bare or (to.local is None and to.domain == self.host.domain):
            return
        if stanza.type == "unavailable":
            # §4.6: told already; unavailable to a bare JID reached its full JIDs too
            session.directed -= {j for j in session.directed if j == to or j.bare == to}
            return
        assert frm.local is not None
        item = await self.host.storage.roster.get_item(frm.local, to.bare_str)
        if item is not None and item.subscription in ("from", "both"):
            return  # §4.6: a subscriber hears of the user through the broadcast anyway
        session.directed.add(to)

    # -- presence for a local account ---------------------------------------------------------

    def deliver(self, stanza: Stanza) -> None:
        """§8.5.2.1.1: presence to a bare JID goes to every available resource."""
        assert stanza.to is not None and stanza.to.local is not None
        for session in available_sessions(self.host, stanza.to.local):
            session.send(stanza.el)

    async def answer_probe(self, stanza: Stanza) -> None:
        """§4.3.2: a subscriber learns the last presence of each available resource.

        Anyone else learns nothing, not even that the account exists.
        """
        to, frm = stanza.to, stanza.frm
        assert to is not None and to.local is not None
        if frm is None:
            return
        item = await self.host.storage.roster.get_item(to.local, frm.bare_str)
        if item is None or item.subscription not in ("from", "both"):
            return
        await self.send_current(to.local, str(frm))

    async def send_current(self, username: str, to: str) -> None:
        """The presence of each available resource of the user, to one entity (§3.1.5)."""
        for session in available_sessions(self.host, username):
            if session.presence is not None:
                await self.host.router.send(addressed(session.presence, to, str(session.jid)))

    async def send_unavailable(self, username: str, to: str) -> None:
        """Unavailable from each available resource (§3.2.2, §3.3.3): no longer subscribed."""
        for session in available_sessions(self.host, username):
            await self.host.router.send(
                element("presence", type="unavailable", from_=str(session.jid), to=to))

