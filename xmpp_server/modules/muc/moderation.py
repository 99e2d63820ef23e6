"""XEP-0425: Moderated Message Retraction, as ``urn:xmpp:message-moderate:1`` and ``:0``.

A moderator asks the room to retract a message by its stanza-id (v0.3 of the XEP)::

    <iq type='set' to='room@service'>
      <moderate id='stanza-id' xmlns='urn:xmpp:message-moderate:1'>
        <retract xmlns='urn:xmpp:message-retract:1'/><reason>spam</reason>
      </moderate>
    </iq>

or, as older clients still do (v0.2, slixmpp before 1.9 and the Gajim and Conversations of
that time), fastened to the message with XEP-0422::

    <iq type='set' to='room@service'>
      <apply-to xmlns='urn:xmpp:fasten:0' id='stanza-id'>
        <moderate xmlns='urn:xmpp:message-moderate:0'>
          <retract xmlns='urn:xmpp:message-retract:0'/><reason>spam</reason>
        </moderate>
      </apply-to>
    </iq>

Both are answered alike, as Prosody's mod_muc_moderation answers them. The archive keeps a
tombstone in the message's place (the original's sender, ids and occupant-id, and a
<retracted/> saying who moderated it and when, §5); the history sent on join shows the same
tombstone. The occupants get one notice in both forms, so old and new clients hide the
message (§4; archived too, so that clients catching up through MAM apply it)::

    <message from='room@service' type='groupchat'>
      <apply-to xmlns='urn:xmpp:fasten:0' id='stanza-id'>
        <moderated xmlns='urn:xmpp:message-moderate:0' by='room@service/nick'>
          <occupant-id .../><retract xmlns='urn:xmpp:message-retract:0'/><reason>spam</reason>
        </moderated>
      </apply-to>
      <retract xmlns='urn:xmpp:message-retract:1' id='stanza-id'>
        <moderated xmlns='urn:xmpp:message-moderate:1' by='room@service/nick'>
          <occupant-id .../>
        </moderated>
        <reason>spam</reason>
      </retract>
      <stanza-id xmlns='urn:xmpp:sid:0' .../>
    </message>
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
from xmpp_server.modules.muc.ns import (
    FASTEN,
    MODERATE,
    MODERATE_0,
    OCCUPANT_ID_EL,
    RETRACT,
    RETRACT_0,
    q,
)
from xmpp_server.modules.muc.occupant import Occupant
from xmpp_server.stanza import Stanza, element, iq_result, sub

if TYPE_CHECKING:
    from xmpp_server.modules.muc.room import Room
    from xmpp_server.modules.muc.service import MucService

QUERY = q(MODERATE, "moderate")
APPLY_TO = q(FASTEN, "apply-to")  # v0.2: the request fastened to the message
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
_STANZA_ID = "{" + ns.SID + "}stanza-id"


def _moderated(parent: etree._Element, room: Room, moderator: Occupant,
               reason: str | None) -> None:
    moderated = sub(parent, q(MODERATE, "moderated"), by=room.nick_jid(moderator.nick))
    sub(moderated, OCCUPANT_ID_EL, id=moderator.id)
    if reason:
        sub(parent, "reason", reason)


async def moderate(service: MucService, room: Room, stanza: Stanza) -> None:
    """v0.3: ``<moderate id='...' xmlns='urn:xmpp:message-moderate:1'/>``."""
    request = stanza.child
    assert request is not None
    await _retract(service, room, stanza, request.get("id"),
                   request.find(q(RETRACT, "retract")) is not None,
                   request.findtext(q(MODERATE, "reason")))


async def moderate_fastened(service: MucService, room: Room, stanza: Stanza) -> None:
    """v0.2: ``<moderate xmlns='urn:xmpp:message-moderate:0'/>`` in ``<apply-to id='...'/>``."""
    apply_to = stanza.child
    assert apply_to is not None
    request = apply_to.find(q(MODERATE_0, "moderate"))
    if request is None:  # another kind of fastening: nothing here applies those
        raise StanzaError("service-unavailable", "only moderation applies to messages here")
    await _retract(service, room, stanza, apply_to.get("id"),
                   request.find(q(RETRACT_0, "retract")) is not None,
                   request.findtext(q(MODERATE_0, "reason")))


async def _retract(service: MucService, room: Room, stanza: Stanza, sid: str | None,
                   retract: bool, reason: str | None) -> None:
    assert stanza.frm is not None
    moderator = room.by_jid.get(stanza.frm)
    if moderator is None or moderator.role != "moderator":
        raise StanzaError("forbidden", "only moderators retract messages")
    if not sid:
        raise StanzaError("bad-request", "which message? (the 'id' attribute)")
    if not retract:
        raise StanzaError("feature-not-implemented", "only retraction is supported")
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
    notice = _notice(room, moderator, sid, reason)
    notice_id = new_stanza_id()
    etree.SubElement(notice, _STANZA_ID, {"id": notice_id, "by": room.jid_str},
                     nsmap={None: ns.SID})
    template = Template(notice)
    await room.broadcast(template)
    if room.config.archiving:
        service.archive.add(room.jid_str, ArchivedMessage(
            notice_id, "", None, datetime.now(UTC), (template.head + template.tail).decode()))


def _notice(room: Room, moderator: Occupant, sid: str, reason: str | None) -> etree._Element:
    """What the occupants are told: the v0.2 form (fastened) and the v0.3 form, in one."""
    notice = element("message", from_=room.jid_str, type="groupchat", id=new_stanza_id())
    old = sub(sub(notice, APPLY_TO, id=sid), q(MODERATE_0, "moderated"),
              by=room.nick_jid(moderator.nick))
    sub(old, OCCUPANT_ID_EL, id=moderator.id)
    sub(old, q(RETRACT_0, "retract"))
    if reason:
        sub(old, "reason", reason)
    _moderated(sub(notice, q(RETRACT, "retract"), id=sid), room, moderator, reason)
    return notice


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
