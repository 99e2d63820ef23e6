"""XEP-0160: Offline messages, stamped with XEP-0203 delayed delivery.

A normal or chat message for an account with no available non-negative resource arrives here
(``message/offline``, fired by the messages module). It is stored with a <delay/> naming the
server and the time; when one of the account's sessions sends its initial presence with a
non-negative priority (``initial-presence``, fired by the presence module), the stored messages
go to that session in order, and are deleted once written to it (XEP-0160 §2).

Storing and delivering for one user take turns (a lock per user): two resources coming online
together do not both get the messages, and a message stored while the user was coming online
is handed over at once rather than at the next login. A live message that arrives while the
stored ones are being read may overtake them; their <delay/> stamps give the order back.
Written means handed to the session's transport: without stream management (XEP-0198) a
connection that dies right then can lose what was in flight, as with any live message. With
stream management a message stays stored until the client acknowledges it (``journal.py``):
the delivery journal holds it, and hands it back here if the session ends first.

Delivery is paced: a session whose unacknowledged queue is full (``Session.congested``) gets
no more until its client has caught up (``session-relieved``); the rest waits in storage.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lxml import etree

from storage import overloaded
from xmpp_server import namespaces as ns
from xmpp_server.errors import StanzaError
from xmpp_server.locks import KeyedLocks
from xmpp_server.modules.base import Module
from xmpp_server.modules.messages import deliver, top_resources
from xmpp_server.modules.offline.journal import Journal
from xmpp_server.retry import retried
from xmpp_server.stanza import Stanza

if TYPE_CHECKING:
    from xmpp_server.host import Host
    from xmpp_server.stream.session import Session

log = logging.getLogger(__name__)

_BODY = "{" + ns.CLIENT + "}body"
_STORE = "{" + ns.HINTS + "}store"
_NO_STORE = "{" + ns.HINTS + "}no-store"
_DELAY = "{" + ns.DELAY + "}delay"
_DELAY_NSMAP = {None: ns.DELAY}
_STANZA_ID = "{" + ns.SID + "}stanza-id"
# Stored XML is our own serialisation, but a row that does not parse must not break a
# client's stream: it is parsed (safely) before it is sent.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def storable(el: etree._Element) -> bool:
    """Whether a message goes to offline storage.

    XEP-0160 §3: normal and chat messages, but not those with only chat states (so: a <body/>
    is needed); XEP-0334 §4: <store/> asks to store anyway, <no-store/> forbids it.
    """
    if el.get("type") in ("groupchat", "headline", "error"):
        return False
    if el.find(_NO_STORE) is not None:
        return False
    return el.find(_BODY) is not None or el.find(_STORE) is not None


def xep0082(when: datetime) -> str:
    """A UTC time as a XEP-0082 DateTime with milliseconds."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def xep0082_now() -> str:
    """The current UTC time as a XEP-0082 DateTime with milliseconds."""
    return xep0082(datetime.now(UTC))


def _add_delay(el: etree._Element, domain: str, stamp: str) -> etree._Element | None:
    """Add the server's XEP-0203 <delay/> (returned) unless the message carries one already:
    that one holds the original time (XEP-0203 §3), e.g. of a message that waited in a
    stream-management queue."""
    if any(d.get("from") == domain for d in el.iterchildren(_DELAY)):
        return None
    delay = etree.SubElement(el, _DELAY, nsmap=_DELAY_NSMAP)
    delay.set("from", domain)
    delay.set("stamp", stamp)
    delay.text = "Offline Storage"  # the reason, as in XEP-0160 §2
    return delay


def with_delay(el: etree._Element, domain: str, stamp: str) -> str:
    """The message as stored: serialised with a XEP-0203 <delay/> from the server.

    The delay is added for the serialisation only; the routed element is left as it was.
    """
    delay = _add_delay(el, domain, stamp)
    try:
        return etree.tostring(el, encoding="unicode")
    finally:
        if delay is not None:
            el.remove(delay)


def our_stanza_id(el: etree._Element, bare: str) -> str | None:
    """The XEP-0359 id the recipient ``bare`` sees on a message (ours), if any."""
    for sid in el.iterchildren(_STANZA_ID):
        if sid.get("by") == bare:
            return sid.get("id")
    return None


