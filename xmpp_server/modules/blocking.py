"""XEP-0191: Blocking Command — each user's blocklist, kept in storage and enforced on routing.

The list is read, extended and cleared with IQs to one's own account (§5.2-§5.5); every
change is pushed to the sessions that asked for the list. An item matches a JID as in §4
(XEP-0016): a full JID only itself, a bare JID all its resources, ``domain/resource`` only
that, and a domain everything at it and at its subdomains.

Enforcement (§5.3), by event:

- ``pre-message``, ``pre-presence``, ``pre-iq``: a client sends to a JID its user blocks: the
  answer is not-acceptable with <blocked xmlns='urn:xmpp:blocking:errors'/> (errors and IQ
  results are dropped instead);
- ``message/bare``, ``message/full``, ``presence/bare``, ``presence/full``, ``iq/full``: from a
  JID the local recipient blocks, messages and IQ get/set get service-unavailable; presence
  (probes and subscriptions too) and the rest are dropped without an answer. What the server
  sends for a local user to a JID that user blocks (presence broadcast, probes) is dropped;
- ``route/remote``, ``route/cluster``: the same, for what leaves for other servers or nodes;
- ``message/offline``: a message from a JID an offline user blocks is refused, not stored.

Blocking a contact sends it unavailable presence from the user's available resources, if it
may see the user's presence (a subscription, or directed presence); unblocking sends it the
current presence (and probes it, to bring the user's view back). IQs to the bare JID are the
server's, not the user's, and are not filtered.

A room writes to its occupants' sessions directly; while some online user's list is not empty,
``refuses`` is in ``host.refusals`` and the room checks each sender against it.

Each online user's list is cached (loaded when a session is bound, dropped with the last
one), so a stanza costs one dict lookup for a user with an empty list.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Iterable, Set
from typing import TYPE_CHECKING

from lxml import etree

from storage import UnknownUser
from xmpp_server import namespaces as ns
from xmpp_server.errors import JIDError, StanzaError
from xmpp_server.jid import JID
from xmpp_server.locks import KeyedLocks
from xmpp_server.modules.base import Module
from xmpp_server.modules.presence.broadcast import addressed, available_sessions
from xmpp_server.modules.presence.states import SUBSCRIPTION_TYPES
from xmpp_server.stanza import Stanza, element, iq_result, sub

if TYPE_CHECKING:
    from xmpp_server.stream.session import Session

BLOCKLIST = "{" + ns.BLOCKING + "}blocklist"
BLOCK = "{" + ns.BLOCKING + "}block"
UNBLOCK = "{" + ns.BLOCKING + "}unblock"
ITEM = "{" + ns.BLOCKING + "}item"
_INTERESTED = "blocking"  # session.data key: the session asked for the list (gets pushes)
_PRIORITY = 100  # before the handlers that deliver or answer


def matches(blocked: Set[str], jid: JID) -> bool:
    """§4: whether ``jid`` is blocked by a list of prepared JID strings."""
    if str(jid) in blocked:
        return True
    if jid.local is not None:
        if jid.bare_str in blocked:
            return True
        if jid.resource is not None and f"{jid.domain}/{jid.resource}" in blocked:
            return True
    domain = jid.domain
    while True:  # the domain, then each parent: a domain item covers its subdomains
        if domain in blocked:
            return True
        dot = domain.find(".")
        if dot < 0:
            return False
        domain = domain[dot + 1:]


def blocked_error() -> StanzaError:
    """§5.3: what the user gets for a stanza to a JID they block."""
    app = element("{" + ns.BLOCKING_ERRORS + "}blocked")
    return StanzaError("not-acceptable", type="cancel", app_element=app)


class Blocking(Module):
    name = "blocking"
    xeps = (191,)
    features = (ns.BLOCKING,)

    def setup(self) -> None:
        self._lists: dict[str, frozenset[str]] = {}  # online users whose list is loaded
        self._refusing: set[str] = set()  # those of them whose list is not empty
        self._lock = KeyedLocks()  # loads and changes of one user's list take turns
        self.on_iq("get", "bare", BLOCKLIST, self.get)
        self.on_iq("set", "bare", BLOCK, self.block)
        self.on_iq("set", "bare", UNBLOCK, self.unblock)
        for kind in ("message", "presence", "iq"):
            self.on("pre-" + kind, self.outbound, _PRIORITY)
        for event in ("message/bare", "message/full", "presence/bare", "presence/full",
                      "iq/full"):
            self.on(event, self.inbound, _PRIORITY)
        self.on("route/remote", self.leaving, _PRIORITY)
        self.on("route/cluster", self.leaving, _PRIORITY)
        self.on("message/offline", self.offline, _PRIORITY)
        self.on("session-bound", self.session_bound, _PRIORITY)
        self.on("session-ended", self.session_ended)
        self.on("user-deleted", self._forget)
        self.on("notice/blocklist", self._changed_elsewhere)  # a cluster's other node
        self.on("remote-session-ended", self.session_ended)

    # -- the cache ----------------------------------------------------------------------------

    async def _load(self, username: str) -> frozenset[str]:
        async with self._lock(username):
            cached = self._lists.get(username)
            if cached is not None:
                return cached
            blocked = frozenset(await self.host.storage.blocklist.get(username))
            if self.host.sessions.is_online(username):
                self._cache(username, blocked)
            return blocked

    async def _changed_elsewhere(self, username: str) -> None:
        """Another node changed the user's list: a cached copy is read again."""
        async with self._lock(username):
            if username in self._lists:
                self._cache(username, frozenset(await self.host.storage.blocklist.get(username)))

    async def session_bound(self, session: Session) -> None:
        if session.username is not None:
            await self._load(session.username)

    def session_ended(self, session: Session) -> None:
        username = session.username
        if username is not None and not self.host.sessions.is_online(username):
            self._forget(username)

    def _forget(self, username: str) -> None:
        self._lists.pop(username, None)
        self._refusing.discard(username)
        self._sync_refusal()

    def _cache(self, username: str, blocked: frozenset[str]) -> None:
        self._lists[username] = blocked
        if blocked:
            self._refusing.add(username)
        else:
            self._refusing.discard(username)
        self._sync_refusal()

    def _sync_refusal(self) -> None:
        """Room fan-out checks senders only while some online user blocks someone."""
        refusals = self.host.refusals
        present = self.refuses in refusals
        if self._refusing and not present:
            refusals.append(self.refuses)
        elif not self._refusing and present:
            refusals.remove(self.refuses)

    def refuses(self, username: str, sender: JID) -> bool:
        """§5.3 for stanzas that bypass the router: a room's messages and presence."""
        blocked = self._lists.get(username)
        if not blocked:
            return False
        return matches(blocked, sender)

    def teardown(self) -> None:
        if self.refuses in self.host.refusals:
            self.host.refusals.remove(self.refuses)
        super().teardown()

    # -- enforcement --------------------------------------------------------------------------

    def outbound(self, stanza: Stanza) -> bool | None:
        """§5.3: the user's own client sends to a JID the user blocks."""
        frm, to = stanza.frm, stanza.to
        if to is None or frm is None or frm.local is None:
            return None
        blocked = self._lists.get(frm.local)
        if not blocked or not matches(blocked, to):
            return None
        if stanza.type == "error" or (stanza.kind == "iq" and stanza.type == "result"):
            return True  # never answered with an error (RFC 6120 §8.3.1): dropped
        raise blocked_error()

    def inbound(self, stanza: Stanza) -> bool | Awaitable[bool | None] | None:
        """§5.3: a stanza for a local user, from a JID that user blocks (or to one)."""
        to, frm = stanza.to, stanza.frm
        if to is None or frm is None or to.local is None:
            return None
        blocked = self._lists.get(to.local)
        if blocked is None:
            # Not loaded: an offline user (whose messages are checked at message/offline and
            # whose subscriptions are checked here), or one whose session is being bound.
            if self.host.sessions.is_online(to.local) or (
                    stanza.kind == "presence" and stanza.type in SUBSCRIPTION_TYPES):
                return self._inbound_loaded(stanza)
        elif blocked and matches(blocked, frm):
            return self._refuse(stanza)
        return self.leaving(stanza)

    async def _inbound_loaded(self, stanza: Stanza) -> bool | None:
        assert stanza.to is not None and stanza.to.local is not None and stanza.frm is not None
        if matches(await self._load(stanza.to.local), stanza.frm):
            return self._refuse(stanza)
        return self.leaving(stanza)

    def leaving(self, stanza: Stanza) -> bool | None:
        """What the server sends for a local user to a JID that user blocks is dropped."""
        frm, to = stanza.frm, stanza.to
        if frm is None or to is None or frm.local is None or frm.domain != self.host.domain:
            return None
        blocked = self._lists.get(frm.local)
        if blocked and stanza.type != "error" and matches(blocked, to):
            return True
        return None

    @staticmethod
    def _refuse(stanza: Stanza) -> bool:
        kind, type_ = stanza.kind, stanza.type
        if (kind == "message" and type_ != "error") or (kind == "iq" and type_ in ("get", "set")):
            raise StanzaError("service-unavailable")
        return True  # presence of any type, errors, IQ results: dropped, no answer

    async def offline(self, stanza: Stanza) -> None:
        to, frm = stanza.to, stanza.frm
        assert to is not None and to.local is not None
        if frm is not None and matches(await self._load(to.local), frm):
            raise StanzaError("service-unavailable")

    # -- the protocol -------------------------------------------------------------------------

    @staticmethod
    def _owner(stanza: Stanza) -> JID:
        """§5: the list is read and changed by its own account's clients only."""
        frm = stanza.frm
        if frm is None or stanza.origin is None or frm.local is None:
            raise StanzaError("forbidden", "not your blocklist")
        if stanza.to is not None and stanza.to != frm.bare:
            raise StanzaError("forbidden", "not your blocklist")
        return frm

    def _items(self, command: etree._Element, owner: JID) -> list[str]:
        server = JID(None, self.host.domain)
        jids: list[str] = []
        for item in command.iterchildren(ITEM):
            raw = item.get("jid")
            if not raw:
                raise StanzaError("bad-request", "an item needs a jid")
            try:
                jid = JID.parse(raw)
            except JIDError:
                raise StanzaError("jid-malformed", f"not a valid JID: {raw!r}") from None
            if jid.bare == owner.bare:
                raise StanzaError("not-allowed", "you cannot block yourself")
            if matches({str(jid)}, server):
                raise StanzaError("not-allowed", "you cannot block your own server")
            if str(jid) not in jids:
                jids.append(str(jid))
        return jids

    async def get(self, stanza: Stanza) -> bool:
        """§5.2: the list; the session now gets pushes."""
        owner = self._owner(stanza)
        assert owner.local is not None and stanza.origin is not None
        stanza.origin.data[_INTERESTED] = True
        result = element(BLOCKLIST)
        for jid in sorted(await self._load(owner.local)):
            sub(result, "item", jid=jid)
        await self.host.router.reply(stanza, iq_result(stanza, result))
        return True

    async def block(self, stanza: Stanza) -> bool:
        """§5.3: add to the list; the blocked learn the user went offline."""
        owner = self._owner(stanza)
        username = owner.local
        assert username is not None and stanza.child is not None
        jids = self._items(stanza.child, owner)
        if not jids:
            raise StanzaError("bad-request", "block at least one JID")
        async with self._lock(username):
            try:
                await self.host.storage.blocklist.block(username, jids)
            except UnknownUser:
                raise StanzaError("forbidden", "no such account") from None
            old = self._lists.get(username, frozenset())
            # Before the cache changes: from then on nothing of the user's reaches them.
            await self._tell_unavailable(username, old, frozenset(jids))
            if username in self._lists:
                self._cache(username, old | frozenset(jids))
        await self.host.router.reply(stanza, iq_result(stanza))
        await self.host.announce("blocklist", username)
        self._push(username, BLOCK, jids)
        return True

    async def unblock(self, stanza: Stanza) -> bool:
        """§5.4, §5.5: remove some JIDs, or all of them; they get the current presence."""
        owner = self._owner(stanza)
        username = owner.local
        assert username is not None and stanza.child is not None
        jids = self._items(stanza.child, owner)
        async with self._lock(username):
            removed = await self.host.storage.blocklist.unblock(username, jids or None)
            remaining = frozenset(await self.host.storage.blocklist.get(username))
            if username in self._lists:
                self._cache(username, remaining)
        await self.host.router.reply(stanza, iq_result(stanza))
        await self.host.announce("blocklist", username)
        self._push(username, UNBLOCK, jids)
        await self._tell_available(username, remaining, frozenset(removed))
        return True

    def _push(self, username: str, command: str, jids: Iterable[str]) -> None:
        """§5.3-§5.5: the change, to each session that asked for the list."""
        for session in self.host.sessions.of_user(username):
            if session.data.get(_INTERESTED) and session.jid is not None and not session.closed:
                iq = element("iq", type="set", id="push-" + secrets.token_hex(6),
                             to=str(session.jid))
                change = sub(iq, command)
                for jid in jids:
                    sub(change, "item", jid=jid)
                session.send(iq)

    # -- presence around a change -------------------------------------------------------------

    async def _subscribers(self, username: str, old: frozenset[str],
                           new: frozenset[str]) -> list[tuple[str, str]]:
        """(jid, subscription) of the contacts ``new`` matches and ``old`` did not."""
        items, _ = await self.host.storage.roster.get(username)
        out = []
        for item in items:
            try:
                jid = JID.parse(item.jid)
            except JIDError:
                continue
            if matches(new, jid) and not matches(old, jid):
                out.append((item.jid, item.subscription))
        return out

    async def _tell_unavailable(self, username: str, old: frozenset[str],
                                new: frozenset[str]) -> None:
        router = self.host.router
        sessions = available_sessions(self.host, username)
        if not sessions:
            return
        for jid, subscription in await self._subscribers(username, old, new):
            if subscription in ("from", "both"):
                for session in sessions:
                    await router.send(element("presence", type="unavailable",
                                              from_=str(session.jid), to=jid))
        for session in sessions:  # directed presence (RFC 6121 §4.6) ends too
            for target in [t for t in session.directed if matches(new, t)]:
                session.directed.discard(target)
                await router.send(element("presence", type="unavailable",
                                          from_=str(session.jid), to=str(target)))

    async def _tell_available(self, username: str, remaining: frozenset[str],
                              removed: frozenset[str]) -> None:
        sessions = available_sessions(self.host, username)
        if not sessions or not removed:
            return
        bare = f"{username}@{self.host.domain}"
        for jid, subscription in await self._subscribers(username, remaining, removed):
            if subscription in ("from", "both"):
                for session in sessions:
                    if session.presence is not None:
                        await self.host.router.send(
                            addressed(session.presence, jid, str(session.jid)))
            if subscription in ("to", "both"):
                await self.host.router.send(
                    element("presence", type="probe", from_=bare, to=jid))
