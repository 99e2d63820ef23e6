"""RFC 6121 §3-§4: presence subscriptions, broadcast, probes and directed presence.

Where each presence goes (the router hands it over by event):

==========================  ===============================================================
event                       what this feature does
==========================  ===============================================================
``pre-presence``            from a local client with a ``to``: subscription types run the
                            user side of the state machine (``subscription.py``) and are
                            routed from here; available/unavailable are tracked as directed
                            presence (§4.6) and left to the router
``presence/broadcast``      from a local client without ``to``: initial, updated or
                            unavailable presence (``broadcast.py``)
``presence/bare``           to a local account: subscription types run the contact side;
                            probes are answered (§4.3.2); the rest goes to every available
                            resource (§8.5.2.1.1)
``presence/full``           subscription types and probes are handled as if to the bare JID
                            (§3.1.3, §4.3); the rest is left to the router (§8.5.3.1)
``session-ended``           an available session ended without unavailable presence: the
                            server sends it for the user (§4.5.2), whatever ended the stream
==========================  ===============================================================

Fires ``initial-presence`` (arg: the Session) after a session's initial presence is handled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from lxml import etree

from xmpp_server import namespaces as ns
from xmpp_server.errors import StanzaError
from xmpp_server.modules.base import Module
from xmpp_server.modules.presence.broadcast import Broadcast
from xmpp_server.modules.presence.states import SUBSCRIPTION_TYPES
from xmpp_server.modules.presence.subscription import Subscriptions
from xmpp_server.stanza import Stanza, element

if TYPE_CHECKING:
    from xmpp_server.modules.roster import Roster
    from xmpp_server.stream.session import Session

# RFC 6120 §8.2.1 / RFC 6121 §4.7.1: the defined presence types (none means available).
_TYPES = frozenset((None, "unavailable", "probe", "error")) | SUBSCRIPTION_TYPES


class Presence(Module):
    name = "presence"
    depends = ("roster",)

    def setup(self) -> None:
        roster = cast("Roster", self.host.modules["roster"])
        self.broadcast = Broadcast(self.host)
        self.subscriptions = Subscriptions(self.host, roster, self.broadcast)
        self.on("pre-presence", self.outbound)
        self.on("presence/broadcast", self.from_client)
        self.on("presence/bare", self.to_bare)
        self.on("presence/full", self.to_full)
        self.on("session-ended", self.session_ended)
        self.offer(self._stream_feature)

    @staticmethod
    def _stream_feature(session: Session, features: etree._Element) -> None:
        if session.username is not None and session.jid is None:
            # §3.4: subscription pre-approval is advertised after authentication.
            etree.SubElement(features, "{" + ns.PRE_APPROVAL + "}sub",
                             nsmap={None: ns.PRE_APPROVAL})

    async def outbound(self, stanza: Stanza) -> bool | None:
        if stanza.origin is None:
            return None
        type_ = stanza.type
        if type_ not in _TYPES:
            raise StanzaError("bad-request", f"unknown presence type {type_!r}")
        if stanza.to is None:
            return None  # the router hands it to presence/broadcast
        if type_ in SUBSCRIPTION_TYPES:
            await self.subscriptions.outbound(stanza)
            return True
        if type_ in (None, "unavailable"):
            await self.broadcast.track_directed(stanza)
        return None

    async def from_client(self, stanza: Stanza) -> bool:
        session = stanza.origin
        if session is not None:
            if stanza.type is None:
                await self.broadcast.available(session, stanza.el)
            elif stanza.type == "unavailable":
                await self.broadcast.unavailable(session, stanza.el)
            # a subscription, probe or error with no 'to' addresses nobody: dropped
        return True

    async def to_bare(self, stanza: Stanza) -> bool:
        type_ = stanza.type
        if type_ in SUBSCRIPTION_TYPES:
            await self.subscriptions.inbound(stanza)
        elif type_ == "probe":
            await self.broadcast.answer_probe(stanza)
        elif type_ in (None, "unavailable", "error"):
            self.broadcast.deliver(stanza)
        return True

    async def to_full(self, stanza: Stanza) -> bool | None:
        if stanza.type in SUBSCRIPTION_TYPES or stanza.type == "probe":
            assert stanza.to is not None
            stanza.to = stanza.to.bare
            return await self.to_bare(stanza)
        return None

    async def session_ended(self, session: Session) -> None:
        """§4.5.2: however the stream ended, the contacts see the resource go."""
        if session.jid is not None and (session.available or session.directed):
            el = element("presence", type="unavailable", from_=str(session.jid))
            await self.broadcast.unavailable(session, el)
