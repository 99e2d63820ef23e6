"""XEP-0045 §8-§10: roles and affiliations — lists, kick, ban, voice, members-only rooms."""

from __future__ import annotations

from tests.scenarios.muc.helpers import (
    admin_iq,
    admin_list,
    client,
    clients,
    configure,
    create,
    entered,
    frm,
    gone,
    groupchat,
    iq_error,
    item,
    join_error,
    message_error,
    say,
    statuses,
    sub,
)


async def test_lists_with_several_items_in_one_iq(server):
    alice = await client(server, "alice")
    room = await create(alice, "club", "Alice", membersonly="1")
    await admin_iq(alice, room, [
        {"jid": "bob@localhost", "affiliation": "member"},
        {"jid": "carol@localhost", "affiliation": "member", "nick": "Caz"},
        {"jid": "dave@localhost", "affiliation": "admin"},
        {"jid": "eve@localhost", "affiliation": "outcast", "reason": "spam"},
    ])
    members = await admin_list(alice, room, affiliation="member")
    assert members == [{"affiliation": "member", "jid": "bob@localhost"},
                       {"affiliation": "member", "jid": "carol@localhost", "nick": "Caz"}]
    assert [i["jid"] for i in await admin_list(alice, room, affiliation="admin")] \
        == ["dave@localhost"]
    assert [i["jid"] for i in await admin_list(alice, room, affiliation="outcast")] \
        == ["eve@localhost"]
    assert [i["jid"] for i in await admin_list(alice, room, affiliation="owner")] \
        == ["alice@localhost"]
    # revoke one, grant another, in one IQ
    await admin_iq(alice, room, [{"jid": "bob@localhost", "affiliation": "none"},
                                 {"jid": "frank@localhost", "affiliation": "member"}])
    assert [i["jid"] for i in await admin_list(alice, room, affiliation="member")] \
        == ["carol@localhost", "frank@localhost"]
    # one bad item: nothing of the IQ is applied
    assert await iq_error(admin_iq(alice, room, [
        {"jid": "gina@localhost", "affiliation": "member"},
        {"jid": "hank@localhost", "affiliation": "emperor"}])) == "bad-request"
    assert "gina@localhost" not in [i["jid"] for i in await admin_list(
        alice, room, affiliation="member")]


async def test_members_only_room(server):
    alice, bob, carol = await clients(server, "alice", "bob", "carol")
    room = await create(alice, "club", "Alice", membersonly="1")
    assert await join_error(bob, room, "Bob") == "registration-required"  # §7.2.6
    await admin_iq(alice, room, [{"jid": "bob@localhost", "affiliation": "member"}])
    pres = await entered(bob, room, "Bob")
    assert item(pres)["affiliation"] == "member"
    # §9.4: removing a member removes them from the room (321)
    await admin_iq(alice, room, [{"jid": "bob@localhost", "affiliation": "none"}])
    out = await bob.next("presence", gone(f"{room}/Bob"))
    assert {"110", "321"} <= statuses(out)
    seen = await alice.next("presence", gone(f"{room}/Bob"))
    assert "321" in statuses(seen) and item(seen)["affiliation"] == "none"
    # §10.2: a room that becomes members-only removes the non-members (322)
    open_room = await create(alice, "open", "Alice")
    await entered(carol, open_room, "Carol")
    await configure(alice, open_room, membersonly="1")
    out = await carol.next("presence", gone(f"{open_room}/Carol"))
    assert "322" in statuses(out)


