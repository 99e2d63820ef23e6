"""XEP-0045 §7.1-§7.7 and §7.14: entering a room, nick and presence changes, leaving.

Presence to ``room@service/nick``:

==============  ============================================================================
from            what happens
==============  ============================================================================
a non-occupant  enter (§7.2), creating the room if there is none (§10.1); the checks run in
                the XEP's order: locked room (item-not-found), outcast (forbidden), members
                only (registration-required), password (not-authorized), nick taken or
                reserved by another user (conflict), room full (service-unavailable)
an occupant     same nick: a presence update (§7.7); another nick: a nick change (§7.6)
type            one session leaves (§7.14); the occupant stays while another of its
unavailable     sessions is in the room
type error      the occupant's client bounced something: it is taken out, status 333
==============  ============================================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxml import etree

from xmpp_server.errors import StanzaError
from xmpp_server.jid import JID
from xmpp_server.modules.muc.fanout import Target
from xmpp_server.modules.muc.history import parse_request
from xmpp_server.modules.muc.ns import MUC, OCCUPANT_ID_EL, X_MUC, X_USER, q
from xmpp_server.modules.muc.occupant import Occupant, prepare_nick
from xmpp_server.stanza import Stanza, element

if TYPE_CHECKING:
    from xmpp_server.modules.muc.room import Room
    from xmpp_server.modules.muc.service import MucService

_DROPPED = frozenset((X_MUC, X_USER, OCCUPANT_ID_EL, "{jabber:client}error"))
_PASSWORD = q(MUC, "password")
_HISTORY = q(MUC, "history")


def clean(el: etree._Element) -> etree._Element:
    """What of a client's presence the room repeats: show, status, caps... not MUC elements."""
    out = element("presence")
    for child in el:
        if isinstance(child.tag, str) and child.tag not in _DROPPED:
            out.append(etree.fromstring(etree.tostring(child)))
    return out


async def handle(service: MucService, stanza: Stanza) -> None:
    to, frm = stanza.to, stanza.frm
    assert to is not None and frm is not None
    type_ = stanza.type
    room = await service.room(to.bare)
    occupant = room.by_jid.get(frm) if room is not None else None
    if room is not None and occupant is not None and _reconnected(stanza, occupant, frm):
        room.drop_session(frm)  # the same full JID on a new stream: it enters afresh
        occupant = None
    if type_ == "unavailable":
        if room is not None and occupant is not None and not _stale(stanza, room, occupant):
            await room.part(frm, clean(stanza.el))
        return
    if type_ == "error":
        if room is not None and occupant is not None:
            await room.part(frm, element("presence"), codes=("333",))
        return
    if type_ is not None:
        return  # rooms do not take part in subscriptions or probes
    if to.resource is None:
        raise StanzaError("jid-malformed", "a nickname is needed to enter a room")  # §7.2.1
    nick, key = prepare_nick(to.resource)
    if room is not None and occupant is not None:
        target = occupant.targets[frm]
        if key == occupant.key and nick == occupant.nick:
            await _update(room, occupant, target, stanza)
        else:
            await _change_nick(room, occupant, target, stanza, nick, key)
        return
    await _enter(service, room, stanza, nick, key, modified=nick != to.resource)


def _reconnected(stanza: Stanza, occupant: Occupant, frm: JID) -> bool:
    origin = stanza.origin
    return origin is not None and occupant.targets[frm].session is not origin


def _stale(stanza: Stanza, room: Room, occupant: Occupant) -> bool:
    """Unavailable presence the server made up for a session that is not this occupant's.

    When a stream ends, the presence feature tells everyone who got directed presence from
    it, this room included. If the same full JID has meanwhile entered again on a new stream
    (which still has the room in its directed presence), that notice is about the old one.
    """
    if stanza.origin is not None:
        return False
    assert stanza.frm is not None
    session = occupant.targets[stanza.frm].session
    if session is None or session.closed:
        return False
    return JID(room.jid.local, room.jid.domain, occupant.nick) in session.directed


