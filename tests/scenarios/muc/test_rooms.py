"""XEP-0045 §6, §10: creating, configuring, discovering and destroying rooms; persistence."""

from __future__ import annotations

import asyncio
import contextlib
import io
from pathlib import Path

from tests.scenarios.muc.helpers import (
    DATA,
    MUC,
    OWNER,
    SERVICE,
    USER,
    admin_iq,
    client,
    clients,
    close,
    configure,
    create,
    disco_info_iq,
    disco_items_iq,
    entered,
    error_condition,
    frm,
    gone,
    groupchat,
    iq_error,
    item,
    join,
    join_error,
    room_jid,
    say,
    send_join,
    statuses,
    sub,
)
from xmpp_server.cli import main as cli_main

ROOMINFO = MUC + "#roominfo"


def _form_values(query) -> dict[str, list[str]]:
    x = query.find(f"{{{DATA}}}x")
    return {f.get("var"): [v.text or "" for v in f.findall(f"{{{DATA}}}value")]
            for f in x.findall(f"{{{DATA}}}field")}


async def test_reserved_room_is_locked_until_configured(server):
    alice, bob = await clients(server, "alice", "bob")
    room = room_jid("plans")
    pres = await join(alice, room, "Alice")
    assert {"110", "201"} <= statuses(pres)  # §10.1.1: a new room
    assert item(pres)["affiliation"] == "owner" and item(pres)["role"] == "moderator"
    # §10.1.3: nobody else enters before it is configured
    assert await join_error(bob, room, "Bob") == "item-not-found"
    # §10.2: the owner gets the form with the current values, and submits
    iq = alice.make_iq_get(ito=room)
    sub(iq.xml, f"{{{OWNER}}}query")
    form = _form_values((await alice.query(iq)).xml.find(f"{{{OWNER}}}query"))
    assert form["FORM_TYPE"] == [MUC + "#roomconfig"]
    assert form["muc#roomconfig_persistentroom"] == ["0"]
    assert form["muc#roomconfig_whois"] == ["moderators"]
    assert form["muc#maxhistoryfetch"] == ["20"]
    await configure(alice, room, roomname="Plans", roomdesc="What next",
                    membersonly="0", moderatedroom="0", publicroom="1")
    await entered(bob, room, "Bob")


async def test_lock_lapses_like_prosodys(servers):
    """A creator that only joins (go-sendxmpp, bots) can talk at once; the others get in
    once ``muc.lock_timeout`` has passed without a configuration (Prosody's behaviour)."""
    server = await servers.start(muc={"lock_timeout": 1})
    alice, bob = await clients(server, "alice", "bob")
    room = room_jid("adhoc")
    pres = await join(alice, room, "Alice")
    assert "201" in statuses(pres)
    say(alice, room, "anyone here?")
    await groupchat(alice, "anyone here?")  # the owner speaks in her locked room
    assert await join_error(bob, room, "Bob") == "item-not-found"
    await asyncio.sleep(1.1)
    await entered(bob, room, "Bob")
    say(bob, room, "now I am")
    await groupchat(alice, "now I am")
    listed = (await disco_items_iq(bob, SERVICE)).xml
    assert room in [i.get("jid") for i in listed.iter(
        "{http://jabber.org/protocol/disco#items}item")]
    # a late configuration is an ordinary change now: announced (§10.2.1), room unchanged
    await configure(alice, room, roomname="Ad hoc")
    notice = await bob.next("stanza", lambda m: "104" in statuses(m))
    assert str(notice["from"]) == room


async def test_new_rooms_unlocked_when_configured_so(servers):
    """``muc.lock_new_rooms = false``: every new room is an instant room (still status 201)."""
    server = await servers.start(muc={"lock_new_rooms": False})
    alice, bob = await clients(server, "alice", "bob")
    room = room_jid("open-door")
    pres = await join(alice, room, "Alice")
    assert {"110", "201"} <= statuses(pres)
    assert item(pres)["affiliation"] == "owner"
    await entered(bob, room, "Bob")
    say(bob, room, "hello")
    await groupchat(alice, "hello")
    # a client that accepts the default configuration anyway (Converse.js does) changes nothing
    await configure(alice, room)
    await bob.nothing("stanza", lambda m: "104" in statuses(m))