class Offline(Module):
    name = "offline"
    xeps = (160, 203)
    features = (ns.OFFLINE,)
    depends = ("messages",)

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        self._turn = KeyedLocks()  # one store or delivery at a time per user
        self.journal = Journal(host.storage.offline.journal, host.incarnation, self._waiting)

    def setup(self) -> None:
        self.on("message/offline", self.store)
        self.on("initial-presence", self.deliver)
        self.on("session-relieved", self.deliver)
        self.on("cluster-node-dead", self.node_dead)
        self.on("notice/offline", self._stored_elsewhere)  # a cluster's other node
        self.host.barriers.append(self.journal.flush)

    def teardown(self) -> None:
        if self.journal.flush in self.host.barriers:
            self.host.barriers.remove(self.journal.flush)
        super().teardown()

    async def start(self) -> None:
        # Rows held by a process that is gone (a crash): their messages wait for delivery.
        released = await self.host.storage.offline.release_held(keep=self.host.live_holders())
        if released:
            log.info("%d messages left unacknowledged by the previous run wait for delivery",
                     released)
        self.journal.start()

    async def node_dead(self, incarnation: str) -> None:
        """A cluster node died: what its clients had not acknowledged waits for delivery, and
        goes at once to the users' sessions on the nodes still alive."""
        offline = self.host.storage.offline
        users = await retried(lambda: offline.held_users(incarnation),
                              "reading a dead node's unacknowledged messages")
        released = await retried(lambda: offline.release_held(holder=incarnation),
                                 "releasing a dead node's unacknowledged messages")
        if released:
            log.info("%d messages a dead node's clients had not acknowledged wait for "
                     "delivery", released)
            self._waiting(users)
            for username in users:  # their sessions on other nodes take theirs too
                await self.host.announce("offline", username)

    async def stop(self) -> None:
        await self.journal.stop()

    def _stored_elsewhere(self, username: str) -> None:
        """Another node stored (or released) messages for a user with sessions here."""
        self._waiting({username})

    def _waiting(self, usernames: set[str]) -> None:
        """Messages the journal handed back: to the users' available sessions, if any."""
        for username in usernames:
            if top_resources(self.host.sessions.local_of_user(username)):
                self.host.spawn(self._hand_over(username), name="offline-hand-over")

    async def _hand_over(self, username: str) -> None:
        async with self._turn(username):
            recipients = top_resources(self.host.sessions.local_of_user(username))
            if recipients:
                await self._flush(username, recipients)

    async def store(self, stanza: Stanza) -> bool:
        """Store a message (True); False leaves it to the sender's error (RFC 6121 §8.5.2.2.1)."""
        el = stanza.el
        if not storable(el):
            return False
        to = stanza.to
        assert to is not None and to.local is not None
        username = to.local
        xml = with_delay(el, self.host.domain, xep0082_now())
        limit = self.host.config.limits.max_offline_messages
        stanza_id = our_stanza_id(el, to.bare_str)
        async with self._turn(username):
            # A connection cut under the insert is tried again (the stanza-id keeps it once);
            # a pool that stays exhausted is not: the router sheds that (resource-constraint).
            if not await retried(
                lambda: self.host.storage.offline.store(username, xml, limit=limit,
                                                        stanza_id=stanza_id),
                f"storing a message for {username}", attempts=3, delay=0.05,
                retry_if=lambda exc: not overloaded(exc)):
                # XEP-0160 §2 (step 3) and ejabberd: a full queue is service-unavailable, with
                # a text saying why. resource-constraint (type wait) would invite the sender
                # to retry into a queue that only empties when the user logs in.
                raise StanzaError(
                    "service-unavailable", f"offline message storage of {to.bare_str} is full"
                )
            # The routing decision was made before the user came online: hand it over now.
            recipients = top_resources(self.host.sessions.local_of_user(username))
            if recipients:
                try:
                    await self._flush(username, recipients)
                except Exception:  # stored: not the sender's error; the next login gets it
                    log.exception("handing over offline messages of %s failed", username)
        if self.host.sessions.remote is not None and len(
                self.host.sessions.of_user(username)) > len(recipients):
            # The user came online on another node meanwhile: that node hands it over.
            await self.host.announce("offline", username)
        return True

    async def deliver(self, session: Session) -> None:
        """XEP-0160 §2: the stored messages go to the session that sent initial presence.

        Not to one with a negative priority (RFC 6121 §8.5.2.1.1): it waits for the next.
        Returns nothing, so other features still see the event.
        """
        username = session.username
        if username is None or session.priority < 0 or not session.available:
            return
        async with self._turn(username):
            await self._flush(username, [session])

    async def _flush(self, username: str, sessions: Sequence[Session]) -> None:
        """Send the stored messages in order to the sessions that can take them.

        A message written to a session with stream management stays stored, held by the
        journal, until that client acknowledges it; one written to any other session is
        deleted once written. A failure before the delete leaves it stored: delivered again
        rather than lost. A session whose queue is full gets no more (``congested``): the
        rest waits for ``session-relieved``.
        """
        rows = await self.host.storage.offline.fetch(username)
        if not rows:
            return
        journal = self.journal
        domain = self.host.domain
        done: list[int] = []
        try:
            for row in rows:
                sid = row.stanza_id
                if sid is not None and journal.knows(username, sid):
                    continue  # in a queue already (held, or being handed back)
                live = [s for s in sessions if not s.closed and not s.congested]
                if not live:
                    break  # gone or full meanwhile: the rest stays stored
                try:
                    el = etree.fromstring(row.xml, _PARSER)
                except etree.XMLSyntaxError:
                    log.error("dropping unreadable offline message %d of %s", row.id, username)
                    done.append(row.id)
                    continue
                if sid is None:  # stored before stanza-ids were kept
                    deliver(el, live)
                    done.append(row.id)
                    continue
                _add_delay(el, domain, xep0082(row.stored_at))  # held, then stored
                journal.adopt(username, sid)
                try:
                    deliver(el, live, sid)
                finally:
                    journal.settle(username, sid, delivered=any(s.sm is None for s in live))
        finally:
            await self.host.storage.offline.delete(username, done)
            await journal.flush()  # delivered ones deleted, held ones marked so
