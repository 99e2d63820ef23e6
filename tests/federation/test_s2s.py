"""RFC 6120 server-to-server streams between two of our servers: a.test and b.test.

Each scenario runs both ways where it makes sense: users of each server talk to the other's.
"""

from __future__ import annotations

from xml.etree import ElementTree as ET

from tests.federation.helpers import body, chat, close, frm, iq, iq_error, user

VCARD = "vcard-temp"
VERSION = "jabber:iq:version"
DISCO_INFO = "http://jabber.org/protocol/disco#info"


async def test_messages_both_ways_over_dialback(federation):
    a, b = await federation.start()
    alice = await user(a, "alice")
    bob = await user(b, "bob")
    chat(alice, "bob@b.test", "hi bob")
    msg = await bob.next("message", body("hi bob"))
    assert msg["from"] == "alice@a.test/test" and msg["to"] == "bob@b.test"
    chat(bob, "alice@a.test/test", "hi alice")
    msg = await alice.next("message", body("hi alice"))
    assert msg["from"] == "bob@b.test/test"
    # One stream per direction, each authenticated by dialback (self-signed certificates).
    out_a = a.federation.links[("a.test", "b.test")].stream
    out_b = b.federation.links[("b.test", "a.test")].stream
    assert out_a.auth_method == out_b.auth_method == "dialback"
    assert out_a.transport.secure and out_b.transport.secure
    for i in range(3):
        chat(alice, "bob@b.test", f"again {i}")
    await bob.next("message", body("again 2"))
    assert len(a.federation.links) == 1 and a.federation.links[("a.test", "b.test")].stream \
        is out_a
    await close(alice, bob)


async def test_errors_come_back_across_domains(federation):
    a, _ = await federation.start()
    alice = await user(a, "alice")
    # RFC 6121 §8.5.1: no such user there
    chat(alice, "nobody@b.test", "anyone?")
    err = await alice.next("all", lambda m: m["type"] == "error")
    assert err["from"] == "nobody@b.test" and err["error"]["condition"] == "service-unavailable"
    assert await iq_error(alice, "nobody@b.test", f"<vCard xmlns='{VCARD}'/>") \
        == "service-unavailable"
    assert await iq_error(alice, "b.test", "<query xmlns='urn:example:unknown'/>") \
        == "service-unavailable"
    # A domain that does not exist (the test DNS answers NXDOMAIN), and a blocked one.
    chat(alice, "someone@nowhere.test", "hello?")
    err = await alice.next("all", lambda m: m["type"] == "error")
    assert err["from"] == "someone@nowhere.test"
    assert err["error"]["condition"] == "remote-server-not-found"
    assert await iq_error(alice, "nowhere.test", f"<query xmlns='{VERSION}'/>") \
        == "remote-server-not-found"
    await close(alice)


async def test_certificates_from_a_trusted_ca_use_sasl_external_and_bidi(federation):
    a, b = await federation.start(certs=True)
    alice = await user(a, "alice")
    bob = await user(b, "bob")
    chat(alice, "bob@b.test", "over EXTERNAL")
    await bob.next("message", body("over EXTERNAL"))
    link = a.federation.links[("a.test", "b.test")]
    assert link.stream.auth_method == "EXTERNAL" and link.stream.bidi
    (incoming,) = b.federation.incoming
    assert incoming.auth_method == "EXTERNAL" and incoming.authenticated == {"a.test": {"b.test"}}
    chat(bob, "alice@a.test", "back over the same stream")
    await alice.next("message", body("back over the same stream"))
    # XEP-0288: b.test answered over a.test's stream, it opened none of its own.
    assert b.federation.links == {} and not a.federation.incoming
    await close(alice, bob)


async def test_require_valid_certs_refuses_peers_without_one(federation):
    a, b = await federation.start(a={"s2s": {"require_valid_certs": True}})
    alice = await user(a, "alice")
    bob = await user(b, "bob")
    chat(alice, "bob@b.test", "you have no valid certificate")
    err = await alice.next("all", lambda m: m["type"] == "error")
    assert err["error"]["condition"] == "remote-server-not-found"
    chat(bob, "alice@a.test", "let me in")  # a.test does not accept dialback either
    err = await bob.next("all", lambda m: m["type"] == "error")
    assert err["error"]["condition"] == "remote-server-not-found"
    await alice.nothing("message", body("let me in"), wait=0.2)
    await close(alice, bob)


