"""XEP-0045 §8-§10: roles and affiliations through ``muc#admin`` (kick, voice, ban, lists).

One IQ may carry several items (§9.2 and others): every item is checked first, then all are
applied, so a refused item changes nothing. Who may do what:

=============================  ==============================================================
change                          who
=============================  ==============================================================
role none/visitor/participant  a moderator, not on an admin or owner (not-allowed) (§8.2-§8.4)
role moderator (or revoking)   an admin or owner (§9.6-§9.7)
affiliation member/none/        an admin, not on an admin or owner (not-allowed) (§9.1-§9.4);
outcast                         an owner on anyone
affiliation admin/owner        an owner (§10.3-§10.7); the last owner stays (conflict)
=============================  ==============================================================

Lists (get): members, outcasts, admins and owners to admins and owners; moderators and
participants to moderators. Anyone else gets forbidden.

An affiliation change reaches occupants at once: outcasts are removed (301), a members-only
room removes whoever is no longer a member (321), the rest get their new role.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lxml import etree

from storage.rooms import StoredAffiliation
from xmpp_server.errors import JIDError, StanzaError
from xmpp_server.jid import JID
from xmpp_server.modules.muc.ns import ADMIN, q
from xmpp_server.modules.muc.occupant import AFFILIATION_RANK, AFFILIATIONS, ROLES, Occupant
from xmpp_server.stanza import Stanza, element, iq_result, sub

if TYPE_CHECKING:
    from xmpp_server.modules.muc.room import Room
    from xmpp_server.modules.muc.service import MucService

QUERY = q(ADMIN, "query")
_ITEM = q(ADMIN, "item")
_REASON = q(ADMIN, "reason")


@dataclass
class RoleChange:
    occupant: Occupant
    role: str
    reason: str | None


def _items(stanza: Stanza) -> list[etree._Element]:
    query = stanza.child
    assert query is not None
    items = query.findall(_ITEM)
    if not items:
        raise StanzaError("bad-request", "no item")
    return items


async def get_list(service: MucService, room: Room, stanza: Stanza) -> None:
    """§8.5, §9.5, §9.8, §10.5, §10.8: who has an affiliation or a role."""
    assert stanza.frm is not None
    item = _items(stanza)[0]
    actor_aff = room.affiliation(stanza.frm)
    actor = room.by_jid.get(stanza.frm)
    query = element(QUERY)
    affiliation, role = item.get("affiliation"), item.get("role")
    if affiliation is not None:
        if affiliation not in AFFILIATIONS or affiliation == "none":
            raise StanzaError("bad-request", "unknown affiliation")
        if actor_aff not in ("admin", "owner"):
            raise StanzaError("forbidden", "only admins and owners see the lists")
        for jid, aff in sorted(room.affiliations.items()):
            if aff == affiliation:
                sub(query, "item", affiliation=aff, jid=jid, nick=room.reserved.get(jid))
    elif role is not None:
        if role not in ROLES or role == "none":
            raise StanzaError("bad-request", "unknown role")
        if actor is None or actor.role != "moderator":
            raise StanzaError("forbidden", "only moderators see who has a role")
        for occupant in room.occupants.values():
            if occupant.role == role:
                primary = occupant.primary
                sub(query, "item", role=role, nick=occupant.nick,
                    affiliation=room.affiliation(occupant.jid),
                    jid=str(primary.jid) if primary is not None else None)
    else:
        raise StanzaError("bad-request", "an item needs an affiliation or a role")
    await service.reply(stanza, iq_result(stanza, query))


async def set_items(service: MucService, room: Room, stanza: Stanza) -> None:
    """Check every item, apply them all, answer, then tell the occupants."""
    assert stanza.frm is not None
    actor = room.by_jid.get(stanza.frm)
    roles: list[RoleChange] = []
    affs: list[StoredAffiliation] = []
    async with room.lock:
        for item in _items(stanza):
            reason = item.findtext(_REASON)
            if item.get("affiliation") is not None:
                affs.append(_affiliation_change(room, stanza.frm, item, reason))
            elif item.get("role") is not None:
                roles.append(_role_change(room, actor, item, reason))
            else:
                raise StanzaError("bad-request", "an item needs an affiliation or a role")
        _keep_an_owner(room, affs)
        await service.set_affiliations(room, affs)
    await service.reply(stanza, iq_result(stanza))
    actor_nick = actor.nick if actor is not None else None
    for change in affs:
        await apply_affiliation(room, change.jid, actor_nick, change.reason)
    for rc in roles:
        await apply_role(room, rc, actor_nick)


def _affiliation_change(room: Room, actor_jid: JID, item: etree._Element,
                        reason: str | None) -> StoredAffiliation:
    new = item.get("affiliation", "")
    if new not in AFFILIATIONS:
        raise StanzaError("bad-request", f"unknown affiliation {new!r}")
    target = _target_jid(room, item)
    actor = room.affiliation(actor_jid)
    current = room.affiliations.get(target, "none")
    if actor not in ("admin", "owner"):
        raise StanzaError("forbidden", "only admins and owners change affiliations")
    if actor == "admin" and (AFFILIATION_RANK[new] >= AFFILIATION_RANK["admin"]
                             or AFFILIATION_RANK[current] >= AFFILIATION_RANK["admin"]):
        raise StanzaError("not-allowed", "only owners change admins and owners")
    nick = item.get("nick") if new in ("member", "admin", "owner") else None
    if nick is None and new != "outcast":
        nick = room.reserved.get(target)
    return StoredAffiliation(target, new, nick, reason)


def _target_jid(room: Room, item: etree._Element) -> str:
    """The bare JID an affiliation item is about: its 'jid', or the occupant with its 'nick'."""
    raw = item.get("jid")
    if raw is not None:
        try:
            return JID.parse(raw).bare_str
        except JIDError:
            raise StanzaError("jid-malformed", "not a JID") from None
    nick = item.get("nick")
    occupant = room.by_nick(nick) if nick else None
    if occupant is None:
        raise StanzaError("item-not-found" if nick else "bad-request", "no such occupant")
    return occupant.jid.bare_str


def _role_change(room: Room, actor: Occupant | None, item: etree._Element,
                 reason: str | None) -> RoleChange:
    role = item.get("role", "")
    if role not in ROLES:
        raise StanzaError("bad-request", f"unknown role {role!r}")
    if actor is None or actor.role != "moderator":
        raise StanzaError("forbidden", "only moderators change roles")
    nick = item.get("nick")
    target = room.by_nick(nick) if nick else None
    if target is None:
        raise StanzaError("item-not-found" if nick else "bad-request", "no such occupant")
    actor_rank = AFFILIATION_RANK[room.affiliation(actor.jid)]
    target_aff = room.affiliation(target.jid)
    if target_aff in ("admin", "owner") and role != "moderator":
        raise StanzaError("not-allowed", "admins and owners keep their role")  # §8.2, §9.7
    if (role == "moderator" or target.role == "moderator") and actor_rank < AFFILIATION_RANK[
            "admin"]:
        raise StanzaError("not-allowed", "only admins and owners grant or revoke moderation")
    return RoleChange(target, role, reason)


def _keep_an_owner(room: Room, changes: list[StoredAffiliation]) -> None:
    owners = {jid for jid, aff in room.affiliations.items() if aff == "owner"}
    for change in changes:
        if change.affiliation == "owner":
            owners.add(change.jid)
        else:
            owners.discard(change.jid)
    if not owners:
        raise StanzaError("conflict", "a room keeps at least one owner")  # §10.4


async def apply_affiliation(room: Room, jid: str, actor: str | None,
                            reason: str | None) -> None:
    """Tell the room what a stored affiliation change means for the occupants it concerns."""
    for occupant in [o for o in room.occupants.values()
                     if o.jid.bare_str == jid or (o.jid.domain == jid and "@" not in jid)]:
        aff = room.affiliation(occupant.jid)
        if aff == "outcast":
            await room.remove(occupant, ("301",), actor=actor, reason=reason,
                              affiliation="outcast")  # §9.1
        elif aff == "none" and room.config.members_only:
            await room.remove(occupant, ("321",), actor=actor, reason=reason,
                              affiliation="none")  # §9.4
        else:
            occupant.role = room.default_role(aff)
            room.changed(occupant)
            await room.broadcast_presence(occupant, actor=actor, reason=reason)


async def apply_role(room: Room, change: RoleChange, actor: str | None) -> None:
    occupant = change.occupant
    if room.occupants.get(occupant.key) is not occupant:
        return  # left meanwhile
    if change.role == "none":
        await room.remove(occupant, ("307",), actor=actor, reason=change.reason)  # §8.2 kick
        return
    occupant.role = change.role
    room.changed(occupant)
    await room.broadcast_presence(occupant, actor=actor, reason=change.reason)