async def test_kick(server):
    alice, bob, carol = await clients(server, "alice", "bob", "carol")
    room = await create(alice, "lounge", "Alice")
    await entered(bob, room, "Bob")
    await entered(carol, room, "Carol")
    # a participant may not kick (§8.2)
    assert await iq_error(admin_iq(bob, room, [{"nick": "Carol", "role": "none"}])) \
        == "forbidden"
    await admin_iq(alice, room, [{"nick": "Carol", "role": "none", "reason": "bye"}])
    out = await carol.next("presence", gone(f"{room}/Carol"))
    assert {"110", "307"} <= statuses(out)
    seen = await bob.next("presence", gone(f"{room}/Carol"))
    assert "307" in statuses(seen)
    assert seen.xml.find(".//{http://jabber.org/protocol/muc#user}actor").get(
        "nick") == "Alice"
    assert seen.xml.findtext(".//{http://jabber.org/protocol/muc#user}reason") == "bye"
    assert await iq_error(admin_iq(alice, room, [{"nick": "Nobody", "role": "none"}])) \
        == "item-not-found"
    # an owner is not kicked (§8.2: not-allowed): make Bob a moderator first
    await admin_iq(alice, room, [{"jid": "bob@localhost", "affiliation": "admin"}])
    assert await iq_error(admin_iq(bob, room, [{"nick": "Alice", "role": "none"}])) \
        == "not-allowed"


async def test_ban(server):
    alice, bob, carol = await clients(server, "alice", "bob", "carol")
    room = await create(alice, "lounge", "Alice")
    await entered(bob, room, "Bob")
    await admin_iq(alice, room, [{"jid": "bob@localhost", "affiliation": "outcast",
                                  "reason": "trolling"}])
    out = await bob.next("presence", gone(f"{room}/Bob"))
    assert {"110", "301"} <= statuses(out)
    assert item(out)["affiliation"] == "outcast"
    assert await join_error(bob, room, "Bob") == "forbidden"  # §7.2.7
    # an admin bans a member but not another admin (§9.1)
    await admin_iq(alice, room, [{"jid": "carol@localhost", "affiliation": "admin"},
                                 {"jid": "dave@localhost", "affiliation": "admin"}])
    await entered(carol, room, "Carol")
    assert await iq_error(admin_iq(carol, room, [
        {"jid": "dave@localhost", "affiliation": "outcast"}])) == "not-allowed"
    assert await iq_error(admin_iq(carol, room, [
        {"jid": "erin@localhost", "affiliation": "owner"}])) == "not-allowed"
    await admin_iq(carol, room, [{"jid": "erin@localhost", "affiliation": "outcast"}])
    # a participant changes nothing (§9.1: forbidden)
    frank = await client(server, "frank")
    await entered(frank, room, "Frank")
    assert await iq_error(admin_iq(frank, room, [
        {"jid": "erin@localhost", "affiliation": "none"}])) == "forbidden"
    assert await iq_error(admin_list(frank, room, affiliation="outcast")) == "forbidden"


async def test_the_last_owner_stays(server):
    alice = await client(server, "alice")
    room = await create(alice, "lounge", "Alice")
    assert await iq_error(admin_iq(alice, room, [
        {"jid": "alice@localhost", "affiliation": "admin"}])) == "conflict"  # §10.4
    await admin_iq(alice, room, [{"jid": "bob@localhost", "affiliation": "owner"}])
    await admin_iq(alice, room, [{"jid": "alice@localhost", "affiliation": "admin"}])
    seen = await alice.next("presence", lambda p: str(p["from"]) == f"{room}/Alice"
                            and item(p).get("affiliation") == "admin")
    assert item(seen)["role"] == "moderator"