async def test_subscription_and_presence_both_ways(federation):
    a, b = await federation.start()
    alice = await user(a, "alice", presence=False, get_roster=True)
    alice.send_presence()
    bob = await user(b, "bob", presence=False, get_roster=True)
    bob.send_presence()
    alice.send_presence(pto="bob@b.test", ptype="subscribe")
    request = await bob.next("presence", lambda p: p["type"] == "subscribe")
    assert request["from"] == "alice@a.test"
    bob.send_presence(pto="alice@a.test", ptype="subscribed")
    push = await alice.next("roster_push", lambda i: i["roster"]["items"].get(
        "bob@b.test", {}).get("subscription") == "to")
    assert push is not None
    # §3.1.5: bob's server sends his current presence right away
    pres = await alice.next("presence", frm("bob@b.test/test"))
    assert pres["type"] == "available"
    bob.send_presence(pto="alice@a.test", ptype="subscribe")
    await alice.next("presence", lambda p: p["type"] == "subscribe")
    alice.send_presence(pto="bob@b.test", ptype="subscribed")
    await bob.next("presence", lambda p: str(p["from"]) == "alice@a.test/test"
                   and p["type"] == "available")
    items, _ = await a.host.storage.roster.get("alice")
    assert [(i.jid, i.subscription) for i in items] == [("bob@b.test", "both")]
    items, _ = await b.host.storage.roster.get("bob")
    assert [(i.jid, i.subscription) for i in items] == [("alice@a.test", "both")]
    # a presence change, then leaving: seen on the other server
    alice.send_presence(pstatus="busy", pshow="dnd")
    pres = await bob.next("presence", frm("alice@a.test/test"))
    assert pres["show"] == "dnd" and pres["status"] == "busy"
    await alice.close()
    pres = await bob.next("presence", frm("alice@a.test/test"))
    assert pres["type"] == "unavailable"
    # a probe at login: bob sees alice again when she comes back
    alice = await user(a, "alice", resource="again")
    await bob.next("presence", lambda p: str(p["from"]) == "alice@a.test/again"
                   and p["type"] == "available")
    # a.test shuts down: its users' unavailable presence still goes out before its streams
    await federation.a.stop()
    await bob.next("presence", lambda p: str(p["from"]) == "alice@a.test/again"
                   and p["type"] == "unavailable")
    await close(alice, bob)


async def test_offline_storage_and_archive_for_a_remote_sender(federation):
    a, b = await federation.start()
    await b.host.accounts.create("bob", "secret")
    alice = await user(a, "alice")
    chat(alice, "bob@b.test", "while you were away")
    # stored by b.test: the message arrives with its delay stamp when bob logs in
    await _wait_offline(b, "bob")
    bob = await user(b, "bob", plugins=("xep_0030", "xep_0203"))
    msg = await bob.next("message", body("while you were away"))
    assert msg["from"] == "alice@a.test/test"
    assert msg["delay"]["from"] == "b.test"
    # both archives (XEP-0313) have it, with the other server's user
    assert await _archived(alice, "bob@b.test") == ["while you were away"]
    assert await _archived(bob, "alice@a.test") == ["while you were away"]
    await close(alice, bob)


async def _wait_offline(server, name: str) -> None:
    import asyncio

    for _ in range(100):
        if await server.host.storage.offline.count(name):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("nothing stored offline")


async def _archived(client, with_jid: str) -> list[str]:
    mam = "urn:xmpp:mam:2"
    import asyncio

    from slixmpp.xmlstream.handler import Callback
    from slixmpp.xmlstream.matcher import MatchXPath

    queue: asyncio.Queue = asyncio.Queue()
    client.register_handler(Callback("fed-mam", MatchXPath(
        f"{{jabber:client}}message/{{{mam}}}result"), queue.put_nowait))
    await iq(client, None, f"<query xmlns='{mam}'><x xmlns='jabber:x:data' type='submit'>"
             f"<field var='FORM_TYPE'><value>{mam}</value></field>"
             f"<field var='with'><value>{with_jid}</value></field></x></query>", "set")
    client.remove_handler("fed-mam")
    out = []
    while not queue.empty():
        msg = queue.get_nowait()
        out.append(msg.xml.findtext(".//{jabber:client}message/{jabber:client}body"))
    return out


