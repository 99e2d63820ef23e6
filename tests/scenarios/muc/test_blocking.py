"""XEP-0191 in rooms: a room writes to its occupants' sessions past the router, and still
drops what comes from an occupant (or a room) the recipient blocks (§5.3)."""

from __future__ import annotations

from typing import Any

from tests.scenarios.muc.helpers import clients, create, entered, groupchat, say
from tests.support.clients import Client


async def bodies_until(c: Client, text: str) -> list[str]:
    """The bodies of the messages that arrive up to and including ``text``, in order."""
    seen: list[str] = []
    while not seen or seen[-1] != text:
        msg: Any = await c.next("stanza", lambda m: m["type"] == "groupchat")
        seen.append(msg["body"])
    return seen


async def test_blocked_occupant_and_room(server):
    alice, bob, carol = await clients(server, "alice", "bob", "carol")
    for c in (alice, bob, carol):
        c.register_plugin("xep_0191")
    room = await create(alice, "blockroom", "alice")
    await entered(bob, room, "bob")
    await entered(carol, room, "carol")

    # Carol blocks Bob's occupant JID: his messages stop reaching her, Alice's still do.
    await carol.plugin["xep_0191"].block(f"{room}/bob")
    say(bob, room, "one")
    await groupchat(alice, "one")
    say(alice, room, "two")
    assert await bodies_until(carol, "two") == ["two"]

    # Blocking the room itself silences all of it; unblocking brings it back.
    await alice.plugin["xep_0191"].block(room)
    say(carol, room, "three")
    await groupchat(bob, "three")
    await alice.plugin["xep_0191"].unblock(room)
    await carol.plugin["xep_0191"].unblock(f"{room}/bob")
    say(bob, room, "four")
    assert await bodies_until(alice, "four") == ["two", "four"]  # "three" never came
    assert await bodies_until(carol, "four") == ["three", "four"]
