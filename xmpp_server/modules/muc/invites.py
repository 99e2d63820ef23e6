"""XEP-0045 §7.8: invitations through the room, and XEP-0249 direct invitations.

Mediated (§7.8.2): an occupant sends the room ``<x xmlns='...muc#user'><invite to=.../></x>``
(several invites may share one message); the room sends each invitee a normal message from
the room with the invitation, the password if there is one, and a <body/> saying it in words —
so an invitee who is offline gets it from offline storage like any message. In a members-only
room only those who may let people in invite — admins and owners, and occupants if the room
allows invitations — and the invitee becomes a member. The invitee may decline (§7.8.3); the
room passes the decline to the inviter.

Direct (XEP-0249): a user's ``<x xmlns='jabber:x:conference'/>`` message to another user goes
through like any message; one without a body gets a XEP-0334 <store/> hint on its way out, so
offline storage keeps it for an invitee who is away.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxml import etree

from storage.rooms import StoredAffiliation
from xmpp_server import namespaces as ns
from xmpp_server.errors import JIDError, StanzaError
from xmpp_server.jid import JID
from xmpp_server.modules.muc.affiliations import apply_affiliation
from xmpp_server.modules.muc.ns import CONFERENCE, USER, X_USER, q
from xmpp_server.stanza import Stanza, element, sub

if TYPE_CHECKING:
    from xmpp_server.modules.muc.room import Room
    from xmpp_server.modules.muc.service import MucService

_INVITE = q(USER, "invite")
_DECLINE = q(USER, "decline")
_REASON = q(USER, "reason")
_BODY = "{" + ns.CLIENT + "}body"
_STORE = "{" + ns.HINTS + "}store"
_DIRECT = q(CONFERENCE, "x")
_MAX_PENDING = 1000  # invitations remembered per room, to pass declines on


async def user_x(service: MucService, room: Room, stanza: Stanza, x: etree._Element) -> None:
    """A muc#user <x/> in a message to the room: invitations or a decline."""
    invites = x.findall(_INVITE)
    if invites:
        await _invite(service, room, stanza, invites)
        return
    decline = x.find(_DECLINE)
    if decline is None:
        raise StanzaError("bad-request", "expected <invite/> or <decline/>")
    await _decline(service, room, stanza, decline)


async def _invite(service: MucService, room: Room, stanza: Stanza,
                  invites: list[etree._Element]) -> None:
    frm = stanza.frm
    assert frm is not None
    inviter = room.by_jid.get(frm)
    affiliation = room.affiliation(frm)
    admin = affiliation in ("admin", "owner")
    if inviter is None and not admin:
        raise StanzaError("not-acceptable", "you are not in this room")
    may_admit = admin or (room.config.allow_invites and inviter is not None)
    if room.config.members_only and not may_admit:
        raise StanzaError("forbidden", "only admins invite to this room")  # §7.8.2
    if not room.bucket.take():
        raise StanzaError("policy-violation", "the room is too busy", type="wait")
    invitees: list[tuple[JID, str | None]] = []
    for invite in invites:
        try:
            to = JID.parse(invite.get("to") or "")
        except JIDError:
            raise StanzaError("jid-malformed", "an invitee is not a JID") from None
        if room.affiliation(to) == "outcast":
            raise StanzaError("not-allowed", f"{to.bare_str} is banned from this room")
        invitees.append((to, invite.findtext(_REASON)))
    if room.config.members_only:
        new = [StoredAffiliation(to.bare_str, "member", room.reserved.get(to.bare_str))
               for to, _ in invitees if room.affiliation(to) == "none"]
        async with room.lock:
            await service.set_affiliations(room, new)
        for change in new:
            await apply_affiliation(room, change.jid, None, None)
    for to, reason in invitees:
        if len(room.invited) >= _MAX_PENDING:
            del room.invited[next(iter(room.invited))]  # the oldest invitation
        room.invited[to.bare_str] = frm
        await service.host.router.send(_invitation(room, frm, to, reason))


def _invitation(room: Room, inviter: JID, to: JID, reason: str | None) -> etree._Element:
    msg = element("message", from_=room.jid_str, to=str(to))
    x = sub(msg, X_USER)
    invite = sub(x, "invite", from_=inviter.bare_str)
    if reason:
        sub(invite, "reason", reason)
    if room.config.password:
        sub(x, "password", room.config.password)
    name = f"{room.config.name} ({room.jid_str})" if room.config.name else room.jid_str
    text = f"{inviter.bare_str} invites you to the room {name}"
    sub(msg, "body", f"{text}: {reason}" if reason else text)
    return msg


async def _decline(service: MucService, room: Room, stanza: Stanza,
                   decline: etree._Element) -> None:
    """§7.8.3: to the inviter — the one the room passed the invitation from, or an occupant
    or affiliated user named in 'to'; anything else is not relayed."""
    frm = stanza.frm
    assert frm is not None
    inviter = room.invited.get(frm.bare_str)
    named = decline.get("to")
    if named is not None:
        try:
            to = JID.parse(named)
        except JIDError:
            raise StanzaError("jid-malformed", "'to' is not a JID") from None
        known = (inviter is not None and to.bare == inviter.bare) or any(
            o.jid == to.bare for o in room.occupants.values()) or room.affiliation(to) in (
            "member", "admin", "owner")
        if not known:
            return
        inviter = to
    if inviter is None:
        return
    room.invited.pop(frm.bare_str, None)
    msg = element("message", from_=room.jid_str, to=str(inviter))
    out = sub(sub(msg, X_USER), "decline", from_=frm.bare_str)
    reason = decline.findtext(_REASON)
    if reason:
        sub(out, "reason", reason)
    await service.host.router.send(msg)


def direct(stanza: Stanza) -> None:
    """XEP-0249 on its way out (``pre-message``): a bodiless invitation is marked for storage."""
    el = stanza.el
    if el.find(_DIRECT) is not None and el.find(_BODY) is None and el.find(_STORE) is None:
        etree.SubElement(el, _STORE, nsmap={None: ns.HINTS})
