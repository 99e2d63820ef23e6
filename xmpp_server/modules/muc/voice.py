"""XEP-0045 §7.13 and §8.6: a visitor asks for voice, a moderator approves it.

A visitor of a moderated room sends the room a submitted ``muc#request`` form asking for the
participant role; the room forwards an approval form (the requester's nick and, as moderators
see real JIDs, the full JID) to the sessions of every moderator. A moderator who sends that
form back with ``muc#request_allow`` true gives the occupant voice, announced as any role
change. A request from someone who already has voice is ignored; one occupant's repeated
requests reach the moderators at most once a minute.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from lxml import etree

from xmpp_server.errors import StanzaError
from xmpp_server.modules.muc import forms
from xmpp_server.modules.muc.affiliations import RoleChange, apply_role
from xmpp_server.modules.muc.fanout import Template
from xmpp_server.modules.muc.ns import REQUEST
from xmpp_server.stanza import Stanza, element, sub

if TYPE_CHECKING:
    from xmpp_server.modules.muc.room import Room
    from xmpp_server.modules.muc.service import MucService

REPEAT_AFTER = 60.0  # seconds before the same occupant's request is forwarded again


async def form_message(service: MucService, room: Room, stanza: Stanza,
                       x: etree._Element) -> None:
    """A message to the room carrying a data form: a voice request or its approval."""
    fields = forms.parse(x, REQUEST)
    if forms.single(fields.get("FORM_TYPE", [])) != REQUEST:
        raise StanzaError("bad-request", "only voice requests go to the room as forms")
    assert stanza.frm is not None
    sender = room.by_jid.get(stanza.frm)
    if sender is None:
        raise StanzaError("not-acceptable", "you are not in this room")
    if "muc#request_allow" in fields:
        await _decide(room, sender.nick, sender.role, fields)
        return
    if forms.single(fields.get("muc#role", [])) not in ("", "participant"):
        raise StanzaError("bad-request", "only the participant role can be requested")
    if sender.role != "visitor":
        return  # it has voice already
    now = time.monotonic()
    asked = room.voice_requests.get(sender.key)
    if asked is not None and now - asked < REPEAT_AFTER:
        return
    if len(room.voice_requests) > 256:  # forget the old ones rather than grow
        room.voice_requests = {k: t for k, t in room.voice_requests.items()
                               if now - t < REPEAT_AFTER}
    room.voice_requests[sender.key] = now
    targets = [t for m in room.moderators() for t in m.targets.values()]
    if targets:
        await service.fanout.send(Template(_approval_form(room, sender.nick, stanza)), targets)


def _approval_form(room: Room, nick: str, stanza: Stanza) -> etree._Element:
    """§8.6 example: what moderators are asked."""
    msg = element("message", from_=room.jid_str, id=stanza.id or None)
    x = forms.build("form", REQUEST, [
        forms.Field("muc#role", "list-single", "Requested role", ("participant",),
                    (("participant", None),)),
        forms.Field("muc#jid", "jid-single", "User ID", (str(stanza.frm),)),
        forms.Field("muc#roomnick", "text-single", "Room Nickname", (nick,)),
        forms.Field("muc#request_allow", "boolean", "Grant voice to this person?", ("false",)),
    ], title="Voice request")
    msg.append(x)
    sub(msg, "body", f"{nick} asks for voice. To allow it, approve this form.")
    return msg


async def _decide(room: Room, actor_nick: str, actor_role: str,
                  fields: dict[str, list[str]]) -> None:
    """§8.6: a moderator's answer; only approvals change anything."""
    if actor_role != "moderator":
        raise StanzaError("forbidden", "only moderators approve voice requests")
    if not forms.boolean(fields["muc#request_allow"], "muc#request_allow"):
        return
    nick = forms.single(fields.get("muc#roomnick", []))
    target = room.by_nick(nick) if nick else None
    if target is None:
        raise StanzaError("item-not-found", "no such occupant")
    room.voice_requests.pop(target.key, None)
    if target.role == "visitor":
        await apply_role(room, RoleChange(target, "participant", None), actor_nick)
