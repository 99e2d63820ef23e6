"""XEP-0045 §7: entering, presence, nick changes, private messages, subject, history, leaving."""

from __future__ import annotations

from tests.scenarios.muc.helpers import (
    DELAY,
    OCCUPANT_ID,
    SID,
    body,
    client,
    clients,
    configure,
    create,
    entered,
    error_condition,
    frm,
    gone,
    groupchat,
    iq_error,
    item,
    join,
    join_error,
    leave,
    message_error,
    round_trip,
    say,
    send_join,
    statuses,
)


async def test_enter_speak_and_leave(server):
    alice, bob = await clients(server, "alice", "bob")
    room = await create(alice, "lounge", "Alice")
    pres = await entered(bob, room, "Bob")
    # §7.2.3: self-presence with 110 (and 170: the room archives), no 201 for Bob
    assert statuses(pres) == {"110", "170"}
    assert item(pres) == {"affiliation": "none", "role": "participant",
                          "jid": "bob@localhost/test"}
    # Alice, a moderator, sees Bob's real JID (§7.2.4, semi-anonymous room)
    seen = await alice.next("presence", frm(f"{room}/Bob"))
    assert item(seen)["jid"] == "bob@localhost/test"
    assert seen.xml.find(f"{{{OCCUPANT_ID}}}occupant-id") is not None

    say(bob, room, "hello")
    for c in (alice, bob):  # §7.4: reflected to the sender too
        msg = await groupchat(c, "hello")
        assert str(msg["from"]) == f"{room}/Bob"
        sid = msg.xml.find(f"{{{SID}}}stanza-id")
        assert sid is not None and sid.get("by") == room  # XEP-0359, stamped by the room
        occupant = msg.xml.find(f"{{{OCCUPANT_ID}}}occupant-id")
        assert occupant is not None and occupant.get("id") == seen.xml.find(
            f"{{{OCCUPANT_ID}}}occupant-id").get("id")  # XEP-0421

    leave(bob, room, "Bob")
    left = await alice.next("presence", gone(f"{room}/Bob"))
    assert item(left)["role"] == "none"
    own = await bob.next("presence", gone(f"{room}/Bob"))
    assert "110" in statuses(own)
    say(bob, room, "still here?")
    assert await message_error(bob) == "not-acceptable"  # not an occupant any more


async def test_occupants_do_not_see_real_jids_in_semi_anonymous_room(server):
    alice, bob, carol = await clients(server, "alice", "bob", "carol")
    room = await create(alice, "lounge", "Alice")
    await entered(bob, room, "Bob")
    await entered(carol, room, "Carol")
    seen = await bob.next("presence", frm(f"{room}/Carol"))
    assert "jid" not in item(seen)
    # whois=anyone: everyone sees real JIDs, and newcomers get 100 (§7.2.4)
    await configure(alice, room, whois="anyone")
    change = await bob.next("stanza", lambda m: "172" in statuses(m))
    assert "104" in statuses(change)
    leave(carol, room, "Carol")
    pres = await entered(carol, room, "Carol")
    assert "100" in statuses(pres)
    seen = await bob.next("presence", lambda p: str(p["from"]) == f"{room}/Carol"
                          and p["type"] != "unavailable")
    assert item(seen)["jid"] == "carol@localhost/test"


async def test_nick_conflict_and_change(server):
    alice, bob = await clients(server, "alice", "bob")
    room = await create(alice, "lounge", "Alice")
    # §7.2.9: taken by another user, whatever its case (RFC 8266 comparison)
    assert await join_error(bob, room, "alice") == "conflict"
    await entered(bob, room, "Bob")
    # §7.6: a nick change to a taken nick is refused; to a free one, 303 then the new one
    bob.send_presence(pto=f"{room}/ALICE")
    err = await bob.next("presence", lambda p: p["type"] == "error")
    assert error_condition(err) == "conflict"
    bob.send_presence(pto=f"{room}/Robert")
    old = await alice.next("presence", gone(f"{room}/Bob"))
    assert old["type"] == "unavailable" and "303" in statuses(old)
    assert item(old)["nick"] == "Robert"
    new = await alice.next("presence", frm(f"{room}/Robert"))
    assert new["type"] != "unavailable"
    own = await bob.next("presence", lambda p: str(p["from"]) == f"{room}/Robert")
    assert "110" in statuses(own)
    say(bob, room, "renamed")
    msg = await groupchat(alice, "renamed")
    assert str(msg["from"]) == f"{room}/Robert"


