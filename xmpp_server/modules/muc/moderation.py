"""XEP-0425: Moderated Message Retraction (urn:xmpp:message-moderate:1).

A moderator asks the room to retract a message by its stanza-id::

    <iq type='set' to='room@service'>
      <moderate id='stanza-id' xmlns='urn:xmpp:message-moderate:1'>
        <retract xmlns='urn:xmpp:message-retract:1'/><reason>spam</reason>
      </moderate>
    </iq>

The archive keeps a tombstone in its place (the original's sender, ids and occupant-id, and a
<retracted/> saying who moderated it and when, §5), the history sent on join shows the same
tombstone, and the occupants get a <retract/> notice (§4), archived too so that clients
catching up through MAM apply it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lxml import etree

from storage.rooms import ArchivedMessage
from xmpp_server import namespaces as ns
from xmpp_server.errors import StanzaError
from xmpp_server.modules.messages import new_stanza_id
from xmpp_server.modules.muc.fanout import Template
from xmpp_server.modules.muc.history import delayed, xep0082
from xmpp_server.modules.muc.ns import MODERATE, OCCUPANT_ID_EL, RETRACT, q
from xmpp_server.modules.muc.occupant import Occupant
from xmpp_server.stanza import Stanza, element, iq_result, sub

if TYPE_CHECKING:
    from xmpp_server.modules.muc.room import Room
    from xmpp_server.modules.muc.service import MucService

QUERY = q(MODERATE, "moderate")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
_STANZA_ID = "{" + ns.SID + "}stanza-id"


def _moderated(parent: etree._Element, room: Room, moderator: Occupant,
               reason: str | None) -> None:
    moderated = sub(parent, q(MODERATE, "moderated"), by=room.nick_jid(moderator.nick))
    sub(moderated, OCCUPANT_ID_EL, id=moderator.id)
    if reason:
        sub(parent, "reason", reason)


async def moderate(service: MucService, room: Room, stanza: Stanza) -> None:
    assert stanza.frm is not None
    moderator = room.by_jid.get(stanza.frm)
    if moderator is None or moderator.role != "moderator":
        raise StanzaError("forbidden", "only moderators retract messages")
    request = stanza.child
    assert request is not None
    sid = request.get("id")
    if not sid:
        raise StanzaError("bad-request", "which message? (the 'id' attribute)")
    if request.find(q(RETRACT, "retract")) is None:
        raise StanzaError("feature-not-implemented", "only retraction is supported")
    reason = request.findtext(q(MODERATE, "reason"))
    await service.archive.flush()
    original = await service.storage.find(room.jid_str, sid)
    if original is None:
        raise StanzaError("item-not-found", "no such message in the archive")
    if not original.retracted:
        tombstone = _tombstone(room, original, moderator, reason)
        await service.storage.retract(room.jid_str, sid, etree.tostring(
            tombstone, encoding="unicode"))
        room.history.replace(sid, delayed(Template(tombstone), room.jid_str,
                                                 original.stored_at))
    await service.reply(stanza, iq_result(stanza))
    if original.retracted:
        return
    notice = element("message", from_=room.jid_str, type="groupchat", id=new_stanza_id())
    retract = sub(notice, q(RETRACT, "retract"), id=sid)
    _moderated(retract, room, moderator, reason)
    notice_id = new_stanza_id()
    etree.SubElement(notice, _STANZA_ID, {"id": notice_id, "by": room.jid_str},
                     nsmap={None: ns.SID})
    template = Template(notice)
    await room.broadcast(template)
    if room.config.archiving:
        service.archive.add(room.jid_str, ArchivedMessage(
            notice_id, "", None, datetime.now(UTC), (template.head + template.tail).decode()))


def _tombstone(room: Room, original: ArchivedMessage, moderator: Occupant,
               reason: str | None) -> etree._Element:
    """§5: what stays of a moderated message: who sent it, its ids, and who retracted it."""
    el = etree.fromstring(original.xml, _PARSER)
    tomb = element("message", from_=el.get("from"), type="groupchat", id=el.get("id"))
    retracted = sub(tomb, q(RETRACT, "retracted"), stamp=xep0082(datetime.now(UTC)))
    _moderated(retracted, room, moderator, reason)
    for child in list(el):
        if child.tag in (_STANZA_ID, OCCUPANT_ID_EL):
            tomb.append(child)
    return tomb
