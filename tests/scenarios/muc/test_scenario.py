"""A group's life: owner, admin, member, outsider and an offline invitee, with a restart.

The WithMe story (create a group, invite friends, see members, chat with history) told with
XEP-0045 rooms, on each storage backend.
"""

from __future__ import annotations

from tests.scenarios.muc.helpers import (
    SERVICE,
    USER,
    admin_iq,
    admin_list,
    client,
    clients,
    close,
    create,
    disco_items_iq,
    entered,
    frm,
    gone,
    groupchat,
    item,
    join,
    join_error,
    say,
    statuses,
    sub,
)
from tests.scenarios.muc.test_archive import bodies, mam


async def test_group_life_across_a_restart(servers):
    server = await servers.start()
    alice = await client(server, "alice", send_presence=True)  # owner
    dave = await client(server, "dave", send_presence=True)  # admin
    bob = await client(server, "bob", send_presence=True)  # member
    eve = await client(server, "eve", send_presence=True)  # outsider
    await server.host.accounts.create("frank", "secret")  # offline invitee
    room = await create(alice, "project", "Alice", persistentroom="1", membersonly="1",
                        roomname="Project X")
    await admin_iq(alice, room, [{"jid": "dave@localhost", "affiliation": "admin"},
                                 {"jid": "bob@localhost", "affiliation": "member",
                                  "nick": "Bob"}])
    pres = await entered(dave, room, "Dave")
    assert item(pres)["role"] == "moderator"
    await entered(bob, room, "Bob")
    assert await join_error(eve, room, "Eve") == "registration-required"
    listed = (await disco_items_iq(eve, SERVICE)).xml
    assert room in [i.get("jid") for i in listed.iter(
        "{http://jabber.org/protocol/disco#items}item")]
    alice.send_message(mto=room, msubject="Launch plan", mtype="groupchat")
    say(bob, room, "hi all")
    say(dave, room, "welcome")
    await groupchat(alice, "welcome")
    # the admin invites Frank, who is offline: he becomes a member, the invitation waits
    msg = dave.make_message(mto=room)
    sub(sub(sub(msg.xml, f"{{{USER}}}x"), f"{{{USER}}}invite", to="frank@localhost"),
        f"{{{USER}}}reason", "we need you")
    msg.send()
    await dave.nothing("stanza", lambda m: m["type"] == "error", wait=0.3)
    await close(alice, dave, bob, eve)
    await servers.stop(server)

    server = await servers.start()
    alice, dave, bob, eve, frank = await clients(server, "alice", "dave", "bob", "eve", "frank",
                                                 create=False, send_presence=True)
    invitation = await frank.next("stanza", lambda m: m.xml.find(
        f"{{{USER}}}x/{{{USER}}}invite") is not None)
    assert invitation.xml.find(f"{{{USER}}}x/{{{USER}}}invite").get(
        "from") == "dave@localhost"
    # the reserved nick is Bob's, even for a member
    assert await join_error(frank, room, "bob") == "conflict"
    pres = await join(frank, room, "Frank")
    assert item(pres)["affiliation"] == "member"
    history = [await frank.next("stanza") for _ in range(3)]
    assert [m.xml.findtext("{jabber:client}body") for m in history[:2]] \
        == ["hi all", "welcome"]
    assert history[2].xml.findtext("{jabber:client}subject") == "Launch plan"
    # the archive survived too, and pages
    results, fin = await mam(frank, room, max_=1)
    assert bodies(results) == ["hi all"] and fin.get("complete") is None
    assert await join_error(eve, room, "Eve") == "registration-required"
    assert [i["jid"] for i in await admin_list(alice, room, affiliation="member")] \
        == ["bob@localhost", "frank@localhost"]
    # the admin's rights survived: Dave moderates, kicks, bans
    await entered(dave, room, "Dave")
    await entered(bob, room, "Bob")
    await admin_iq(dave, room, [{"nick": "Bob", "role": "none", "reason": "noise"}])
    out = await bob.next("presence", gone(f"{room}/Bob"))
    assert "307" in statuses(out)
    await admin_iq(dave, room, [{"jid": "eve@localhost", "affiliation": "outcast"}])
    assert await join_error(eve, room, "Eve") == "forbidden"
    await frank.next("presence", frm(f"{room}/Dave"))
