"""XEP-0045: Multi-User Chat, on the service domain ``[muc] domain`` (conference.<domain>).

With XEP-0249 direct invitations, XEP-0313 archives of rooms, XEP-0359 stanza ids stamped by
the room, XEP-0421 occupant ids, XEP-0425 moderation (``:1`` and the fastened ``:0``) and
XEP-0410 self-ping.

The package, by sub-feature:

================  ===========================================================================
service.py        the component: routing to rooms, loading, creating, destroying them
room.py           one room's state and its broadcasts; occupant.py: occupants and nicks
presence.py       entering, leaving, nick and presence changes (§7.1-§7.7, §7.14)
messages.py       groupchat, private messages, the subject (§7.4, §7.5, §8.1), rate limits
affiliations.py   muc#admin: roles, affiliations, kick, ban, voice, lists (§8-§10)
voice.py          voice requests and their approval (§7.13, §8.6)
owner.py          muc#owner: configuration (config.py, forms.py) and destruction (§10)
history.py        the history sent on entering (§7.2.14)
invites.py        mediated invitations and declines (§7.8), direct invitations (XEP-0249)
archive.py        XEP-0313 on the room JID; moderation.py: XEP-0425
occupant_iq.py    XEP-0410 self-ping and IQs between occupants; register.py: §7.10
disco.py          service and room discovery (§6), muc#unique (§10.1.4)
fanout.py         serialise once per recipient form, deliver to many
================  ===========================================================================

The server's disco#items lists the service (``disco-items/host``). When a session ends, its
occupants leave their rooms (``session-ended``); a deleted account loses its affiliations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xmpp_server.modules.base import Module
from xmpp_server.modules.muc import (
    affiliations,
    archive,
    disco,
    invites,
    moderation,
    occupant_iq,
    owner,
    register,
    voice,
)
from xmpp_server.modules.muc.ns import X_DATA, X_USER
from xmpp_server.modules.muc.service import MucService
from xmpp_server.namespaces import PING
from xmpp_server.stanza import Stanza, iq_result

if TYPE_CHECKING:
    from xmpp_server.modules.disco import DiscoReply
    from xmpp_server.modules.muc.room import Room

_PING = "{" + PING + "}ping"


class Muc(Module):
    name = "muc"
    xeps = (45, 249, 313, 359, 410, 421, 425)

    def setup(self) -> None:
        service = self.service = MucService(self.host, self.host.config.muc)
        service.service_iq.update({
            ("get", disco.INFO): disco.service_info,
            ("get", disco.ITEMS): disco.service_items,
            ("get", disco.UNIQUE_QUERY): disco.unique,
        })
        service.room_iq.update({
            ("get", disco.INFO): disco.room_info,
            ("get", disco.ITEMS): disco.room_items,
            ("get", affiliations.QUERY): affiliations.get_list,
            ("set", affiliations.QUERY): affiliations.set_items,
            ("get", owner.QUERY): owner.get_config,
            ("set", owner.QUERY): owner.set_owner,
            ("get", archive.QUERY): archive.get_form,
            ("set", archive.QUERY): archive.query,
            ("set", moderation.QUERY): moderation.moderate,
            ("set", moderation.APPLY_TO): moderation.moderate_fastened,
            ("get", register.QUERY): register.get,
            ("set", register.QUERY): register.set_,
            ("get", _PING): _pong,
        })
        service.occupant_iq[("get", _PING)] = occupant_iq.ping
        service.room_messages[X_USER] = invites.user_x
        service.room_messages[X_DATA] = voice.form_message
        self.host.router.components[service.domain] = service.handle
        self.on("disco-items/host", self._list_service)
        self.on("session-ended", service.session_ended, priority=10)
        self.on("remote-session-ended", service.remote_session_ended)
        self.on("user-deleted", service.user_deleted, priority=10)
        self.on("server-stopping", service.archive.stopping)
        self.on("pre-message", self._direct_invite)

    async def stop(self) -> None:
        await self.service.stop()

    def teardown(self) -> None:
        if self.host.router.components.get(self.service.domain) == self.service.handle:
            del self.host.router.components[self.service.domain]
        super().teardown()

    def _list_service(self, reply: DiscoReply) -> None:
        reply.item(self.service.domain, "Chatrooms")

    @staticmethod
    def _direct_invite(stanza: Stanza) -> None:
        invites.direct(stanza)


async def _pong(service: MucService, room: Room, stanza: Stanza) -> None:
    """XEP-0199 to the room itself: it is there."""
    await service.reply(stanza, iq_result(stanza))