async def test_configuration_errors(server):
    alice, bob = await clients(server, "alice", "bob")
    room = await create(alice, "lounge", "Alice")
    await entered(bob, room, "Bob")
    assert await iq_error(configure(bob, room, roomname="mine")) == "forbidden"
    assert await iq_error(configure(alice, room, maxusers="many")) == "not-acceptable"
    assert await iq_error(configure(alice, room, whois="everybody")) == "not-acceptable"
    assert await iq_error(configure(alice, room, persistentroom="maybe")) == "not-acceptable"
    assert await iq_error(configure(alice, room, passwordprotectedroom="1")) \
        == "not-acceptable"  # no password given
    iq = bob.make_iq_get(ito=room)
    sub(iq.xml, f"{{{OWNER}}}query")
    assert await iq_error(bob.query(iq)) == "forbidden"


async def test_cancelled_creation_destroys_the_room(server):
    alice = await client(server, "alice")
    room = room_jid("oops")
    await join(alice, room, "Alice")
    iq = alice.make_iq_set(ito=room)
    sub(sub(iq.xml, f"{{{OWNER}}}query"), f"{{{DATA}}}x", type="cancel")
    await alice.query(iq)
    await alice.next("presence", gone(f"{room}/Alice"))
    assert await iq_error(disco_info_iq(alice, room)) == "item-not-found"


async def test_instant_room_of_the_old_protocol(server):
    """§7.2.2 note: presence without <x/> makes an instant (unlocked) room."""
    alice, bob = await clients(server, "alice", "bob")
    room = room_jid("old")
    send_join(alice, room, "Alice", muc=False)
    pres = await alice.next("presence", lambda p: "110" in statuses(p))
    assert "201" in statuses(pres)
    await entered(bob, room, "Bob")


async def test_temporary_room_vanishes_when_empty(server):
    alice = await client(server, "alice")
    room = await create(alice, "brief", "Alice")
    alice.send_presence(pto=f"{room}/Alice", ptype="unavailable")
    await alice.next("presence", gone(f"{room}/Alice"))
    assert await iq_error(disco_info_iq(alice, room)) == "item-not-found"
    say(alice, room, "anyone?")
    err = await alice.next("stanza", lambda m: m["type"] == "error")
    assert error_condition(err) == "item-not-found"


async def test_destroy_with_alternate_venue(server):
    alice, bob = await clients(server, "alice", "bob")
    room = await create(alice, "old-place", "Alice", persistentroom="1")
    await entered(bob, room, "Bob")
    iq = alice.make_iq_set(ito=room)
    destroy = sub(sub(iq.xml, f"{{{OWNER}}}query"), f"{{{OWNER}}}destroy",
                  jid=room_jid("new-place"))
    sub(destroy, f"{{{OWNER}}}reason", "We moved")
    await alice.query(iq)
    for c in (alice, bob):
        pres = await c.next("presence", gone(f"{room}/{'Alice' if c is alice else 'Bob'}"))
        x = pres.xml.find(f"{{{USER}}}x")
        venue = x.find(f"{{{USER}}}destroy")
        assert venue.get("jid") == room_jid("new-place")
        assert venue.findtext(f"{{{USER}}}reason") == "We moved"
    assert await iq_error(disco_info_iq(bob, room)) == "item-not-found"
    assert await server.host.storage.rooms.get(room) is None


async def test_discovery(server):
    alice, bob = await clients(server, "alice", "bob")
    # the server lists its MUC service (disco-items/host)
    items = (await disco_items_iq(bob, "localhost")).xml
    assert SERVICE in [i.get("jid") for i in items.iter(
        "{http://jabber.org/protocol/disco#items}item")]
    info = (await disco_info_iq(bob, SERVICE)).xml
    identity = info.find(".//{http://jabber.org/protocol/disco#info}identity")
    assert (identity.get("category"), identity.get("type")) == ("conference", "text")
    public = await create(alice, "open", "Alice", roomname="Open House", persistentroom="1")
    await create(alice, "hidden", "Alice", publicroom="0")
    await join(alice, room_jid("locked"), "Alice")  # not configured: not listed
    listed = (await disco_items_iq(bob, SERVICE)).xml
    rooms = {i.get("jid"): i.get("name") for i in listed.iter(
        "{http://jabber.org/protocol/disco#items}item")}
    assert rooms == {public: "Open House"}  # §6.3: public rooms only
    # §6.4: a room's features and its muc#roominfo form
    await configure(alice, public, roomdesc="All welcome", membersonly="0")
    info = (await disco_info_iq(bob, public)).xml
    features = {f.get("var") for f in info.iter(
        "{http://jabber.org/protocol/disco#info}feature")}
    assert {MUC, "muc_public", "muc_persistent", "muc_open", "muc_unmoderated",
            "muc_unsecured", "muc_semianonymous", "urn:xmpp:mam:2",
            "urn:xmpp:occupant-id:0", "urn:xmpp:sid:0",
            "http://jabber.org/protocol/muc#self-ping-optimization"} <= features
    form = _form_values(info.find("{http://jabber.org/protocol/disco#info}query"))
    assert form["FORM_TYPE"] == [ROOMINFO]
    assert form["muc#roominfo_description"] == ["All welcome"]
    assert form["muc#roominfo_occupants"] == ["1"]
    identity = info.find(".//{http://jabber.org/protocol/disco#info}identity")
    assert identity.get("name") == "Open House"
    assert await iq_error(disco_info_iq(bob, room_jid("nowhere"))) == "item-not-found"