async def test_voice_in_moderated_room(server):
    alice, bob = await clients(server, "alice", "bob")
    room = await create(alice, "stage", "Alice", moderatedroom="1")
    pres = await entered(bob, room, "Bob")
    assert item(pres)["role"] == "visitor"  # §5.1.3: no voice in a moderated room
    say(bob, room, "may I?")
    assert await message_error(bob) == "forbidden"
    await admin_iq(alice, room, [{"nick": "Bob", "role": "participant"}])  # §8.3
    voiced = await bob.next("presence", lambda p: item(p).get("role") == "participant")
    assert "110" in statuses(voiced)
    say(bob, room, "thank you")
    await groupchat(alice, "thank you")
    # §8.4: and back; a moderator list shows who may moderate (§9.8 / §8.5)
    await admin_iq(alice, room, [{"nick": "Bob", "role": "visitor"}])
    await bob.next("presence", lambda p: item(p).get("role") == "visitor")
    moderators = await admin_list(alice, room, role="moderator")
    assert [(i["nick"], i["jid"]) for i in moderators] == [("Alice", "alice@localhost/test")]
    assert await iq_error(admin_list(bob, room, role="participant")) == "forbidden"
    # granting moderation is for admins and owners (not-allowed for a mere moderator)
    await admin_iq(alice, room, [{"nick": "Bob", "role": "moderator"}])
    await bob.next("presence", lambda p: item(p).get("role") == "moderator")
    carol = await client(server, "carol")
    await entered(carol, room, "Carol")
    assert await iq_error(admin_iq(bob, room, [{"nick": "Carol", "role": "moderator"}])) \
        == "not-allowed"
    await admin_iq(bob, room, [{"nick": "Carol", "role": "participant"}])


async def test_affiliation_change_updates_the_occupant(server):
    alice, bob = await clients(server, "alice", "bob")
    room = await create(alice, "stage", "Alice", moderatedroom="1")
    await entered(bob, room, "Bob")
    await admin_iq(alice, room, [{"jid": "bob@localhost", "affiliation": "member"}])
    pres = await alice.next("presence", lambda p: str(p["from"]) == f"{room}/Bob"
                            and item(p).get("affiliation") == "member")
    assert item(pres)["role"] == "participant"  # members have voice
    await admin_iq(alice, room, [{"jid": "bob@localhost", "affiliation": "admin"}])
    pres = await bob.next("presence", frm(f"{room}/Bob"))
    while item(pres).get("affiliation") != "admin":
        pres = await bob.next("presence", frm(f"{room}/Bob"))
    assert item(pres)["role"] == "moderator" and "110" in statuses(pres)


async def test_register_a_nick(server):
    """§7.10: registering reserves a nick and makes a member."""
    alice, bob, carol = await clients(server, "alice", "bob", "carol")
    room = await create(alice, "lounge", "Alice")

    def register(c, nick: str | None):
        iq = c.make_iq_set(ito=room) if nick is not None else c.make_iq_get(ito=room)
        query = sub(iq.xml, "{jabber:iq:register}query")
        if nick is not None:
            x = sub(query, "{jabber:x:data}x", type="submit")
            ft = sub(x, "{jabber:x:data}field", var="FORM_TYPE")
            sub(ft, "{jabber:x:data}value", "http://jabber.org/protocol/muc#register")
            f = sub(x, "{jabber:x:data}field", var="muc#register_roomnick")
            sub(f, "{jabber:x:data}value", nick)
        return c.query(iq)

    form = (await register(bob, None)).xml
    assert form.find(".//{jabber:x:data}field[@var='muc#register_roomnick']") is not None
    await register(bob, "Bobby")
    got = (await register(bob, None)).xml
    assert got.findtext(".//{jabber:iq:register}username") == "Bobby"
    assert "bob@localhost" in [i["jid"] for i in await admin_list(
        alice, room, affiliation="member")]
    assert await iq_error(register(carol, "bobby")) == "conflict"
    assert await join_error(carol, room, "BOBBY") == "conflict"  # reserved (§7.2.9)
    await entered(bob, room, "Bobby")


async def test_a_removed_account_loses_its_affiliations(server):
    alice, bob = await clients(server, "alice", "bob")
    room = await create(alice, "club", "Alice", membersonly="1", persistentroom="1")
    await admin_iq(alice, room, [{"jid": "bob@localhost", "affiliation": "member"}])
    iq = bob.make_iq_set()
    sub(sub(iq.xml, "{jabber:iq:register}query"), "{jabber:iq:register}remove")
    await bob.query(iq)  # XEP-0077 §3.2: the account is gone
    await bob.disconnected
    # a new account of that name is a stranger to the room
    assert await admin_list(alice, room, affiliation="member") == []
