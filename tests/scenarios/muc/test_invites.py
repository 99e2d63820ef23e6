"""XEP-0045 §7.8 mediated invitations and declines; XEP-0249 direct invitations."""

from __future__ import annotations

from typing import Any

from tests.scenarios.muc.helpers import (
    DELAY,
    USER,
    admin_iq,
    admin_list,
    client,
    clients,
    configure,
    create,
    entered,
    iq_error,
    join_error,
    message_error,
    sub,
)

CONFERENCE = "jabber:x:conference"


def invite(c: Any, room: str, to: str, reason: str | None = None) -> None:
    msg = c.make_message(mto=room)
    x = sub(msg.xml, f"{{{USER}}}x")
    inv = sub(x, f"{{{USER}}}invite", to=to)
    if reason:
        sub(inv, f"{{{USER}}}reason", reason)
    msg.send()


def invitation_to(room: str):
    return lambda m: str(m["from"]) == room and m.xml.find(
        f"{{{USER}}}x/{{{USER}}}invite") is not None


async def test_owner_invites_to_members_only_room(server):
    alice, bob = await clients(server, "alice", "bob", send_presence=True)
    room = await create(alice, "club", "Alice", membersonly="1", roomname="The Club")
    invite(alice, room, "bob@localhost", "join us")
    msg = await bob.next("stanza", invitation_to(room))
    inv = msg.xml.find(f"{{{USER}}}x/{{{USER}}}invite")
    assert inv.get("from") == "alice@localhost"
    assert inv.findtext(f"{{{USER}}}reason") == "join us"
    assert "The Club" in msg.xml.findtext("{jabber:client}body")  # offline storage keeps it
    # §7.8.2: the invitee became a member and may enter
    assert "bob@localhost" in [i["jid"] for i in await admin_list(
        alice, room, affiliation="member")]
    await entered(bob, room, "Bob")


async def test_who_may_invite_to_members_only_room(server):
    alice, bob, carol = await clients(server, "alice", "bob", "carol", send_presence=True)
    room = await create(alice, "club", "Alice", membersonly="1")
    await admin_iq(alice, room, [{"jid": "bob@localhost", "affiliation": "member"}])
    await entered(bob, room, "Bob")
    invite(bob, room, "carol@localhost")
    assert await message_error(bob) == "forbidden"  # members may not, by default
    assert await join_error(carol, room, "Carol") == "registration-required"
    await configure(alice, room, allowinvites="1")
    invite(bob, room, "carol@localhost")
    await carol.next("stanza", invitation_to(room))
    await entered(carol, room, "Carol")
    # an outsider (not in the room, no affiliation) invites nobody
    dave = await client(server, "dave")
    invite(dave, room, "erin@localhost")
    assert await message_error(dave) == "not-acceptable"


async def test_offline_invitee_gets_the_invitation_at_login(server):
    alice = await client(server, "alice", send_presence=True)
    await server.host.accounts.create("dave", "secret")
    room = await create(alice, "club", "Alice", membersonly="1", passwordprotectedroom="1",
                        roomsecret="pw")
    invite(alice, room, "dave@localhost", "see you there")
    await alice.nothing("stanza", lambda m: m["type"] == "error", wait=0.3)
    dave = await client(server, "dave", create=False)
    dave.send_presence()
    msg = await dave.next("stanza", invitation_to(room))
    assert msg.xml.find(f"{{{DELAY}}}delay") is not None  # from offline storage
    assert msg.xml.findtext(f"{{{USER}}}x/{{{USER}}}password") == "pw"
    await entered(dave, room, "Dave", password="pw")


async def test_decline_reaches_the_inviter(server):
    alice, bob = await clients(server, "alice", "bob", send_presence=True)
    room = await create(alice, "lounge", "Alice")
    invite(alice, room, "bob@localhost")
    await bob.next("stanza", invitation_to(room))
    msg = bob.make_message(mto=room)
    decline = sub(sub(msg.xml, f"{{{USER}}}x"), f"{{{USER}}}decline", to="alice@localhost")
    sub(decline, f"{{{USER}}}reason", "busy")
    msg.send()
    got = await alice.next("stanza", lambda m: m.xml.find(
        f"{{{USER}}}x/{{{USER}}}decline") is not None)
    assert str(got["from"]) == room
    el = got.xml.find(f"{{{USER}}}x/{{{USER}}}decline")
    assert el.get("from") == "bob@localhost"
    assert el.findtext(f"{{{USER}}}reason") == "busy"
    # a decline to someone unrelated is not relayed
    carol = await client(server, "carol", send_presence=True)
    msg = bob.make_message(mto=room)
    sub(sub(msg.xml, f"{{{USER}}}x"), f"{{{USER}}}decline", to="carol@localhost")
    msg.send()
    await carol.nothing("stanza", wait=0.3)


async def test_direct_invitation_passes_through_and_is_stored(server):
    alice = await client(server, "alice", send_presence=True)
    await server.host.accounts.create("bob", "secret")
    room = await create(alice, "lounge", "Alice")
    msg = alice.make_message(mto="bob@localhost")
    sub(msg.xml, f"{{{CONFERENCE}}}x", jid=room, reason="come over")
    msg.send()
    await alice.nothing("stanza", lambda m: m["type"] == "error", wait=0.3)
    bob = await client(server, "bob", create=False)
    bob.send_presence()
    got = await bob.next("stanza", lambda m: m.xml.find(f"{{{CONFERENCE}}}x")
                         is not None)
    x = got.xml.find(f"{{{CONFERENCE}}}x")
    assert x.get("jid") == room and x.get("reason") == "come over"
    assert str(got["from"]).startswith("alice@localhost")


async def test_invite_errors(server):
    alice = await client(server, "alice", send_presence=True)
    room = await create(alice, "lounge", "Alice")
    await admin_iq(alice, room, [{"jid": "eve@localhost", "affiliation": "outcast"}])
    invite(alice, room, "eve@localhost")
    assert await message_error(alice) == "not-allowed"
    msg = alice.make_message(mto=room, mbody="not groupchat")
    msg.send()
    assert await message_error(alice) == "bad-request"
    assert await iq_error(admin_list(alice, room, affiliation="nobody")) == "bad-request"
