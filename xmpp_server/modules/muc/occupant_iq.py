"""IQs to an occupant's room JID: XEP-0410 self-ping, and private IQs (XEP-0045 §7.x).

XEP-0410 (with ``muc#self-ping-optimization``): a client pings its own room JID to learn
whether it is still in the room; the room answers for it — a result if the sender is that
occupant, not-acceptable if it is not in the room.

Any other get/set from an occupant to another occupant is forwarded from the sender's room
JID, under a fresh id, to the recipient's session (vcard-temp requests to the recipient's
account, where vCards live, as Prosody and ejabberd do); the answer comes back the same way,
so neither side learns the other's real JID.
"""

from __future__ import annotations

import asyncio
import secrets
from copy import deepcopy
from dataclasses import dataclass
from typing import TYPE_CHECKING

from xmpp_server.errors import StanzaError
from xmpp_server.jid import JID
from xmpp_server.modules.muc.occupant import nick_key
from xmpp_server.stanza import Stanza, iq_result

if TYPE_CHECKING:
    from xmpp_server.modules.muc.room import Room
    from xmpp_server.modules.muc.service import MucService

_VCARD = "{vcard-temp}vCard"
_TIMEOUT = 60.0


@dataclass(frozen=True)
class Forwarded:
    requester: JID  # real full JID that asked
    id: str | None  # its id
    responder: JID  # where the request went
    frm: str  # the room JID the answer comes from


async def ping(service: MucService, room: Room, stanza: Stanza) -> None:
    """XEP-0410 §3: the room answers a self-ping for the occupant."""
    frm, to = stanza.frm, stanza.to
    assert frm is not None and to is not None and to.resource is not None
    occupant = room.by_jid.get(frm)
    if occupant is None:
        raise StanzaError("not-acceptable", "you are not in this room")
    if nick_key(to.resource) == occupant.key:
        await service.reply(stanza, iq_result(stanza))
        return
    await forward(service, room, stanza)


async def forward(service: MucService, room: Room, stanza: Stanza) -> None:
    frm, to = stanza.frm, stanza.to
    assert frm is not None and to is not None and to.resource is not None
    sender = room.by_jid.get(frm)
    if sender is None:
        raise StanzaError("not-acceptable", "you are not in this room")
    recipient = room.by_nick(to.resource)
    if recipient is None or recipient.primary is None:
        raise StanzaError("item-not-found", "no such occupant")
    child = stanza.child
    responder = (recipient.jid if child is not None and child.tag == _VCARD
                 else recipient.primary.jid)
    new_id = secrets.token_hex(10)
    service.forwarded[new_id] = Forwarded(frm, stanza.id, responder, str(to))
    asyncio.get_running_loop().call_later(_TIMEOUT, service.forwarded.pop, new_id, None)
    el = deepcopy(stanza.el)
    el.set("from", room.nick_jid(sender.nick))
    el.set("to", str(responder))
    el.set("id", new_id)
    await service.host.router.send(el)


async def response(service: MucService, stanza: Stanza) -> None:
    """The answer to a forwarded IQ goes back to who asked, from the recipient's room JID."""
    pending = service.forwarded.get(stanza.id or "")
    if pending is None or stanza.frm != pending.responder:
        return
    del service.forwarded[stanza.id or ""]
    el = deepcopy(stanza.el)
    el.set("from", pending.frm)
    el.set("to", str(pending.requester))
    if pending.id is None:
        el.attrib.pop("id", None)
    else:
        el.set("id", pending.id)
    await service.host.router.send(el)
