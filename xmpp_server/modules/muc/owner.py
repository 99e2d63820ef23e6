"""XEP-0045 §10.1-§10.2, §10.9: what owners do through ``muc#owner``.

- get: the configuration form (§10.2);
- set with a submitted form: the new configuration. The first submission unlocks a new room
  (an empty form makes it an instant room, §10.1.2); later ones are announced to the
  occupants with status 104 and friends (§10.2.1). A room that becomes members-only removes
  the non-members (322); one that becomes persistent is stored, with its affiliations;
- set with a cancelled form: a room still locked is destroyed (§10.1.3);
- set with <destroy/>: every occupant leaves with the alternate venue and reason (§10.9).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xmpp_server.errors import JIDError, StanzaError
from xmpp_server.jid import JID
from xmpp_server.modules.muc.config import apply_form, change_codes, config_form
from xmpp_server.modules.muc.ns import OWNER, X_DATA, q
from xmpp_server.stanza import Stanza, element, iq_result

if TYPE_CHECKING:
    from xmpp_server.modules.muc.room import Room
    from xmpp_server.modules.muc.service import MucService

QUERY = q(OWNER, "query")
_DESTROY = q(OWNER, "destroy")
_REASON = q(OWNER, "reason")


def _owner(room: Room, stanza: Stanza) -> None:
    assert stanza.frm is not None
    if room.affiliation(stanza.frm) != "owner":
        raise StanzaError("forbidden", "only owners configure the room")


async def get_config(service: MucService, room: Room, stanza: Stanza) -> None:
    _owner(room, stanza)
    settings = service.settings
    query = element(QUERY)
    query.append(config_form(room.config, settings.max_occupants, settings.max_history))
    await service.reply(stanza, iq_result(stanza, query))


async def set_owner(service: MucService, room: Room, stanza: Stanza) -> None:
    _owner(room, stanza)
    query = stanza.child
    assert query is not None
    destroy = query.find(_DESTROY)
    if destroy is not None:
        await _destroy(service, room, stanza, destroy.get("jid"), destroy.findtext(_REASON))
        return
    x = query.find(X_DATA)
    if x is None:
        raise StanzaError("bad-request", "expected a form or <destroy/>")
    if x.get("type") == "cancel":
        await service.reply(stanza, iq_result(stanza))
        if room.locked:
            await service.destroy(room)  # §10.1.3: the owner gave up creating it
        return
    if x.get("type") != "submit":
        raise StanzaError("bad-request", "expected a submitted form")
    settings = service.settings
    async with room.lock:
        old = room.config
        new = apply_form(old, x, settings.max_occupants, settings.max_history)
        await service.reconfigure(room, new)
        fresh = room.locked
        room.unlock()
    await service.reply(stanza, iq_result(stanza))
    if not new.persistent and old.persistent:
        await service.room_emptied(room)  # no longer kept: an empty room goes now
    if fresh or room.destroyed:
        return
    if new.members_only and not old.members_only:
        for occupant in list(room.occupants.values()):
            if room.affiliation(occupant.jid) == "none":
                await room.remove(occupant, ("322",), affiliation="none")  # §9.? / §10.2
    if old != new:
        await room.broadcast(room.status_message(change_codes(old, new)))


async def _destroy(service: MucService, room: Room, stanza: Stanza, venue: str | None,
                   reason: str | None) -> None:
    if venue is not None:
        try:
            venue = str(JID.parse(venue).bare)
        except JIDError:
            raise StanzaError("jid-malformed", "the alternate venue is not a JID") from None
    await service.reply(stanza, iq_result(stanza))
    await service.destroy(room, venue, reason)
