"""Group chat rooms in a cluster: one node holds each room, occupants join through any node."""

from __future__ import annotations

from typing import Any

from tests.cluster.conftest import Cluster, login, settled
from tests.scenarios.muc.helpers import configure, gone, is_self, send_join
from tests.support.clients import Client


def _said(text: str) -> Any:
    return lambda m: m["type"] == "groupchat" and m["body"] == text


async def _enter(client: Client, room: str, nick: str) -> None:
    send_join(client, room, nick)
    pres = await client.next("presence", is_self(f"{room}/{nick}"))
    assert pres["type"] != "error", pres


async def test_a_room_with_occupants_on_three_nodes(cluster: Cluster) -> None:
    a, b, c = await cluster.start(), await cluster.start(), await cluster.start()
    room = f"lobby@conference.{cluster.domain}"
    alice, bob, carol = await login(a, "alice"), await login(b, "bob"), await login(c, "carol")
    try:
        await _enter(alice, room, "Alice")  # a holds the room: the first stanza came there
        await configure(alice, room, persistentroom="1")  # unlocked, kept in PostgreSQL
        await settled(a, b, c)
        await _enter(bob, room, "Bob")  # through b, forwarded to a
        await _enter(carol, room, "Carol")
        alice.send_message(mto=room, mbody="hello all", mtype="groupchat")
        for client in (bob, carol):
            await client.next("message", _said("hello all"))
        bob.send_message(mto=room, mbody="hi from b", mtype="groupchat")
        for client in (alice, carol):
            await client.next("message", _said("hi from b"))
        assert a.cluster is not None and room in a.cluster.rooms.held
        # bob's session ends on b: the room on a sees him leave (no ghost occupant)
        await bob.close()
        await carol.next("presence", gone(f"{room}/Bob"))
        # The holder dies: the next stanza for the room makes a survivor take it over,
        # from PostgreSQL.
        await alice.close()
        await cluster.kill(a)
        await carol.close()
        carol = await login(c, "carol", "again")
        await _enter(carol, room, "Carol")  # waits in a's inbox until a survivor takes over
        holders = [n for n in (b, c) if n.cluster is not None and room in n.cluster.rooms.held]
        assert len(holders) == 1
        carol.send_message(mto=room, mbody="still here", mtype="groupchat")
        await carol.next("message", _said("still here"))
    finally:
        for client in (alice, bob, carol):
            await client.close()