async def test_carbons_of_messages_with_a_remote_contact(federation):
    a, b = await federation.start()
    plugins = ("xep_0030", "xep_0280")
    phone = await user(a, "alice", resource="phone", presence=False, plugins=plugins)
    laptop = await user(a, "alice", resource="laptop", presence=False, plugins=plugins)
    for c, prio in ((phone, 1), (laptop, 0)):
        await c.plugin["xep_0280"].enable()
        c.send_presence(ppriority=prio)
    bob = await user(b, "bob")
    chat(bob, "alice@a.test", "to your best resource")
    await phone.next("message", body("to your best resource"))
    carbon = await laptop.next("all", lambda m: m.xml.find(
        "{urn:xmpp:carbons:2}received") is not None)
    inner = carbon.xml.find(".//{jabber:client}message")
    assert inner.get("from") == "bob@b.test/test"
    assert inner.findtext("{jabber:client}body") == "to your best resource"
    chat(phone, "bob@b.test/test", "sent from the phone")
    await bob.next("message", body("sent from the phone"))
    carbon = await laptop.next("all", lambda m: m.xml.find(
        "{urn:xmpp:carbons:2}sent") is not None)
    assert carbon.xml.find(".//{jabber:client}message").get("to") == "bob@b.test/test"
    await close(phone, laptop, bob)


async def test_vcard_version_and_disco_of_remote_entities(federation):
    a, b = await federation.start()
    alice = await user(a, "alice")
    bob = await user(b, "bob")
    await iq(bob, None, f"<vCard xmlns='{VCARD}'><FN>Bob of B</FN></vCard>", "set")
    result = await iq(alice, "bob@b.test", f"<vCard xmlns='{VCARD}'/>")
    assert result.findtext(f"{{{VCARD}}}vCard/{{{VCARD}}}FN") == "Bob of B"
    assert result.get("from") == "bob@b.test"
    result = await iq(bob, "a.test", f"<query xmlns='{VERSION}'/>")
    assert result.findtext(f"{{{VERSION}}}query/{{{VERSION}}}name")
    info = await iq(alice, "b.test", f"<query xmlns='{DISCO_INFO}'/>")
    features = {f.get("var") for f in info.iter(f"{{{DISCO_INFO}}}feature")}
    assert {DISCO_INFO, VERSION, "urn:xmpp:ping"} <= features
    # an account is disclosed to its subscribers only (see the PEP test), not to a stranger
    assert await iq_error(bob, "alice@a.test", f"<query xmlns='{DISCO_INFO}'/>") \
        == "service-unavailable"
    await iq(alice, "bob@b.test/test", "<ping xmlns='urn:xmpp:ping'/>")  # to a full JID
    await close(alice, bob)


async def test_pep_of_a_remote_contact(federation):
    a, b = await federation.start()
    alice = await user(a, "alice", get_roster=True)
    bob = await user(b, "bob", get_roster=True)
    await _subscribe(alice, bob, "alice@a.test", "bob@b.test")
    nick = "http://jabber.org/protocol/nick"
    pubsub = "http://jabber.org/protocol/pubsub"
    await iq(bob, None, f"<pubsub xmlns='{pubsub}'><publish node='{nick}'><item id='current'>"
             f"<nick xmlns='{nick}'>Bobby</nick></item></publish></pubsub>", "set")
    result = await iq(alice, "bob@b.test", f"<pubsub xmlns='{pubsub}'><items node='{nick}'/>"
                      "</pubsub>")
    assert result.findtext(f".//{{{nick}}}nick") == "Bobby"
    info = await iq(alice, "bob@b.test", f"<query xmlns='{DISCO_INFO}'/>")
    identities = {(i.get("category"), i.get("type"))
                  for i in info.iter(f"{{{DISCO_INFO}}}identity")}
    assert ("pubsub", "pep") in identities
    # a stranger on the other server may not read it (access model "presence")
    carol = await user(a, "carol")
    assert await iq_error(carol, "bob@b.test", f"<pubsub xmlns='{pubsub}'><items "
                          f"node='{nick}'/></pubsub>") in ("not-authorized", "item-not-found",
                                                           "forbidden")
    await close(alice, bob, carol)


