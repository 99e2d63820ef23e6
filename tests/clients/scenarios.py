"""What every client of the matrix does, written once, against a slixmpp user on the same server.

Each function takes the running server and a ``login`` (``node_client.logins``) that starts
the client under test and logs it in over one transport; the test modules run each function
over each transport of their client. The client under test is juliet; romeo is slixmpp.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from lxml import etree
from slixmpp import JID

from tests.clients.node_client import DOMAIN, PASSWORD, C, Login, NodeClient, body, parse, presence
from tests.scenarios.muc.helpers import configure, send_join, statuses
from tests.support.clients import Client, connect
from xmpp_server.server import Server

JULIET = f"juliet@{DOMAIN}"
ROMEO = f"romeo@{DOMAIN}"
ROOM = f"balcony@conference.{DOMAIN}"
ROSTER = "{jabber:iq:roster}"
MUC_USER = "{http://jabber.org/protocol/muc#user}"
DELAY = "{urn:xmpp:delay}"
# Non-ASCII, markup characters and an emoji: what each transport must carry unchanged.
TEXT = "Wherefore art thou? <3 & «adieu» 你好 🌹"


async def romeo(server: Server, **kw: Any) -> Client:
    """The slixmpp contact, answering subscription requests only when the test says so."""
    client = await connect(server, "romeo", PASSWORD, resource="slixmpp", **kw)
    client.auto_authorize = None
    client.auto_subscribe = False
    return client


async def accounts(server: Server, *users: str) -> None:
    assert server.host is not None
    for user in users:
        await server.host.accounts.create(user, PASSWORD)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not await check():  # noqa: ASYNC110 (server state that no event reports)
            await asyncio.sleep(0.05)


async def offline(server: Server, user: str) -> None:
    """Wait until the server has ended every session of ``user``."""
    host = server.host
    assert host is not None

    async def gone() -> bool:
        return not host.sessions.is_online(user)
    await eventually(gone)


async def stored(server: Server, user: str, count: int) -> None:
    """Wait until ``count`` messages wait in the offline storage of ``user``."""
    host = server.host
    assert host is not None

    async def waiting() -> bool:
        return await host.storage.offline.count(user) >= count
    await eventually(waiting)


def roster_items(result: dict[str, Any]) -> dict[str, etree._Element]:
    return {item.get("jid"): item for item in parse(result["xml"]).iter(ROSTER + "item")}


async def logged_in(server: Server, login: Login) -> NodeClient:
    """juliet logs in, fetches her roster and becomes available, as a chat client starts."""
    juliet = await login("juliet")
    await juliet.do("roster_get")
    await juliet.do("presence")
    return juliet


# -- the scenarios ---------------------------------------------------------------------------

async def log_in(server: Server, login: Login) -> NodeClient:
    """SCRAM login, a bound resource, the session the server sees; a clean logout."""
    await accounts(server, "juliet")
    juliet = await login("juliet")
    assert juliet.login["jid"].startswith(JULIET + "/"), juliet.login
    assert juliet.login["mechanism"].startswith("SCRAM-SHA-"), juliet.login
    assert server.host is not None and server.host.sessions.is_online("juliet")
    assert roster_items(await juliet.do("roster_get")) == {}
    await juliet.do("disconnect")
    await offline(server, "juliet")
    return juliet


async def contact_both_ways(server: Server, login: Login) -> None:
    """juliet adds romeo; each approves the other (RFC 6121 §3): subscription both ways."""
    await accounts(server, "juliet", "romeo")
    juliet = await logged_in(server, login)
    rom = await romeo(server, get_roster=True, send_presence=True)
    try:
        await juliet.do("roster_set", jid=ROMEO, name="Romeo")
        push = await juliet.stanza(lambda e: e.get("type") == "set"
                                   and e.find(f"{ROSTER}query/{ROSTER}item") is not None)
        assert push.find(f"{ROSTER}query/{ROSTER}item").get("jid") == ROMEO
        await juliet.do("presence", to=ROMEO, type="subscribe")
        await rom.next("presence", lambda p: p["type"] == "subscribe" and p["from"] == JULIET)
        rom.send_presence(pto=JULIET, ptype="subscribed")
        rom.send_presence(pto=JULIET, ptype="subscribe")
        await juliet.stanza(presence(ROMEO, "subscribed"))
        await juliet.stanza(presence(ROMEO))  # romeo's resource is available to her now
        await juliet.stanza(presence(ROMEO, "subscribe"))
        await juliet.do("presence", to=ROMEO, type="subscribed")
        await rom.next("presence", lambda p: p["type"] == "subscribed" and p["from"] == JULIET)
        await rom.next("presence", lambda p: p["type"] == "available"
                       and p["from"].bare == JULIET)
        item = roster_items(await juliet.do("roster_get"))[ROMEO]
        assert (item.get("subscription"), item.get("name"), item.get("ask")) == (
            "both", "Romeo", None)
        await rom.next("roster_push", lambda iq: iq["roster"]["items"].get(JULIET, {}).get(
            "subscription") == "both")
    finally:
        await rom.close()


async def chat_both_ways(server: Server, login: Login) -> None:
    """1:1 messages: juliet to romeo's bare JID, romeo to her bare and her full JID."""
    await accounts(server, "juliet", "romeo")
    juliet = await logged_in(server, login)
    rom = await romeo(server, send_presence=True)
    try:
        await juliet.do("message", to=ROMEO, body=TEXT)
        msg = await rom.next("message", lambda m: m["body"] == TEXT)
        assert msg["type"] == "chat" and str(msg["from"]) == juliet.login["jid"]
        rom.send_message(mto=JID(JULIET), mbody="to the bare JID " + TEXT, mtype="chat")
        got = await juliet.stanza(body("to the bare JID " + TEXT))
        assert got.get("from") == str(rom.boundjid) and got.get("type") == "chat"
        rom.send_message(mto=msg["from"], mbody="to the full JID", mtype="chat")
        await juliet.stanza(body("to the full JID"))
    finally:
        await rom.close()


