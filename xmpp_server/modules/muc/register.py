"""XEP-0045 §7.10: registering with a room — a reserved nick, and membership with it.

get: the registered nick (<registered/>), or the muc#register form to fill in. set with the
form: the nick is reserved for the user (conflict if another user has it or uses it now) and
the user becomes a member if they had no affiliation; in a members-only room only users
already affiliated may register (registration-required). set with <remove/>: the nick is
released and a plain membership ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from storage.rooms import StoredAffiliation
from xmpp_server.errors import StanzaError
from xmpp_server.modules.muc import forms
from xmpp_server.modules.muc.affiliations import apply_affiliation
from xmpp_server.modules.muc.forms import Field
from xmpp_server.modules.muc.ns import REGISTER, REGISTER_FORM, X_DATA, q
from xmpp_server.modules.muc.occupant import prepare_nick
from xmpp_server.stanza import Stanza, element, iq_result, sub

if TYPE_CHECKING:
    from xmpp_server.modules.muc.room import Room
    from xmpp_server.modules.muc.service import MucService

QUERY = q(REGISTER, "query")
_NICK = "muc#register_roomnick"


async def get(service: MucService, room: Room, stanza: Stanza) -> None:
    assert stanza.frm is not None
    query = element(QUERY)
    nick = room.reserved.get(stanza.frm.bare_str)
    if nick is not None:
        sub(query, "registered")
        sub(query, "username", nick)
    else:
        sub(query, "instructions", "Choose the nickname to reserve in this room.")
        query.append(forms.build("form", REGISTER_FORM, [
            Field(_NICK, "text-single", "Nickname")], title="Register with the room"))
    await service.reply(stanza, iq_result(stanza, query))


async def set_(service: MucService, room: Room, stanza: Stanza) -> None:
    frm = stanza.frm
    assert frm is not None
    query = stanza.child
    assert query is not None
    bare = frm.bare_str
    affiliation = room.affiliation(frm)
    if affiliation == "outcast":
        raise StanzaError("forbidden", "you are banned from this room")
    if query.find(q(REGISTER, "remove")) is not None:
        change = StoredAffiliation(bare, "none" if affiliation == "member" else affiliation)
    else:
        x = query.find(X_DATA)
        if x is None:
            raise StanzaError("bad-request", "expected the registration form")
        nick, key = prepare_nick(forms.single(forms.parse(x, REGISTER_FORM).get(_NICK, [])))
        holder = room.reserved_by(key)
        occupant = room.occupants.get(key)
        if (holder is not None and holder != bare) or (
                occupant is not None and occupant.jid.bare_str != bare):
            raise StanzaError("conflict", "this nickname is taken")
        if affiliation == "none" and room.config.members_only:
            raise StanzaError("registration-required", "only members register here")
        change = StoredAffiliation(bare, "member" if affiliation == "none" else affiliation,
                                   nick)
    async with room.lock:
        if change.affiliation == "none" and affiliation == "none":
            room.reserved.pop(bare, None)  # nothing stored: a plain user without a nick
        else:
            await service.set_affiliations(room, [change])
    await service.reply(stanza, iq_result(stanza))
    if change.affiliation != affiliation:
        await apply_affiliation(room, bare, None, None)