async def _subscribe(x, y, x_jid: str, y_jid: str) -> None:
    """A mutual subscription between x and y (on different servers)."""
    for s, r, s_jid, r_jid in ((x, y, x_jid, y_jid), (y, x, y_jid, x_jid)):
        s.send_presence(pto=r_jid, ptype="subscribe")
        await r.next("presence", lambda p, j=s_jid: p["type"] == "subscribe"
                     and str(p["from"]) == j)
        r.send_presence(pto=s_jid, ptype="subscribed")
        await s.next("presence", lambda p, j=r_jid: str(p["from"]).startswith(j + "/")
                     and p["type"] == "available")


async def test_raw_stanza_namespaces_survive_the_trip(federation):
    """jabber:server on the wire, jabber:client for clients, payloads untouched."""
    a, b = await federation.start()
    alice = await user(a, "alice")
    bob = await user(b, "bob")
    msg = alice.make_message(mto="bob@b.test", mbody="with payload", mtype="chat")
    msg["subject"] = "topic"
    msg.xml.append(ET.fromstring("<x xmlns='urn:example:x' a='1'><y>deep</y><message "
                                 "xmlns='jabber:client'><body>inner</body></message></x>"))
    msg.send()
    got = await bob.next("message", body("with payload"))
    assert got.xml.findtext("{jabber:client}subject") == "topic"
    x = got.xml.find("{urn:example:x}x")
    assert x.get("a") == "1" and x.findtext("{urn:example:x}y") == "deep"
    assert x.findtext("{jabber:client}message/{jabber:client}body") == "inner"
    await close(alice, bob)


MUC = "http://jabber.org/protocol/muc"
MUC_USER = MUC + "#user"
MUC_OWNER = MUC + "#owner"


async def _join(c, room: str, nick: str):
    pres = c.make_presence(pto=f"{room}/{nick}")
    pres.xml.append(ET.Element(f"{{{MUC}}}x"))
    pres.send()
    return await c.next("presence", lambda p: str(p["from"]) == f"{room}/{nick}"
                        and (p["type"] == "error" or p.xml.find(
                            f"{{{MUC_USER}}}x/{{{MUC_USER}}}status[@code='110']") is not None))


async def _room(owner, room: str, nick: str) -> None:
    pres = await _join(owner, room, nick)
    assert pres["type"] != "error", pres
    await iq(owner, room, f"<query xmlns='{MUC_OWNER}'><x xmlns='jabber:x:data' "
             "type='submit'/></query>", "set")  # an instant room (XEP-0045 §10.1.2)


async def test_rooms_joined_by_users_of_the_other_server(federation):
    a, b = await federation.start()
    alice = await user(a, "alice")
    bob = await user(b, "bob")
    for owner, guest, room in ((alice, bob, "lobby@conference.a.test"),
                               (bob, alice, "hall@conference.b.test")):
        await _room(owner, room, "owner")
        pres = await _join(guest, room, "guest")
        assert pres["type"] != "error", pres
        await owner.next("presence", frm(f"{room}/guest"))
        owner.send_message(mto=room, mbody=f"welcome to {room}", mtype="groupchat")
        msg = await guest.next("all", body(f"welcome to {room}"))
        assert msg["from"] == f"{room}/owner" and msg["type"] == "groupchat"
        guest.send_message(mto=room, mbody="thanks", mtype="groupchat")
        await owner.next("all", lambda m, r=room: body("thanks")(m)
                         and str(m["from"]) == f"{r}/guest")
        # a private message through the room, to the remote occupant
        owner.send_message(mto=f"{room}/guest", mbody="psst", mtype="chat")
        pm = await guest.next("all", body("psst"))
        assert pm["from"] == f"{room}/owner"
    # bob's server tells both rooms he left when his session ends
    await bob.close()
    pres = await alice.next("presence", lambda p: str(p["from"])
                            == "lobby@conference.a.test/guest" and p["type"] == "unavailable")
    assert pres is not None
    await close(alice)