async def test_unique_room_name(server):
    alice = await client(server, "alice")
    iq = alice.make_iq_get(ito=SERVICE)
    sub(iq.xml, f"{{{MUC}#unique}}unique")
    name = (await alice.query(iq)).xml.findtext(f"{{{MUC}#unique}}unique")
    assert name and len(name) >= 8
    pres = await join(alice, room_jid(name), "Alice")
    assert "201" in statuses(pres)


async def test_bad_room_and_service_addresses(server):
    alice = await client(server, "alice")
    # a room name that is no JID localpart
    alice.send_raw(f"<presence to='bad room@{SERVICE}/Alice'><x xmlns='{MUC}'/></presence>")
    err = await alice.next("presence", lambda p: p["type"] == "error")
    assert error_condition(err) == "jid-malformed"
    alice.send_message(mto=SERVICE, mbody="hello service", mtype="chat")
    err = await alice.next("stanza", lambda m: m["type"] == "error")
    assert error_condition(err) == "service-unavailable"
    iq = alice.make_iq_get(ito=SERVICE)
    sub(iq.xml, "{jabber:iq:version}query")
    assert await iq_error(alice.query(iq)) == "service-unavailable"


async def test_persistent_room_survives_restart(servers, tmp_path):
    server = await servers.start()
    alice, bob = await clients(server, "alice", "bob")
    room = await create(alice, "team", "Alice", persistentroom="1", roomname="Team",
                        membersonly="1")
    await admin_iq(alice, room, [{"jid": "bob@localhost", "affiliation": "member",
                                  "nick": "Bobby"}])
    alice.send_message(mto=room, msubject="Roadmap", mtype="groupchat")
    say(alice, room, "before the restart")
    await groupchat(alice, "before the restart")
    await close(alice, bob)
    await servers.stop(server)

    server = await servers.start()
    alice, bob = await clients(server, "alice", "bob", create=False)
    carol = await client(server, "carol")
    assert await join_error(carol, room, "Carol") == "registration-required"
    pres = await join(bob, room, "Bobby")
    assert item(pres)["affiliation"] == "member"
    history = await bob.next("stanza", lambda m: m["type"] == "groupchat")
    assert history.xml.findtext("{jabber:client}body") == "before the restart"
    subject = await bob.next("stanza", lambda m: m.xml.find(
        "{jabber:client}subject") is not None)
    assert subject.xml.findtext("{jabber:client}subject") == "Roadmap"
    pres = await join(alice, room, "Alice")
    assert item(pres)["affiliation"] == "owner"
    await bob.next("presence", frm(f"{room}/Alice"))
    # and it is listed, by the command line too
    code = await asyncio.to_thread(_room_list, server, tmp_path)
    assert code[0] == 0 and room in code[1] and "owners=alice@localhost" in code[1]


def _room_list(server, tmp_path: Path) -> tuple[int, str]:
    """``xmppd room list`` on the server's database, from another thread (its own loop)."""
    conf = tmp_path / "xmppd.toml"
    conf.write_text(f'[server]\ndomain = "localhost"\ndata_dir = "{tmp_path / "cli"}"\n'
                    f'[storage]\nurl = "{server.config.storage.url}"\n')
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli_main(["room", "list", "-c", str(conf)])
    return code, out.getvalue()