async def offline_delivery(server: Server, login: Login) -> None:
    """What one sends while the other is logged out arrives at the next login, stamped."""
    await accounts(server, "juliet", "romeo")
    juliet = await logged_in(server, login)
    await juliet.do("message", to=ROMEO, body="while you were away")  # romeo is offline
    await juliet.do("disconnect")
    await offline(server, "juliet")
    rom = await romeo(server, send_presence=True)
    try:
        msg = await rom.next("message", lambda m: m["body"] == "while you were away")
        assert msg.xml.find(DELAY + "delay") is not None
        rom.send_message(mto=JID(JULIET), mbody="good night " + TEXT, mtype="chat")
        await stored(server, "juliet", 1)
        juliet = await logged_in(server, login)
        got = await juliet.stanza(body("good night " + TEXT))
        delay = got.find(DELAY + "delay")
        assert delay is not None and delay.get("from") == DOMAIN, etree.tostring(got)
        assert got.get("from") == str(rom.boundjid)
    finally:
        await rom.close()


async def room(server: Server, login: Login) -> None:
    """juliet joins the room romeo opened; both talk; she leaves."""
    await accounts(server, "juliet", "romeo")
    rom = await romeo(server, send_presence=True)
    try:
        send_join(rom, ROOM, "Romeo")
        created = await rom.next("presence", lambda p: str(p["from"]) == ROOM + "/Romeo")
        assert "201" in statuses(created), created
        await configure(rom, ROOM)  # an instant room (XEP-0045 §10.1.2)
        juliet = await logged_in(server, login)
        await juliet.do("presence", to=ROOM + "/Juliet", muc=True)
        await juliet.stanza(presence(ROOM + "/Romeo"))
        me = await juliet.stanza(presence(ROOM + "/Juliet"))
        assert "110" in {s.get("code") for s in me.iter(MUC_USER + "status")}
        await juliet.stanza(lambda e: e.find(C + "subject") is not None)  # §7.2.15: joined
        await rom.next("presence", lambda p: str(p["from"]) == ROOM + "/Juliet")
        await juliet.do("message", to=ROOM, body="Romeo! " + TEXT, type="groupchat")
        heard = await rom.next("message", lambda m: m["body"] == "Romeo! " + TEXT)
        assert str(heard["from"]) == ROOM + "/Juliet" and heard["type"] == "groupchat"
        echo = await juliet.stanza(body("Romeo! " + TEXT))  # §7.4: reflected to her
        assert echo.get("from") == ROOM + "/Juliet"
        rom.send_message(mto=JID(ROOM), mbody="Juliet! " + TEXT, mtype="groupchat")
        said = await juliet.stanza(body("Juliet! " + TEXT))
        assert said.get("from") == ROOM + "/Romeo" and said.get("type") == "groupchat"
        await juliet.do("presence", to=ROOM + "/Juliet", type="unavailable")
        await juliet.stanza(presence(ROOM + "/Juliet", "unavailable"))
        await rom.next("presence", lambda p: str(p["from"]) == ROOM + "/Juliet"
                       and p["type"] == "unavailable")
    finally:
        await rom.close()
