"""Rooms for the real-client matrix, entered by the suite's current slixmpp (its xep_0045).

``await enter(alice, "lobby@conference.localhost", "alice")`` joins, and if that created the
room (status 201) accepts the default configuration (an instant room, XEP-0045 §10.1.2), as
clients that only join do; the room is then open to everyone.
"""

from __future__ import annotations

from slixmpp import JID

from tests.support.clients import Client

TIMEOUT = 10.0


async def enter(client: Client, room: str, nick: str) -> set[int]:
    """Join ``room`` as ``nick``; the status codes of the self-presence."""
    muc = client.plugin["xep_0045"]
    presence, *_ = await muc.join_muc_wait(JID(room), nick, maxstanzas=0, timeout=TIMEOUT)
    codes: set[int] = set(presence["muc"]["status_codes"])
    if 201 in codes:
        form = client.plugin["xep_0004"].make_form(ftype="submit")
        await muc.set_room_config(JID(room), form, timeout=TIMEOUT)
    return codes
