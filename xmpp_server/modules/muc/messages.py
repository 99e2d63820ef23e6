"""XEP-0045 §7.4, §7.5, §8.1: messages to all occupants, private messages, the subject.

A groupchat message is reflected to every occupant (its sender too, with the sender's id),
from the sender's room JID, with the room's XEP-0359 <stanza-id/> and the sender's XEP-0421
<occupant-id/> (any the sender forged are removed). Messages with a body go into the history
and, when the room archives, into its archive under that stanza id.

Only occupants speak (not-acceptable), visitors of a moderated room do not (forbidden), and
each room accepts ``[muc] rate`` messages a second on average (``burst`` at once); past that
the sender gets policy-violation (type wait) and the room stays readable.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lxml import etree

from storage.rooms import ArchivedMessage
from xmpp_server import namespaces as ns
from xmpp_server.errors import StanzaError
from xmpp_server.jid import JID
from xmpp_server.modules.messages import new_stanza_id
from xmpp_server.modules.muc.fanout import Template
from xmpp_server.modules.muc.history import delayed
from xmpp_server.modules.muc.ns import OCCUPANT_ID_EL, X_USER
from xmpp_server.modules.muc.occupant import ROLE_RANK
from xmpp_server.stanza import Stanza, element, sub

if TYPE_CHECKING:
    from xmpp_server.modules.muc.room import Room
    from xmpp_server.modules.muc.service import MucService

_BODY = "{" + ns.CLIENT + "}body"
_SUBJECT = "{" + ns.CLIENT + "}subject"
_STANZA_ID = "{" + ns.SID + "}stanza-id"
_ERROR = "{" + ns.CLIENT + "}error"


def _overactive() -> StanzaError:
    return StanzaError("policy-violation", "the room is too busy; try again later", type="wait")


async def to_room(service: MucService, room: Room, stanza: Stanza) -> None:
    """A message to the room's bare JID."""
    type_ = stanza.type
    if type_ == "groupchat":
        await groupchat(service, room, stanza)
        return
    assert stanza.frm is not None
    if type_ == "error":
        if stanza.frm in room.by_jid:  # a client that bounces room traffic is taken out
            await room.part(stanza.frm, element("presence"), codes=("333",))
        return
    for child in stanza.el:
        handler = service.room_messages.get(child.tag) if isinstance(child.tag, str) else None
        if handler is not None:
            await handler(service, room, stanza, child)
            return
    raise StanzaError("bad-request", "only groupchat messages go to the room")


async def groupchat(service: MucService, room: Room, stanza: Stanza) -> None:
    assert stanza.frm is not None
    occupant = room.by_jid.get(stanza.frm)
    if occupant is None:
        raise StanzaError("not-acceptable", "you are not in this room")  # §7.2.? / §7.4
    if ROLE_RANK[occupant.role] < ROLE_RANK["participant"]:
        raise StanzaError("forbidden", "visitors may not speak in this room")  # §7.4
    el = stanza.el
    body = el.find(_BODY)
    subject = el.find(_SUBJECT)
    if subject is not None and body is None:
        await _subject(service, room, stanza, subject.text or "")
        return
    if not room.bucket.take():
        raise _overactive()
    out = element("message", from_=room.nick_jid(occupant.nick), type="groupchat",
                  id=stanza.id)
    jid = room.jid_str
    for child in list(el):
        tag = child.tag
        if tag == _STANZA_ID and child.get("by") == jid:
            continue  # XEP-0359: only the room assigns ids under its name
        if tag in (OCCUPANT_ID_EL, X_USER, _ERROR):
            continue  # XEP-0421 §4: the sender's own occupant-id is not trusted
        out.append(child)
    sid = new_stanza_id()
    etree.SubElement(out, _STANZA_ID, {"id": sid, "by": jid}, nsmap={None: ns.SID})
    sub(out, OCCUPANT_ID_EL, id=occupant.id)
    template = Template(out)
    await room.broadcast(template)
    if body is not None:
        record(service, room, template, sid, occupant.nick, occupant.jid)


def record(service: MucService, room: Room, template: Template, sid: str, nick: str,
           sender: JID | None) -> None:
    """Keep a broadcast message: in the history and, if the room archives, in its archive."""
    stamp = datetime.now(UTC)
    room.history.add(sid, stamp, delayed(template, room.jid_str, stamp))
    if room.config.archiving:
        xml = (template.head + template.tail).decode()
        service.archive.add(room.jid_str, ArchivedMessage(
            sid, nick, None if sender is None else sender.bare_str, stamp, xml))


async def _subject(service: MucService, room: Room, stanza: Stanza, text: str) -> None:
    """§8.1: moderators change the subject; participants too if the room allows it."""
    assert stanza.frm is not None
    occupant = room.by_jid[stanza.frm]
    allowed = occupant.role == "moderator" or (
        room.config.change_subject and ROLE_RANK[occupant.role] >= ROLE_RANK["participant"])
    if not allowed:
        raise StanzaError("forbidden", "you may not change the subject")
    if not room.bucket.take():
        raise _overactive()
    room.subject = text or None
    room.subject_by = occupant.nick if text else None
    if room.config.persistent:
        await service.storage.set_subject(room.jid_str, room.subject, room.subject_by)
    out = element("message", from_=room.nick_jid(occupant.nick), type="groupchat",
                  id=stanza.id)
    sub(out, "subject", text or None)
    sub(out, OCCUPANT_ID_EL, id=occupant.id)
    await room.broadcast(Template(out))


async def private(service: MucService, room: Room, stanza: Stanza) -> None:
    """§7.5: a message to ``room/nick`` goes to that occupant, from the sender's room JID."""
    frm, to = stanza.frm, stanza.to
    assert frm is not None and to is not None and to.resource is not None
    type_ = stanza.type
    if type_ == "error":
        return  # a private message bounced: nothing to do
    if type_ == "groupchat":
        raise StanzaError("bad-request", "groupchat messages go to the room's bare JID")
    sender = room.by_jid.get(frm)
    if sender is None:
        raise StanzaError("not-acceptable", "you are not in this room")
    recipient = room.by_nick(to.resource)
    if recipient is None:
        raise StanzaError("item-not-found", "no such occupant")
    allowed = {"anyone": True, "none": False,
               "participants": ROLE_RANK[sender.role] >= ROLE_RANK["participant"],
               "moderators": sender.role == "moderator"}[room.config.allow_pm]
    if not allowed:
        raise StanzaError("forbidden", "private messages are not allowed in this room")
    if not room.bucket.take():
        raise _overactive()
    out = element("message", from_=room.nick_jid(sender.nick), type=type_, id=stanza.id)
    for child in list(stanza.el):
        if child.tag not in (OCCUPANT_ID_EL, X_USER):
            out.append(child)
    sub(out, X_USER)  # §7.5: marks it as a private message in a room
    sub(out, OCCUPANT_ID_EL, id=sender.id)
    await service.fanout.send(Template(out), list(recipient.targets.values()))
