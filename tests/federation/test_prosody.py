"""Interoperability with Prosody (Debian's package) over loopback, both directions.

Our server is a.example on 127.0.0.2; Prosody is p.test on 127.0.0.4 (see ``prosody.py``).
With certificates from a CA neither trusts, the servers verify each other by dialback
(XEP-0220); with certificates from a test CA both trust, by SASL EXTERNAL (XEP-0178).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from tests.federation import prosody as prosody_mod
from tests.federation.conftest import Federation
from tests.federation.helpers import body, chat, close, frm, iq, user
from tests.federation.pki import TestCA
from tests.federation.prosody import Prosody
from tests.support.clients import TIMEOUT, Client
from xmpp_server.server import Server

P = prosody_mod.DOMAIN
A = "a.example"  # ours; not .test, which Prosody's resolver (libunbound) keeps to itself
MUC = "http://jabber.org/protocol/muc"
MUC_USER = MUC + "#user"
MUC_OWNER = MUC + "#owner"


class Interop:
    def __init__(self, tmp_path: Path, fed: Federation) -> None:
        self.tmp_path = tmp_path
        self.fed = fed
        self.prosody: Prosody | None = None

    async def start(self, certs: bool, bidi: bool = False) -> Server:
        fed, peer = self.fed, self.fed.a
        dns = fed.dns
        if certs:
            ca = fed.ca
            p_cert, p_key = ca.issue(P)
            cafile: Path | None = ca.path
        else:
            p_cert, p_key = TestCA(self.tmp_path / "untrusted", "Untrusted CA").issue(P)
            cafile = None
        self.prosody = Prosody(self.tmp_path / "prosody", dns.port, p_cert, p_key, cafile,
                               bidi=bidi)
        target = f"{prosody_mod.ADDRESS}:{self.prosody.s2s_port}"
        s2s: dict[str, Any] = {
            "bind": peer.address, "port": peer.port, "direct_tls_port": 0,
            "hosts": f"{P}={target},conference.{P}={target}",
            "nameservers": f"127.0.0.1:{dns.port}", "connect_timeout": 10}
        sections: dict[str, dict[str, Any]] = {"s2s": s2s}
        if certs:
            cert, key = fed.ca.issue(peer.domain)
            sections["tls"] = {"cert": str(cert), "key": str(key)}
            s2s["ca_file"] = str(fed.ca.path)
        peer.sections = sections
        # Prosody finds us by SRV, for our domain and for its MUC service
        for name in (peer.domain, f"conference.{peer.domain}"):
            dns.add(f"_xmpp-server._tcp.{name}", "SRV", f"0 5 {peer.port} {peer.domain}.")
        dns.add(peer.domain, "A", peer.address)
        server = await peer.start()
        for name in ("pat", "quinn"):
            await self.prosody.register(name)
        await self.prosody.start()
        return server

    async def client(self, name: str, resource: str = "test") -> Client:
        assert self.prosody is not None
        c = Client(f"{name}@{P}/{resource}", "secret", ("xep_0030",))
        c.auto_authorize = None
        c.auto_subscribe = False
        queue: asyncio.Queue[Any] = asyncio.Queue()
        c.queues["all"] = queue
        c.register_handler(Callback("all", MatchXPath("{jabber:client}message"),
                                    queue.put_nowait))
        c.connect(prosody_mod.ADDRESS, self.prosody.c2s_port)
        await asyncio.wait_for(c.started, TIMEOUT)
        c.send_presence()
        return c

    async def close(self) -> None:
        await self.fed.a.stop()
        if self.prosody is not None:
            await self.prosody.stop()


@pytest.fixture
async def interop(tmp_path: Path, dns_server: Any,
                  request: pytest.FixtureRequest) -> AsyncIterator[Interop]:
    prosody_mod.available()
    sqlite = f"sqlite+aiosqlite:///{tmp_path / 'db-a' / 'xmppd.db'}"
    it = Interop(tmp_path, Federation(tmp_path, sqlite, sqlite, dns_server, A))
    try:
        yield it
    finally:
        report = getattr(request.node, "rep_call", None)
        if it.prosody is not None and report is not None and report.failed:
            print("---- prosody.log ----\n" + it.prosody.log_tail(80))
        await it.close()


async def _subscribe(x: Client, y: Client, x_jid: str, y_jid: str) -> None:
    for s, r, s_jid, r_jid in ((x, y, x_jid, y_jid), (y, x, y_jid, x_jid)):
        s.send_presence(pto=r_jid, ptype="subscribe")
        await r.next("presence", lambda p, j=s_jid: p["type"] == "subscribe"
                     and str(p["from"]) == j)
        r.send_presence(pto=s_jid, ptype="subscribed")
        await s.next("presence", lambda p, j=r_jid: str(p["from"]).startswith(j + "/")
                     and p["type"] == "available")


async def test_dialback_subscriptions_and_messages_with_prosody(interop):
    a = await interop.start(certs=False)
    alice = await user(a, "alice", get_roster=True)
    pat = await interop.client("pat")
    await pat.get_roster()
    await _subscribe(alice, pat, "alice@" + A, f"pat@{P}")
    chat(alice, f"pat@{P}", "hello prosody")
    msg = await pat.next("message", body("hello prosody"))
    assert msg["from"] == f"alice@{A}/test"
    chat(pat, "alice@" + A, "hello a.example")
    msg = await alice.next("message", body("hello a.example"))
    assert msg["from"] == f"pat@{P}/test"
    link = a.federation.links[(A, P)]
    assert link.stream.auth_method == "dialback"
    assert {s.auth_method for s in a.federation.incoming} == {"dialback"}
    items, _ = await a.host.storage.roster.get("alice")
    assert [(i.jid, i.subscription) for i in items] == [(f"pat@{P}", "both")]
    # presence and errors across: pat leaves, and a user Prosody does not have
    await pat.close()
    pres = await alice.next("presence", frm(f"pat@{P}/test"))
    assert pres["type"] == "unavailable"
    chat(alice, f"nobody@{P}", "hello?")
    err = await alice.next("all", lambda m: m["type"] == "error")
    assert err["error"]["condition"] == "service-unavailable"
    result = await iq(alice, P, "<query xmlns='jabber:iq:version'/>")
    assert result.findtext("{jabber:iq:version}query/{jabber:iq:version}name") == "Prosody"
    await close(alice)


async def test_certificates_sasl_external_and_bidi_with_prosody(interop):
    a = await interop.start(certs=True, bidi=True)
    alice = await user(a, "alice")
    pat = await interop.client("pat")
    chat(alice, f"pat@{P}", "over EXTERNAL")
    await pat.next("message", body("over EXTERNAL"))
    stream = a.federation.links[(A, P)].stream
    assert stream.auth_method == "EXTERNAL" and stream.bidi
    chat(pat, f"alice@{A}/test", "back over the same stream")
    await alice.next("message", body("back over the same stream"))
    assert not a.federation.incoming  # XEP-0288: Prosody answered over our stream
    await close(alice, pat)


async def test_prosody_initiates_with_its_certificate(interop):
    a = await interop.start(certs=True)
    alice = await user(a, "alice")
    pat = await interop.client("pat")
    chat(pat, f"alice@{A}/test", "Prosody calling")
    await alice.next("message", body("Prosody calling"))
    (incoming,) = a.federation.incoming
    assert incoming.auth_method == "EXTERNAL" and incoming.authenticated == {P: {A}}
    assert not incoming.bidi  # mod_s2s_bidi is not loaded in this one
    chat(alice, f"pat@{P}/test", "calling back")
    await pat.next("message", body("calling back"))
    assert a.federation.links[(A, P)].stream.auth_method == "EXTERNAL"
    await close(alice, pat)


async def _join(c: Client, room: str, nick: str) -> Any:
    pres = c.make_presence(pto=f"{room}/{nick}")
    pres.xml.append(ET.Element(f"{{{MUC}}}x"))
    pres.send()
    return await c.next("presence", lambda p: str(p["from"]) == f"{room}/{nick}" and (
        p["type"] == "error" or p.xml.find(
            f"{{{MUC_USER}}}x/{{{MUC_USER}}}status[@code='110']") is not None))


async def _instant_room(c: Client, room: str, nick: str) -> None:
    pres = await _join(c, room, nick)
    assert pres["type"] != "error", pres
    await iq(c, room, f"<query xmlns='{MUC_OWNER}'><x xmlns='jabber:x:data' "
             "type='submit'/></query>", "set")


async def test_rooms_across_prosody_and_us(interop):
    a = await interop.start(certs=False)
    alice = await user(a, "alice")
    pat = await interop.client("pat")
    # a Prosody user in one of our rooms
    ours = f"lobby@conference.{A}"
    await _instant_room(alice, ours, "alice")
    pres = await _join(pat, ours, "pat")
    assert pres["type"] != "error", pres
    await alice.next("presence", frm(f"{ours}/pat"))
    alice.send_message(mto=ours, mbody="welcome pat", mtype="groupchat")
    await pat.next("all", body("welcome pat"))
    pat.send_message(mto=ours, mbody="thanks alice", mtype="groupchat")
    msg = await alice.next("all", body("thanks alice"))
    assert msg["from"] == f"{ours}/pat"
    # one of ours in a Prosody room
    theirs = f"cafe@conference.{P}"
    await _instant_room(pat, theirs, "pat")
    pres = await _join(alice, theirs, "alice")
    assert pres["type"] != "error", pres
    await pat.next("presence", frm(f"{theirs}/alice"))
    alice.send_message(mto=theirs, mbody="hi from a.example", mtype="groupchat")
    msg = await pat.next("all", body("hi from a.example"))
    assert msg["from"] == f"{theirs}/alice"
    pat.send_message(mto=theirs, mbody="hi from prosody", mtype="groupchat")
    await alice.next("all", body("hi from prosody"))
    await close(alice, pat)