async def test_nick_validation_and_normalisation(server):
    alice, bob = await clients(server, "alice", "bob")
    room = await create(alice, "lounge", "Alice")
    # §7.2.1: no nick at all
    bob.send_presence(pto=room)
    err = await bob.next("presence", lambda p: p["type"] == "error")
    assert error_condition(err) == "jid-malformed"
    # RFC 8266: the room trims and collapses spaces, and says so with 210
    send_join(bob, room, "  Bob   the  Builder ")
    pres = await bob.next("presence", lambda p: "110" in statuses(p))
    assert str(pres["from"]) == f"{room}/Bob the Builder"
    assert "210" in statuses(pres)
    # a nick made only of spaces is no nick
    carol = await client(server, "carol")
    send_join(carol, room, "   ")
    err = await carol.next("presence", lambda p: p["type"] == "error")
    assert error_condition(err) == "jid-malformed"


async def test_several_clients_of_one_user_share_a_nick(server):
    alice = await client(server, "alice")
    bob1 = await client(server, "bob", "phone")
    bob2 = await client(server, "bob", "laptop")
    room = await create(alice, "lounge", "Alice")
    await entered(bob1, room, "Bob")
    await alice.next("presence", frm(f"{room}/Bob"))
    await entered(bob2, room, "Bob")  # same user, same nick: no conflict
    update = await alice.next("presence", frm(f"{room}/Bob"))
    assert update["type"] != "unavailable"
    say(alice, room, "to both")
    await groupchat(bob1, "to both")
    await groupchat(bob2, "to both")
    alice.send_message(mto=f"{room}/Bob", mbody="psst", mtype="chat")
    for c in (bob1, bob2):  # §7.5: a private message reaches every session of the nick
        pm = await c.next("stanza", body("psst"))
        assert str(pm["from"]) == f"{room}/Alice"
    # one session leaves: the occupant stays
    leave(bob1, room, "Bob")
    own = await bob1.next("presence", gone(f"{room}/Bob"))
    assert "110" in statuses(own)
    update = await alice.next("presence", frm(f"{room}/Bob"))
    assert update["type"] != "unavailable"
    await bob2.close()  # the last one goes: now Bob has left
    left = await alice.next("presence", gone(f"{room}/Bob"))
    assert item(left)["role"] == "none"


async def test_disconnect_leaves_the_room(server):
    alice, bob = await clients(server, "alice", "bob")
    room = await create(alice, "lounge", "Alice")
    await entered(bob, room, "Bob")
    await alice.next("presence", frm(f"{room}/Bob"))
    bob.abort()  # the connection drops: session-ended
    await alice.next("presence", gone(f"{room}/Bob"))
    say(alice, room, "alone")
    await groupchat(alice, "alone")


async def test_private_messages(server):
    alice, bob, eve = await clients(server, "alice", "bob", "eve")
    room = await create(alice, "lounge", "Alice")
    await entered(bob, room, "Bob")
    bob.send_message(mto=f"{room}/Alice", mbody="just you", mtype="chat")
    pm = await alice.next("stanza", body("just you"))
    assert str(pm["from"]) == f"{room}/Bob" and pm["type"] == "chat"
    assert pm.xml.find("{http://jabber.org/protocol/muc#user}x") is not None
    bob.send_message(mto=f"{room}/Nobody", mbody="?", mtype="chat")
    assert await message_error(bob) == "item-not-found"
    eve.send_message(mto=f"{room}/Alice", mbody="outsider", mtype="chat")
    assert await message_error(eve) == "not-acceptable"
    bob.send_message(mto=f"{room}/Alice", mbody="wrong type", mtype="groupchat")
    assert await message_error(bob) == "bad-request"
    await configure(alice, room, allowpm="moderators")
    bob.send_message(mto=f"{room}/Alice", mbody="not now", mtype="chat")
    assert await message_error(bob) == "forbidden"


async def test_subject(server):
    alice, bob = await clients(server, "alice", "bob")
    room = await create(alice, "lounge", "Alice")
    await entered(bob, room, "Bob")
    alice.send_message(mto=room, msubject="Weekly sync", mtype="groupchat")
    msg = await bob.next("stanza", lambda m: m.xml.findtext("{jabber:client}subject")
                         == "Weekly sync")
    assert str(msg["from"]) == f"{room}/Alice"
    # §8.1: only moderators, unless the room lets participants
    bob.send_message(mto=room, msubject="Mine", mtype="groupchat")
    assert await message_error(bob) == "forbidden"
    # §7.2.15: the subject comes last on entering
    carol = await client(server, "carol")
    await join(carol, room, "Carol")
    subject = await carol.next("stanza")  # the first message after self-presence
    assert subject.xml.findtext("{jabber:client}subject") == "Weekly sync"
    assert str(subject["from"]) == f"{room}/Alice"
    assert subject.xml.find("{jabber:client}body") is None


