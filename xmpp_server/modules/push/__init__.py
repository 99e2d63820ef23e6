"""XEP-0357: Push Notifications — the user's server publishing to the clients' app servers.

A client registers an app server (XMPP Push Service JID + node, with an optional
publish-options form) for its account with an IQ-set to the account (§5), and removes one or
all of a service's with <disable/> (§6). Registrations are stored, so they outlive sessions and
restarts; ``push.max_registrations`` bounds them per account. The account advertises
``urn:xmpp:push:0`` in its disco#info (§4.1), as does the server.

When an important message (``publish.py``) for the user misses the device that enabled a
registration, the registration gets a publish (§7; pace and error handling in ``sender.py``):

==============================================  =============================================
the message                                     registrations that get a publish
==============================================  =============================================
is about to be stored offline                   all but those enabled by a connected session
(``message/offline``)                           (that device is online)
reaches detached sessions only (XEP-0198: a     the same
session waiting for resumption;
``message/delivering``)
reaches connected and detached sessions         those the detached sessions enabled
was unacknowledged when its session detached    those that session enabled; all but those of
(``session-detached``)                          connected sessions if none is connected
==============================================  =============================================

"Enabled by a session" is remembered while the session lives (resumption keeps it). The
summary counts the messages pushed since the user was last online (initial presence or a
resumed session). Publishes come from the server's domain, as Prosody's do (the XEP's examples
show the account's bare JID).

An offline message is pushed before it is stored (as in Prosody), so one refused by a full
queue was pushed all the same. A detached session that expires hands its unacknowledged
messages on to offline storage; those already pushed while it waited (known by sender and
id) are not pushed again, as Prosody marks them. Not pushed: group
chat, subscription requests, and carbon copies that land in a detached session's queue while
another client is connected (only messages routed to the detached session itself are seen).
Remote disabling (§8, an affiliation change from the service) is not acted on: the service's
errors remove the registration instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lxml import etree

from storage.push import PushRegistration
from storage.types import UnknownUser
from xmpp_server import namespaces as ns
from xmpp_server.errors import JIDError, StanzaError
from xmpp_server.jid import JID
from xmpp_server.modules.base import Module, own_session
from xmpp_server.modules.messages import DELIVERING
from xmpp_server.modules.offline import storable
from xmpp_server.modules.push.publish import important
from xmpp_server.modules.push.sender import Incoming, Key, Sender, key
from xmpp_server.stanza import Stanza, iq_result

if TYPE_CHECKING:
    from xmpp_server.host import Host
    from xmpp_server.modules.disco import DiscoReply
    from xmpp_server.stream.session import Session

ENABLE = "{" + ns.PUSH + "}enable"
DISABLE = "{" + ns.PUSH + "}disable"
_X = "{" + ns.DATA_FORMS + "}x"
_FIELD = "{" + ns.DATA_FORMS + "}field"
_VALUE = "{" + ns.DATA_FORMS + "}value"
_BODY = "{" + ns.CLIENT + "}body"
_BOUND = "push"  # Session.data: the registrations (keys) the session enabled
_OWN_ONLY = "push notifications are set for one's own account"
_MAX_JID_BYTES = 1023
_MAX_NODE_BYTES = 256  # app servers use short random nodes; this bounds the stored key
_MAX_OPTIONS_BYTES = 4096
_MAX_REMEMBERED = 1000  # messages pushed per user while detached, kept to avoid a re-push
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def _bound(session: Session) -> set[Key]:
    keys = session.data.get(_BOUND)
    return keys if isinstance(keys, set) else set()


def _incoming(msg: etree._Element) -> Incoming:
    return msg.get("from"), msg.findtext(_BODY)


def _identity(el: etree._Element) -> str | None:
    """What tells a message again when it is routed a second time: its sender and id (the
    stanza-id is stamped anew on each routing)."""
    id_ = el.get("id")
    return None if not id_ else f"{el.get('from')} {id_}"


class Push(Module):
    name = "push"
    xeps = (357,)
    features = (ns.PUSH,)
    depends = ("messages",)

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        self.sender = Sender(host)
        # username -> messages (sender and id) pushed because a detached session got them
        self._pushed: dict[str, set[str]] = {}
        # username -> the push being prepared: messages arriving meanwhile join it, so a burst
        # costs one registrations read and one task, not one per message
        self._preparing: dict[str, tuple[list[Incoming], set[Key], list[bool]]] = {}

    def setup(self) -> None:
        self.on_iq("set", "bare", ENABLE, self.enable)
        self.on_iq("set", "bare", DISABLE, self.disable)
        self.on("disco-info/account", self.account_info)
        self.on(DELIVERING, self.delivering)
        self.on("message/offline", self.offline, priority=10)  # before it is stored
        self.on("session-detached", self.detached)
        self.on("initial-presence", self.back)
        self.on("session-resumed", self.back)
        self.on("server-stopping", self.sender.stopping)

    async def stop(self) -> None:
        self.sender.stop()

    def account_info(self, reply: DiscoReply) -> None:
        reply.feature(ns.PUSH)  # §4.1

    # -- enabling and disabling (§5, §6) ------------------------------------------------------

    async def enable(self, stanza: Stanza) -> bool:
        username, session = own_session(stanza, _OWN_ONLY)
        el = stanza.child
        assert el is not None
        jid = _service(el)
        assert session.jid is not None
        if jid.bare == session.jid.bare:
            raise StanzaError("bad-request", "the push service cannot be the account itself")
        node = el.get("node")
        if not node:  # §5 (its schema): the node is required
            raise StanzaError("bad-request", "'node' is required")
        if len(node.encode()) > _MAX_NODE_BYTES:
            raise StanzaError("not-acceptable", f"'node' is longer than {_MAX_NODE_BYTES} bytes")
        registration = PushRegistration(str(jid), node, _publish_options(el), datetime.now(UTC))
        limit = self.host.config.push.max_registrations
        try:
            stored = await self.host.storage.push.enable(username, registration, limit)
        except UnknownUser:
            raise StanzaError("item-not-found", "no such account") from None
        if not stored:
            # not-allowed rather than policy-violation: older clients (slixmpp) know only
            # the RFC 3920 conditions, and choke on the newer one
            raise StanzaError("not-allowed", f"at most {limit} push registrations per account: "
                                             "disable one first")
        k = key(registration)
        for other in self.host.sessions.of_user(username):
            _bound(other).discard(k)
        session.data[_BOUND] = _bound(session) | {k}
        self.sender.forget(username, [k])  # §5: the last request's options, a fresh start
        await self.host.router.reply(stanza, iq_result(stanza))
        return True

    async def disable(self, stanza: Stanza) -> bool:
        username, _ = own_session(stanza, _OWN_ONLY)
        el = stanza.child
        assert el is not None
        removed = await self.host.storage.push.disable(username, str(_service(el)),
                                                       el.get("node") or None)
        keys = {key(r) for r in removed}
        for session in self.host.sessions.of_user(username):
            _bound(session).difference_update(keys)
        self.sender.forget(username, keys)
        await self.host.router.reply(stanza, iq_result(stanza))  # §6: also if none was enabled
        return True

    # -- what gets pushed ---------------------------------------------------------------------

    def delivering(self, arg: tuple[Stanza, list[Session]]) -> None:
        """A message written to sessions: pushed if some of them are detached."""
        stanza, recipients = arg
        away = [s for s in recipients if s.detached]
        if not away:
            return  # all connected, or none (offline storage: see ``offline``)
        msg = important(stanza.el)
        if msg is None:
            return
        everyone = len(away) == len(recipients)
        bound = set().union(*(_bound(s) for s in away))
        if bound or everyone:
            assert stanza.to is not None and stanza.to.local is not None
            self._remember(stanza.to.local, stanza.el)
            self._soon(stanza.to.local, _incoming(msg), bound, everyone)

    def offline(self, stanza: Stanza) -> None:
        """A message about to be stored offline (Prosody pushes at this point too)."""
        if "offline" not in self.host.modules or not storable(stanza.el):
            return
        msg = important(stanza.el)
        if msg is not None:
            assert stanza.to is not None and stanza.to.local is not None
            if self._pushed_before(stanza.to.local, stanza.el):
                return  # an expired session's unacknowledged message: pushed when it came
            self._soon(stanza.to.local, _incoming(msg), set(), True)

    async def detached(self, arg: tuple[Session, Sequence[tuple[float, bytes]]]) -> None:
        """XEP-0198: the connection dropped; what the client never acknowledged is unseen."""
        session, unacked = arg
        username = session.username
        if username is None or session.closed or not session.detached:
            return
        messages = []
        for _, data in unacked:
            try:
                el = etree.fromstring(data, _PARSER)
            except etree.XMLSyntaxError:
                continue
            msg = important(el)
            if msg is not None:
                messages.append(_incoming(msg))
                self._remember(username, el)
        if messages:
            everyone = not any(not s.detached and not s.closed
                               for s in self.host.sessions.of_user(username))
            await self._notify(username, messages, _bound(session), everyone)

    def _soon(self, username: str, message: Incoming, bound: set[Key], everyone: bool) -> None:
        """Push ``message`` with whatever else arrives for the user before the push goes."""
        preparing = self._preparing.get(username)
        if preparing is not None:
            messages, all_bound, flags = preparing
            messages.append(message)
            all_bound |= bound
            flags[0] = flags[0] or everyone
            return
        self._preparing[username] = ([message], set(bound), [everyone])
        self.host.spawn(self._prepared(username), name="push-notify")

    async def _prepared(self, username: str) -> None:
        await asyncio.sleep(0)  # the rest of this burst joins
        messages, bound, flags = self._preparing[username]
        try:
            await self._notify(username, messages, bound, flags[0])
        finally:
            del self._preparing[username]

    async def _notify(self, username: str, messages: list[Incoming], bound: set[Key],
                      everyone: bool) -> None:
        """Push to the registrations ``bound`` to sessions the messages did not reach, and,
        with ``everyone``, to all that no connected session enabled."""
        registrations = await self.host.storage.push.get(username)
        if not registrations:
            return
        connected: set[Key] = set()
        if everyone:
            for session in self.host.sessions.of_user(username):
                if not session.detached and not session.closed:
                    connected |= _bound(session)
        targets = [r for r in registrations
                   if key(r) in bound or (everyone and key(r) not in connected)]
        if targets:
            self.sender.notify(username, targets, messages)

    def back(self, session: Session) -> None:
        if session.username is not None:
            self.sender.back(session.username)
            self._pushed.pop(session.username, None)

    def _remember(self, username: str, el: etree._Element) -> None:
        sid = _identity(el)
        if sid is not None:
            ids = self._pushed.setdefault(username, set())
            if len(ids) < _MAX_REMEMBERED:
                ids.add(sid)

    def _pushed_before(self, username: str, el: etree._Element) -> bool:
        ids = self._pushed.get(username)
        sid = _identity(el) if ids else None
        if ids is None or sid is None or sid not in ids:
            return False
        ids.discard(sid)
        if not ids:
            del self._pushed[username]
        return True


def _service(el: etree._Element) -> JID:
    """The 'jid' of <enable/> or <disable/>: the push service (§5, §6: required)."""
    value = el.get("jid")
    if not value:
        raise StanzaError("bad-request", "'jid' (the push service) is required")
    try:
        jid = JID.parse(value)
    except JIDError:
        raise StanzaError("jid-malformed", "'jid' is not a valid JID") from None
    if len(str(jid).encode()) > _MAX_JID_BYTES:
        raise StanzaError("not-acceptable", f"'jid' is longer than {_MAX_JID_BYTES} bytes")
    return jid


def _publish_options(el: etree._Element) -> str | None:
    """§5: the publish-options form to send with each publish, serialised; None without."""
    forms = el.findall(_X)
    if not forms:
        return None
    if len(forms) > 1:
        raise StanzaError("bad-request", "at most one publish-options form")
    form = forms[0]
    form_type = next((f.findtext(_VALUE) for f in form.iterchildren(_FIELD)
                      if f.get("var") == "FORM_TYPE"), None)
    if form_type != ns.PUBSUB_PUBLISH_OPTIONS:
        raise StanzaError("bad-request",
                          f"the form's FORM_TYPE must be {ns.PUBSUB_PUBLISH_OPTIONS}")
    data = etree.tostring(form, encoding="unicode", with_tail=False)
    if len(data.encode()) > _MAX_OPTIONS_BYTES:
        raise StanzaError("not-acceptable",
                          f"publish options longer than {_MAX_OPTIONS_BYTES} bytes")
    return data