async def _enter(service: MucService, room: Room | None, stanza: Stanza, nick: str, key: str,
                 modified: bool) -> None:
    to, frm = stanza.to, stanza.frm
    assert to is not None and frm is not None
    x = stanza.el.find(X_MUC)
    wanted = parse_request(x.find(_HISTORY) if x is not None else None)
    created = False
    if room is None:
        # §10.1.1: the first to enter creates the room and owns it; with the MUC protocol
        # (<x/>) the room is locked until configured (unless ``[muc] lock_new_rooms`` is
        # off), the old groupchat protocol gets an instant room (§7.2.2 note, as Prosody).
        room, created = service.create(to.bare, frm,
                                       locked=x is not None and service.settings.lock_new_rooms)
    affiliation = room.affiliation(frm)
    if room.destroyed or (room.locked and affiliation != "owner"):
        raise StanzaError("item-not-found", "no such room")  # §10.1.1: locked until configured
    if affiliation == "outcast":
        raise StanzaError("forbidden", "you are banned from this room")  # §7.2.7
    if room.config.members_only and affiliation == "none":
        raise StanzaError("registration-required", "the room is members-only")  # §7.2.6
    existing = room.occupants.get(key)
    if existing is not None and existing.jid != frm.bare:
        raise StanzaError("conflict", "this nickname is taken")  # §7.2.9
    holder = room.reserved_by(key)
    if holder is not None and holder != frm.bare_str:
        raise StanzaError("conflict", "this nickname is reserved")  # §7.2.9
    if existing is None and not created:
        password = room.config.password
        given = x.findtext(_PASSWORD) if x is not None else None
        if password and given != password:
            raise StanzaError("not-authorized", "a password is needed")  # §7.2.5
        if len(room.occupants) >= room.max_occupants() and affiliation not in ("owner",
                                                                               "admin"):
            raise StanzaError("service-unavailable", "the room is full")  # §7.2.10
    occupant = existing or Occupant(nick, key, frm.bare, room.default_role(affiliation),
                                    room.occupant_id_of(frm))
    origin = stanza.origin if stanza.origin is not None and stanza.origin.jid == frm else None
    target = Target(frm, origin, clean(stanza.el))
    # §7.2.3: the others' presence first, then the newcomer's own to all, then the history
    # (§7.2.14), then the subject, always last (§7.2.15).
    await room.send_occupants_to(target, occupant)
    room.admit(occupant, target)
    codes = []
    if room.config.whois == "anyone":
        codes.append("100")  # §7.2.4: everyone sees real JIDs
    if room.config.archiving:
        codes.append("170")  # the discussion is archived
    if created:
        codes.append("201")  # §10.1.1: a new room
    if modified:
        codes.append("210")  # the service changed the nick (RFC 8266 normalisation)
    await room.broadcast_presence(occupant, self_codes=codes, cached=True)
    fanout = service.fanout
    for template in room.history.select(wanted, room.config.history_length):
        await fanout.send_one(template, target)
    await fanout.send_one(room.subject_message(), target)


async def _update(room: Room, occupant: Occupant, target: Target, stanza: Stanza) -> None:
    """§7.7: a new show or status is broadcast; it is the occupant's presence from now on."""
    target.presence = clean(stanza.el)
    occupant.primary = target
    room.changed(occupant)
    await room.broadcast_presence(occupant, cached=True)


async def _change_nick(room: Room, occupant: Occupant, target: Target, stanza: Stanza,
                       nick: str, key: str) -> None:
    """§7.6: unavailable from the old nick with 303 and the new one, then the new presence."""
    if len(occupant.targets) > 1:
        raise StanzaError("not-acceptable", "you are in the room from several clients")
    existing = room.occupants.get(key)
    if existing is not None and existing is not occupant:
        raise StanzaError("conflict", "this nickname is taken")
    holder = room.reserved_by(key)
    if holder is not None and holder != occupant.jid.bare_str:
        raise StanzaError("conflict", "this nickname is reserved")
    await room.broadcast_presence(occupant, type_="unavailable", codes=("303",), nick=nick,
                                  base=element("presence"))
    room.rename(occupant, nick, key)
    target.presence = clean(stanza.el)
    assert stanza.to is not None and stanza.to.resource is not None
    modified = ("210",) if nick != stanza.to.resource else ()
    await room.broadcast_presence(occupant, self_codes=modified, cached=True)