async def test_history_on_entering(server):
    alice, bob = await clients(server, "alice", "bob")
    room = await create(alice, "lounge", "Alice")
    for i in range(5):
        say(alice, room, f"line {i}")
    await groupchat(alice, "line 4")

    async def history(c, **limits):
        send_join(c, room, "Bob", history=limits or None)
        await c.next("presence", lambda p: "110" in statuses(p))
        got = []
        while True:
            m = await c.next("stanza")
            if m.xml.find("{jabber:client}subject") is not None:
                break
            delay = m.xml.find(f"{{{DELAY}}}delay")
            assert delay is not None and delay.get("from") == room  # XEP-0203
            got.append(m.xml.findtext("{jabber:client}body"))
        leave(c, room, "Bob")
        await c.next("presence", lambda p: p["type"] == "unavailable")
        return got

    assert await history(bob) == [f"line {i}" for i in range(5)]
    assert await history(bob, maxstanzas="2") == ["line 3", "line 4"]
    assert await history(bob, maxchars="0") == []
    assert await history(bob, seconds="3600") == [f"line {i}" for i in range(5)]
    assert await history(bob, since="2999-01-01T00:00:00Z") == []
    # maxchars counts whole stanzas (some 400 characters each here): room for one
    assert await history(bob, maxchars="700") == ["line 4"]


async def test_password_protected_room(server):
    alice, bob = await clients(server, "alice", "bob")
    room = await create(alice, "secret", "Alice", passwordprotectedroom="1",
                        roomsecret="s3cret")
    assert await join_error(bob, room, "Bob") == "not-authorized"  # §7.2.5
    assert await join_error(bob, room, "Bob", password="wrong") == "not-authorized"
    await entered(bob, room, "Bob", password="s3cret")


async def test_room_full(server):
    alice, bob, carol = await clients(server, "alice", "bob", "carol")
    room = await create(alice, "small", "Alice", maxusers="2")
    await entered(bob, room, "Bob")
    assert await join_error(carol, room, "Carol") == "service-unavailable"  # §7.2.10


async def test_malformed_numbers_are_refused(server):
    """History limits and room settings are ASCII digits: '²' (a digit to str.isdigit, not
    to int()) and ARABIC-INDIC DIGIT ONE (1 to int()) are refused, and the join never happens."""
    alice, bob = await clients(server, "alice", "bob")
    room = await create(alice, "lounge", "Alice")
    for limits in ({"maxstanzas": "\u00b2"}, {"maxchars": "1_0"}, {"seconds": "\u0661"},
                   {"maxstanzas": "-1"}):
        assert await join_error(bob, room, "Bob", history=limits) == "bad-request", limits
    assert await join_error(bob, "new@conference.localhost", "Bob",
                            history={"maxchars": "\u00b2"}) == "bad-request"
    assert await iq_error(configure(alice, room, maxusers="\u0661")) == "not-acceptable"
    assert await iq_error(configure(alice, room, maxusers="\u00b2")) == "not-acceptable"
    await entered(bob, room, "Bob", history={"maxstanzas": " 2 "})  # XML whitespace is fine
    assert await iq_error(configure(alice, "new@conference.localhost")) == "item-not-found"


async def test_presence_update_is_broadcast(server):
    alice, bob = await clients(server, "alice", "bob")
    room = await create(alice, "lounge", "Alice")
    await entered(bob, room, "Bob")
    await alice.next("presence", frm(f"{room}/Bob"))
    bob.send_presence(pto=f"{room}/Bob", pshow="away", pstatus="lunch")
    update = await alice.next("presence", frm(f"{room}/Bob"))
    assert update["show"] == "away" and update["status"] == "lunch"
    assert item(update)["role"] == "participant"
    await round_trip(bob)


async def test_flood_is_held_back(servers):
    server = await servers.start(muc={"rate": 1, "burst": 3})
    alice = await client(server, "alice")
    room = await create(alice, "lounge", "Alice")
    for i in range(6):
        say(alice, room, f"flood {i}")
    errors = 0
    delivered = 0
    for _ in range(6):
        m = await alice.next("stanza", lambda m: m["type"] in ("groupchat", "error"))
        if m["type"] == "error":
            assert error_condition(m) == "policy-violation"
            assert m["error"]["type"] == "wait"
            errors += 1
        else:
            delivered += 1
    assert delivered == 3 and errors == 3


async def test_join_messages_in_order(server):
    """§7.2.3: occupants' presence, then self-presence, then history, then subject."""
    alice, bob = await clients(server, "alice", "bob")
    room = await create(alice, "lounge", "Alice")
    say(alice, room, "earlier")
    await groupchat(alice, "earlier")
    order: list[str] = []
    bob.add_event_handler("presence", lambda p: order.append(
        "self" if "110" in statuses(p) else "occupant"))
    send_join(bob, room, "Bob")
    await bob.next("presence", lambda p: "110" in statuses(p))
    msg = await bob.next("stanza")
    assert msg.xml.findtext("{jabber:client}body") == "earlier"
    subject = await bob.next("stanza")
    assert subject.xml.find("{jabber:client}subject") is not None
    assert order[:2] == ["occupant", "self"]
    await join(bob, room, "Bob")  # again: a presence update, answered with self-presence
