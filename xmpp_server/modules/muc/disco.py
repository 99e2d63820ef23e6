"""XEP-0045 §6: discovering the service, its rooms, and a room's features.

- the service: identity conference/text, the MUC features (§6.1); its items are the public
  rooms, stored and in memory, that are open (not locked while being created) (§6.3);
- a room: its identity with its name, features telling what kind of room it is (§6.4), and the
  muc#roominfo form (§15.5.4); its items are empty (occupants are not listed, §6.5);
- ``muc#unique`` (§10.1.4): a room name nobody uses.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from xmpp_server import namespaces as ns
from xmpp_server.errors import StanzaError
from xmpp_server.jid import JID
from xmpp_server.modules.muc import forms
from xmpp_server.modules.muc.forms import Field
from xmpp_server.modules.muc.ns import (
    MAM,
    MODERATE,
    MODERATE_0,
    MUC,
    OCCUPANT_ID,
    REGISTER,
    REQUEST,
    ROOMINFO,
    SELF_PING,
    STABLE_ID,
    UNIQUE,
    q,
)
from xmpp_server.stanza import Stanza, element, iq_result, sub

if TYPE_CHECKING:
    from xmpp_server.modules.muc.room import Room
    from xmpp_server.modules.muc.service import MucService

INFO = q(ns.DISCO_INFO, "query")
ITEMS = q(ns.DISCO_ITEMS, "query")
UNIQUE_QUERY = q(UNIQUE, "unique")
SERVICE_FEATURES = (ns.DISCO_INFO, ns.DISCO_ITEMS, MUC, UNIQUE, STABLE_ID, OCCUPANT_ID)


def _no_node(stanza: Stanza) -> None:
    child = stanza.child
    if child is not None and child.get("node") is not None:
        raise StanzaError("item-not-found", "no such node")


async def service_info(service: MucService, stanza: Stanza) -> None:
    _no_node(stanza)
    query = element(INFO)
    sub(query, "identity", category="conference", type="text", name="Chatrooms")
    for var in SERVICE_FEATURES:
        sub(query, "feature", var=var)
    await service.reply(stanza, iq_result(stanza, query))


async def service_items(service: MucService, stanza: Stanza) -> None:
    _no_node(stanza)
    query = element(ITEMS)
    for jid, name in await service.public_rooms():
        sub(query, "item", jid=jid, name=name)
    await service.reply(stanza, iq_result(stanza, query))


async def unique(service: MucService, stanza: Stanza) -> None:
    """§10.1.4: a name for a new room that no room has."""
    while True:
        name = secrets.token_hex(8)
        if await service.room(JID(name, service.domain)) is None:
            break
    result = element(UNIQUE_QUERY)
    result.text = name
    await service.reply(stanza, iq_result(stanza, result))


def room_features(room: Room) -> list[str]:
    c = room.config
    features = [
        ns.DISCO_INFO, ns.DISCO_ITEMS, MUC, STABLE_ID, SELF_PING, OCCUPANT_ID, ns.SID,
        REGISTER, MODERATE, MODERATE_0, REQUEST,
        "muc_public" if c.public else "muc_hidden",
        "muc_persistent" if c.persistent else "muc_temporary",
        "muc_membersonly" if c.members_only else "muc_open",
        "muc_moderated" if c.moderated else "muc_unmoderated",
        "muc_passwordprotected" if c.password else "muc_unsecured",
        "muc_nonanonymous" if c.whois == "anyone" else "muc_semianonymous",
    ]
    if c.archiving:
        features.append(MAM)
    return features


async def room_info(service: MucService, room: Room, stanza: Stanza) -> None:
    _no_node(stanza)
    c = room.config
    query = element(INFO)
    sub(query, "identity", category="conference", type="text",
        name=c.name or room.jid.local)
    for var in room_features(room):
        sub(query, "feature", var=var)
    query.append(forms.build("result", ROOMINFO, [
        Field("muc#roominfo_description", values=(c.description,)),
        Field("muc#roomconfig_roomname", values=(c.name,)),
        Field("muc#roominfo_occupants", values=(str(len(room.occupants)),)),
        Field("muc#roominfo_subject", values=(room.subject or "",)),
        Field("muc#roominfo_subjectmod", values=("1" if c.change_subject else "0",)),
        Field("muc#maxhistoryfetch", values=(str(c.history_length),)),
        Field("muc#roomconfig_allowinvites", values=("1" if c.allow_invites else "0",)),
        Field("muc#roomconfig_changesubject", values=("1" if c.change_subject else "0",)),
        Field("muc#roomconfig_maxusers", values=(str(room.max_occupants()),)),
        Field("muc#roomconfig_whois", values=(c.whois,)),
    ]))
    await service.reply(stanza, iq_result(stanza, query))


async def room_items(service: MucService, room: Room, stanza: Stanza) -> None:
    _no_node(stanza)
    await service.reply(stanza, iq_result(stanza, element(ITEMS)))
