"""The browser app's client layer (web_bridge/static/js/xmpp/) against a real server.

The ``XmppClient`` module is driven from a page of the server's origin with
``page.evaluate``; the clients live on ``window`` between calls. The page is a static file
(not ``/``), so the app's own client does not run beside the one under test. The other party
is a slixmpp client (tests/support/clients.py) or a second browser context.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import zlib
from pathlib import Path
from typing import Any

from lxml import etree
from slixmpp import JID as SJID
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from tests.browser.conftest import OpenApp, app_url
from tests.support.clients import Client, connect
from tests.support.sasl2_client import SASL2, S, agent, condition, ht_hash, outcome
from tests.support.server import ServerFactory
from tests.web_bridge.clients import WsClient
from xmpp_server.jid import JID
from xmpp_server.server import Server
from xmpp_server.stream.fast import client_key, token_secret

TIMEOUT = 10_000  # ms, for wait_for_function
CHATSTATES = "http://jabber.org/protocol/chatstates"
ALICE = SJID("alice@localhost")

EVENTS = ["status", "contacts", "requests", "presence", "message", "receipt", "correction",
          "chatstate", "rooms", "room", "invitations", "profile", "error"]

# The page keeps its clients on window: ``__new(name)`` makes one that logs its events.
SETUP = """async (events) => {
  const { XmppClient, XmppError } = await import('/static/js/xmpp/client.js');
  window.XmppClient = XmppClient;
  window.XmppError = XmppError;
  window.__new = (name = '__c') => {
    const c = new XmppClient();
    c.log = [];
    for (const n of events) c.addEventListener(n, (e) => c.log.push([n, e.detail]));
    window[name] = c;
    return c;
  };
  window.__msgs = (name = '__c', peer = null) => window[name].log
    .filter(([n, d]) => n === 'message' && (!peer || d.msg.with === peer))
    .map(([, d]) => ({ id: d.msg.id, body: d.msg.body, mine: d.msg.mine, with: d.msg.with,
                       nick: d.msg.nick ?? null, oob: d.msg.oob ?? null }));
  window.__events = (type, name = '__c') => window[name].log
    .filter(([n]) => n === type).map(([, d]) => d);
  // The page going away, now: the client stops (and stops writing its session state).
  window.__gone = (name = '__c') => {
    const c = window[name];
    c._unloading = true;
    c.sm.storage = null;
    c.conn.abort();
  };
}"""


async def client_page(web: Server, open_app: OpenApp) -> Any:
    """A page of the server's origin (a static file, shown as text) with the client module.

    Not the app (``/``): its own client would run beside the one under test (and restore the
    same stored session). A page made up by ``page.route`` would not do: Chromium counts it as
    public and blocks its WebSocket to localhost. What the app page logged is not ours.
    """
    page = await open_app()
    await page.route("**/favicon.ico", lambda route: route.fulfill(status=204, body=""))
    await page.goto(app_url(web) + "static/js/xmpp/jid.js")
    page.errors.clear()
    await page.evaluate(SETUP, EVENTS)
    return page


def catch_all(client: Client) -> None:
    """``client.next("any")``: every message, also those without a body (slixmpp's
    'message' event has only those with one)."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    client.queues["any"] = queue
    client.register_handler(Callback("any message", MatchXPath("{jabber:client}message"),
                                     queue.put_nowait))


async def wait(page: Any, predicate: str, arg: Any = None) -> Any:
    return await page.wait_for_function(predicate, arg=arg, timeout=TIMEOUT)


async def login(page: Any, user: str, password: str = "pw", name: str = "__c",
                remember: bool = False) -> str:
    """A new client ``window[name]`` logged in as ``user``; returns its full JID."""
    return await page.evaluate(
        """async ([name, user, password, remember]) => {
            const c = __new(name);
            await c.login(user, password, { remember });
            return c.jid;
        }""", [name, user, password, remember])


async def befriend(page: Any, bob: Client, name: str = "__c") -> None:
    """Mutual subscription between the page's user and bob, through the client layer."""
    await page.evaluate("([n]) => window[n].addContact('bob', 'hi bob')", [name])
    sub = await bob.next("presence", lambda p: p["type"] == "subscribe")
    bob.send_presence(pto=sub["from"].bare, ptype="subscribed")
    bob.send_presence(pto=sub["from"].bare, ptype="subscribe")
    await wait(page, "([n]) => window[n].contacts.get('bob@localhost')?.subscription === 'both'",
               [name])


async def no_errors(page: Any) -> None:
    assert page.errors == [], page.errors


# -- account, contacts, chat, history ---------------------------------------------------------


async def test_register_login_contacts_chat_history(web: Server, open_app: OpenApp) -> None:
    page = await client_page(web, open_app)
    # XEP-0077 on a stream of its own; a taken name is a 'conflict'
    await page.evaluate("() => __new('reg').register('alice', 'pw')")
    assert web.host is not None and await web.host.accounts.exists("alice")
    taken = await page.evaluate(
        "() => __new('reg').register('alice', 'x').then(() => null, (e) => e.condition)")
    assert taken == "conflict"
    wrong = await page.evaluate(
        "() => __new('bad').login('alice', 'nope').then(() => null, (e) => e.condition)")
    assert wrong == "not-authorized"

    jid = await login(page, "alice")
    assert jid.startswith("alice@localhost/")
    state = await page.evaluate(
        "() => ({status: __c.status, mech: __c.mechanism, bare: __c.bareJid})")
    assert state == {"status": "online", "mech": "SCRAM-SHA-256", "bare": "alice@localhost"}
    assert (JID.parse(jid).resource or "").startswith("web/")  # XEP-0386 Bind 2, our tag

    # a contact request with a note; bob sees the note, approves and asks back
    bob = await connect(web, "bob", "pw", send_presence=True, get_roster=True)
    catch_all(bob)
    try:
        await page.evaluate("() => __c.addContact('bob', 'hello, it is alice')")
        sub = await bob.next("presence", lambda p: p["type"] == "subscribe")
        assert sub["from"].bare == "alice@localhost"
        assert sub["status"] == "hello, it is alice"
        bob.send_presence(pto="alice@localhost", ptype="subscribed")
        bob.send_presence(pto="alice@localhost", ptype="subscribe", pstatus="me too")
        # alice pre-approved bob: the subscription completes without a request on her side
        await wait(page, "() => __c.contacts.get('bob@localhost')?.subscription === 'both'")
        await wait(page, "() => __c.contacts.get('bob@localhost')?.presence.online")
        assert await page.evaluate("() => __c.requests.size") == 0

        # messages both ways, with a receipt, a correction and chat states
        sent = await page.evaluate("() => __c.sendMessage('bob@localhost', 'hi <b>&')")
        got = await bob.next("message", lambda m: m["body"])
        assert got["body"] == "hi <b>&" and got["id"] == sent["id"]
        assert got.xml.find("{urn:xmpp:sid:0}origin-id").get("id") == sent["id"]
        assert got.xml.find("{urn:xmpp:receipts}request") is not None
        bob.send_raw(f"<message to='{got['from']}' type='chat'>"
                     f"<received xmlns='urn:xmpp:receipts' id='{sent['id']}'/></message>")
        await wait(page, "(id) => __events('receipt').some((d) => d.id === id)", sent["id"])

        fixed = await page.evaluate("() => __c.correctLast('bob@localhost', 'hi there')")
        assert fixed["id"] == sent["id"]
        corr = await bob.next("message", lambda m: m["body"])
        assert corr["body"] == "hi there"
        assert corr.xml.find("{urn:xmpp:message-correct:0}replace").get("id") == sent["id"]

        await page.evaluate("() => __c.sendChatState('bob@localhost', 'composing')")
        await bob.next("any", lambda m: m.xml.find(f"{{{CHATSTATES}}}composing") is not None)

        bob.send_message(mto=ALICE, mbody="yo alice", mtype="chat")
        await wait(page, "() => __msgs().some((m) => m.body === 'yo alice' && !m.mine)")
        # alice's client answers a receipt request
        bob.send_raw(f"<message to='{jid}' type='chat' id='ask-1'><body>ack me</body>"
                     "<request xmlns='urn:xmpp:receipts'/></message>")
        ack = await bob.next("any", lambda m: m.xml.find("{urn:xmpp:receipts}received")
                             is not None)
        assert ack.xml.find("{urn:xmpp:receipts}received").get("id") == "ask-1"
        bob.send_raw(f"<message to='alice@localhost' type='chat'><composing xmlns='{CHATSTATES}'/>"
                     "</message>")
        await wait(page, "() => __events('chatstate').some((d) => d.state === 'composing' "
                   "&& d.with === 'bob@localhost')")
        bob.send_raw("<message to='alice@localhost' type='chat'><body>yo alice!</body>"
                     "<replace xmlns='urn:xmpp:message-correct:0' id='nothing-yet'/></message>")
        await wait(page, "() => __events('correction').some((d) => d.body === 'yo alice!')")

        # history: bob writes 70 messages; alice pages back 30, 30, 10
        for i in range(70):
            bob.send_message(mto=ALICE, mbody=f"n{i}", mtype="chat")
        await wait(page, "() => __msgs().filter((m) => /^n\\d+$/.test(m.body)).length === 70")
        pages = await page.evaluate("""async () => {
            const out = [];
            let before;
            for (;;) {
                const page = await __c.history('bob@localhost', { before, max: 30 });
                out.push({ bodies: page.messages.map((m) => m.body), complete: page.complete });
                if (page.complete || out.length > 5) return out;
                before = page.first;
            }
        }""")
        bodies = [b for p in reversed(pages) for b in p["bodies"]]
        assert [p["complete"] for p in pages][-1] is True
        numbered = [b for b in bodies if b.startswith("n")]
        assert numbered == [f"n{i}" for i in range(70)]
        assert [len(p["bodies"]) for p in pages][:2] == [30, 30]
        # the correction is applied in the archive: the corrected text, once
        assert "hi there" in bodies and "hi <b>&" not in bodies
        # the newest page again, by a message id as 'before': same as the archive id
        second = await page.evaluate("""async () => {
            const first = await __c.history('bob@localhost', { max: 30 });
            const page = await __c.history('bob@localhost', { before: first.messages[0].id,
                                                               max: 30 });
            return page.messages.map((m) => m.body);
        }""")
        assert second == pages[1]["bodies"]
    finally:
        await bob.close()
    await no_errors(page)


# -- groups -------------------------------------------------------------------------------------


async def test_groups(web: Server, open_app: OpenApp) -> None:
    assert web.host is not None
    for user in ("alice", "bob", "carol"):
        await web.host.accounts.create(user, "pw")
    alice = await client_page(web, open_app)
    bob = await client_page(web, open_app)
    await login(alice, "alice")
    await login(bob, "bob")

    room = await alice.evaluate(
        "() => __c.createRoom({ name: 'Team <1>', description: 'our & room' })")
    assert room.endswith("@conference.localhost")
    mine = await alice.evaluate("""(room) => {
        const r = __c.rooms.get(room);
        return { name: r.name, description: r.description, joined: r.joined,
                 affiliation: r.affiliation, role: r.role, nick: r.nick };
    }""", room)
    assert mine == {"name": "Team <1>", "description": "our & room", "joined": True,
                    "affiliation": "owner", "role": "moderator", "nick": "alice"}
    # the owner form was submitted: persistent, members-only, archived, named
    muc = web.host.modules["muc"].service  # type: ignore[attr-defined]
    state = await muc.room(JID.parse(room))
    assert state is not None and not state.locked
    config = state.config
    assert (config.name, config.description, config.persistent, config.members_only,
            config.archiving, config.whois) == ("Team <1>", "our & room", True, True, True,
                                                 "moderators")

    # bob is not a member: he cannot enter; invited, he is (and carol, offline, gets it later)
    refused = await bob.evaluate(
        "(room) => __c.joinRoom(room).then(() => null, (e) => e.condition)", room)
    assert refused == "registration-required"
    await alice.evaluate("(room) => __c.invite(room, 'bob@localhost', 'join us')", room)
    await alice.evaluate("(room) => __c.invite(room, 'carol', 'you too')", room)
    await wait(bob, "(room) => __c.invitations.has(room)", room)
    inv = await bob.evaluate("(room) => __c.invitations.get(room)", room)
    assert inv["from"] == "alice@localhost" and inv["reason"] == "join us"
    await bob.evaluate("(room) => __c.acceptInvitation(room)", room)
    assert await bob.evaluate("(room) => __c.invitations.has(room)", room) is False
    await wait(alice, "(room) => __c.rooms.get(room).occupants.has('bob')", room)
    occupant = await alice.evaluate("(room) => __c.rooms.get(room).occupants.get('bob')", room)
    assert occupant["affiliation"] == "member" and occupant["jid"] == "bob@localhost"
    assert await bob.evaluate("(room) => __c.rooms.get(room).name", room) == "Team <1>"

    # messages both ways; the sender's own message is shown once
    await alice.evaluate("(room) => __c.sendGroupMessage(room, 'hello team')", room)
    await wait(bob, "(room) => __msgs('__c', room).some((m) => m.body === 'hello team' "
               "&& m.nick === 'alice' && !m.mine)", room)
    await bob.evaluate("(room) => __c.sendGroupMessage(room, 'hi alice')", room)
    await wait(alice, "(room) => __msgs('__c', room).some((m) => m.body === 'hi alice' "
               "&& m.nick === 'bob')", room)
    await wait(bob, "(room) => __msgs('__c', room).some((m) => m.body === 'hi alice')", room)
    await bob.evaluate("(room) => __c.correctLast(room, 'hi alice!')", room)
    await wait(alice, "(room) => __events('correction').some((d) => d.with === room "
               "&& d.body === 'hi alice!' && d.nick === 'bob')", room)
    own = await alice.evaluate(
        "(room) => __msgs('__c', room).filter((m) => m.body === 'hello team')", room)
    assert len(own) == 1 and own[0]["mine"] is True
    await bob.evaluate("(room) => __c.sendChatState(room, 'composing')", room)
    await wait(alice, "(room) => __events('chatstate').some((d) => d.with === room "
               "&& d.nick === 'bob' && d.state === 'composing')", room)

    # the room's archive, corrections applied
    history = await bob.evaluate("""async (room) => {
        const page = await __c.roomHistory(room, { max: 30 });
        return { complete: page.complete,
                 messages: page.messages.map((m) => [m.nick, m.body, m.mine]) };
    }""", room)
    assert history["complete"] is True
    assert history["messages"] == [["alice", "hello team", False], ["bob", "hi alice!", True]]

    # rename: everyone in the room sees the new name (status 104, then disco#info)
    await alice.evaluate("(room) => __c.renameRoom(room, 'Team 2')", room)
    await wait(bob, "(room) => __c.rooms.get(room).name === 'Team 2'", room)

    # kick: bob is out (still a member); alice sees him leave
    await alice.evaluate("(room) => __c.kick(room, 'bob')", room)
    await wait(bob, "(room) => __events('room').some((d) => d.jid === room "
               "&& d.reason === 'kicked')", room)
    assert await bob.evaluate("(room) => __c.rooms.get(room).joined", room) is False
    await wait(alice, "(room) => !__c.rooms.get(room).occupants.has('bob')", room)

    # bookmarks: after a new login the room is back, entered (XEP-0402 autojoin)
    await alice.evaluate("() => __c.logout()")
    await login(alice, "alice")
    await alice.evaluate("() => __c.ready")
    assert await alice.evaluate("(room) => __c.rooms.get(room)?.joined", room) is True
    assert await alice.evaluate("(room) => __c.rooms.get(room).name", room) == "Team 2"

    # an invitation through the room (XEP-0045 §7.8.2) for dave, also offline
    await web.host.accounts.create("dave", "pw")
    await alice.evaluate("""async (room) => {
        const { x } = await import('/static/js/xmpp/xml.js');
        __c.send(x('message', { to: room }, x('x', { xmlns: 'http://jabber.org/protocol/muc#user' },
            x('invite', { to: 'dave@localhost' }, x('reason', {}, 'mediated')))));
    }""", room)
    dave = await client_page(web, open_app)
    await login(dave, "dave")
    await wait(dave, "(room) => __c.invitations.get(room)?.reason === 'mediated'", room)
    assert await dave.evaluate("(room) => __c.invitations.get(room).from", room) == \
        "alice@localhost"
    await dave.evaluate("(room) => __c.acceptInvitation(room)", room)
    await wait(alice, "(room) => __c.rooms.get(room).occupants.has('dave')", room)

    # carol was offline: the invitation waited for her
    carol = await client_page(web, open_app)
    await login(carol, "carol")
    await wait(carol, "(room) => __c.invitations.get(room)?.reason === 'you too'", room)
    await carol.evaluate("(room) => __c.declineInvitation(room)", room)
    assert await carol.evaluate("() => __c.invitations.size") == 0

    # leaving removes the bookmark: the room does not come back
    await alice.evaluate("(room) => __c.leaveRoom(room)", room)
    await alice.evaluate("() => __c.logout()")
    await login(alice, "alice")
    await alice.evaluate("() => __c.ready")
    assert await alice.evaluate("(room) => __c.rooms.has(room)", room) is False
    for page in (alice, bob, carol, dave):
        await no_errors(page)


# -- profile, files ------------------------------------------------------------------------------


def png(width: int, height: int) -> bytes:
    """A small RGB PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\0" + b"".join(bytes([(x * 40) % 256, (y * 60) % 256, 128])
                                    for x in range(width)) for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0,
                                                              0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


async def test_contacts_profile_upload(web: Server, open_app: OpenApp) -> None:
    assert web.host is not None
    for user in ("alice", "bob"):
        await web.host.accounts.create(user, "pw")
    alice = await client_page(web, open_app)
    bob = await client_page(web, open_app)
    await login(alice, "alice")
    await login(bob, "bob")

    # a request through the client layer on both sides: the note arrives, bob accepts
    await alice.evaluate("() => __c.addContact('bob@localhost', 'from the office')")
    await wait(bob, "() => __c.requests.get('alice@localhost')?.note === 'from the office'")
    await bob.evaluate("() => __c.acceptRequest('alice@localhost')")
    for page, peer in ((alice, "bob@localhost"), (bob, "alice@localhost")):
        await wait(page, "(p) => __c.contacts.get(p)?.subscription === 'both' "
                   "&& __c.contacts.get(p).presence.online", peer)
    assert await bob.evaluate("() => __c.requests.size") == 0

    # a refused request: carol is told
    carol = await connect(web, "carol", "pw", send_presence=True, get_roster=True)
    try:
        carol.send_presence(pto="alice@localhost", ptype="subscribe", pstatus="let me in")
        await wait(alice, "() => __c.requests.get('carol@localhost')?.note === 'let me in'")
        await alice.evaluate("() => __c.declineRequest('carol@localhost')")
        await carol.next("presence", lambda p: p["type"] == "unsubscribed")
        assert await alice.evaluate("() => __c.requests.has('carol@localhost')") is False
    finally:
        await carol.close()

    # carbons: alice's second browser sees what her first one sends and receives
    alice2 = await client_page(web, open_app)
    await login(alice2, "alice")
    first = await alice.evaluate("() => __c.jid")
    await alice.evaluate("() => __c.sendMessage('bob@localhost', 'from tab one')")
    await wait(alice2, "() => __msgs().some((m) => m.body === 'from tab one' && m.mine "
               "&& m.with === 'bob@localhost')")
    await wait(bob, "() => __msgs().some((m) => m.body === 'from tab one' && !m.mine)")
    await bob.evaluate("""(to) => __c.send(__c.chat.stanza(to, 'to tab one only'))""", first)
    await wait(alice2, "() => __msgs().some((m) => m.body === 'to tab one only' && !m.mine "
               "&& m.with === 'bob@localhost')")
    await alice.evaluate("() => __c.correctLast('bob@localhost', 'from tab 1')")
    await wait(alice2, "() => __events('correction').some((d) => d.body === 'from tab 1' "
               "&& d.mine)")
    await wait(bob, "() => __events('correction').some((d) => d.body === 'from tab 1' "
               "&& !d.mine)")

    # nick: PEP (bob is notified) and the vCard
    await alice.evaluate("() => __c.setNickname('Alice «A»')")
    await wait(bob, "() => __c.contacts.get('alice@localhost').nick === 'Alice «A»'")
    assert await alice.evaluate("() => __c.profile.nick") == "Alice «A»"
    vcard = await web.host.storage.vcards.get("alice")
    assert vcard is not None
    assert etree.fromstring(vcard).findtext("{vcard-temp}NICKNAME") == "Alice «A»"

    # avatar: data then metadata; bob gets the same image as a data: URL
    image = png(4, 3)
    url = await alice.evaluate("""async (b64) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        return __c.setAvatar(new Blob([bytes], { type: 'image/png' }));
    }""", base64.b64encode(image).decode())
    assert url == "data:image/png;base64," + base64.b64encode(image).decode()
    await wait(bob, "(u) => __c.contacts.get('alice@localhost').avatarUrl === u", url)
    # a large picture is scaled down to fit a PEP item
    small = await alice.evaluate("""async () => {
        const canvas = new OffscreenCanvas(900, 900);
        const ctx = canvas.getContext('2d');
        const img = ctx.createImageData(900, 900);
        crypto.getRandomValues(img.data.subarray(0, 65536));
        for (let i = 65536; i < img.data.length; i += 65536)
            crypto.getRandomValues(img.data.subarray(i, Math.min(i + 65536, img.data.length)));
        ctx.putImageData(img, 0, 0);
        const blob = await canvas.convertToBlob({ type: 'image/png' });
        const url = await __c.setAvatar(blob);
        return { big: blob.size, small: atob(url.split(',')[1]).length };
    }""")
    assert small["big"] > 1_000_000 and small["small"] <= 90 * 1024
    await wait(bob, "() => __c.contacts.get('alice@localhost').avatarUrl === "
               "__c.profile.people.get('alice@localhost').avatarUrl && "
               "__c.contacts.get('alice@localhost').avatarUrl.length > 1000")

    # a new login finds its own nick and avatar
    await alice.evaluate("() => __c.logout()")
    await login(alice, "alice")
    await alice.evaluate("() => __c.ready")
    own = await alice.evaluate("() => ({nick: __c.profile.nick, avatar: !!__c.profile.avatarUrl})")
    assert own == {"nick": "Alice «A»", "avatar": True}

    # upload: slot, PUT, the GET URL serves the same bytes; sent as an OOB link
    got = await alice.evaluate("""async () => {
        const file = new File(['hello, ', 'upload ✓'], 'note one.txt', { type: 'text/plain' });
        const url = await __c.upload(file);
        const text = await (await fetch(url)).text();
        __c.sendMessage('bob@localhost', url, { oob: url });
        return { url, text };
    }""")
    assert got["text"] == "hello, upload ✓"
    assert got["url"].startswith(app_url(web)) and got["url"].endswith("note%20one.txt")
    await wait(bob, "(u) => __msgs().some((m) => m.oob === u && !m.mine)", got["url"])
    for page in (alice, alice2, bob):
        await no_errors(page)


# -- staying online: reconnection, reload, remember me -------------------------------------------


async def reloaded(page: Any) -> None:
    await page.reload()
    await page.evaluate(SETUP, EVENTS)


async def stored_login(page: Any) -> dict[str, Any]:
    """What the page keeps of the login: ``{"local": ..., "session": ...}`` (parsed)."""
    return await page.evaluate("""() => ({
        local: JSON.parse(localStorage.getItem('xmpp.login')),
        session: JSON.parse(sessionStorage.getItem('xmpp.login')) })""")


async def fast_attempt(web: Server, token: str, client_id: str, count: int,
                       user: str = "alice") -> etree._Element:
    """A FAST login from outside the browser: the server's <success/> or <failure/>."""
    ws = await WsClient.open(web)
    try:
        await ws.open_stream()
        initial = base64.b64encode(user.encode() + b"\0" + ht_hash(token, b"Initiator")).decode()
        await ws.send(f"<authenticate xmlns='{SASL2}' mechanism='HT-SHA-256-NONE'>"
                      f"<initial-response>{initial}</initial-response>{agent(client_id)}"
                      f"<fast xmlns='urn:xmpp:fast:0' count='{count}'/></authenticate>")
        return await ws.next(outcome)
    finally:
        await ws.close()


async def test_resume_reconnect_remember(web: Server, open_app: OpenApp) -> None:
    assert web.host is not None
    password = "correct horse battery"
    await web.host.accounts.create("alice", password)
    page = await client_page(web, open_app)
    jid = await login(page, "alice", password, remember=True)
    bob = await connect(web, "bob", "pw", send_presence=True, get_roster=True)
    try:
        await befriend(page, bob)
        await wait(page, "() => __c.contacts.get('bob@localhost').presence.online")

        # the socket drops: the client reconnects (FAST) and resumes the same session inline
        await page.evaluate("() => __c.conn.ws.close()")
        bob.send_message(mto=ALICE, mbody="during the drop", mtype="chat")
        await wait(page, "() => __events('status').some((d) => d.status === 'connecting')")
        await wait(page, "() => __c.status === 'online'")
        assert await page.evaluate("() => [__c.jid, __c.mechanism]") == [jid, "HT-SHA-256-NONE"]
        await wait(page, "() => __msgs().some((m) => m.body === 'during the drop')")
        await page.evaluate("() => __c.sendMessage('bob@localhost', 'back again')")
        await bob.next("message", lambda m: m["body"] == "back again")

        # a reload: the new page resumes the session (XEP-0198) and loses nothing
        await page.evaluate("() => __c.sendMessage('bob@localhost', 'before reload')")
        await bob.next("message", lambda m: m["body"] == "before reload")
        await reloaded(page)
        bob.send_message(mto=ALICE, mbody="while reloading", mtype="chat")
        resumed = await page.evaluate("""async () => {
            const c = __new();
            const ok = await c.restore();
            return { ok, jid: c.jid, status: c.status, mech: c.mechanism,
                     bob: c.contacts.get('bob@localhost')?.presence.online };
        }""")
        assert resumed == {"ok": True, "jid": jid, "status": "online", "bob": True,
                           "mech": "HT-SHA-256-NONE"}
        await wait(page, "() => __msgs().some((m) => m.body === 'while reloading')")
        bob.send_message(mto=ALICE, mbody="after reload", mtype="chat")
        await wait(page, "() => __msgs().some((m) => m.body === 'after reload')")
        bodies = await page.evaluate("() => __msgs().map((m) => m.body)")
        assert bodies.count("while reloading") == 1
        # no password anywhere in the browser's storage, nor SCRAM keys: a token
        stored = await page.evaluate("""() => JSON.stringify([
            Object.entries(localStorage), Object.entries(sessionStorage)])""")
        assert password not in stored and "xmpp.login" in stored
        assert "clientKey" not in stored and "secret-token:fast-" in stored

        # a session the server no longer has (<failed/>): Bind 2 in the same round trip
        await page.evaluate("""() => {
            __gone();
            const sm = JSON.parse(sessionStorage.getItem('xmpp.sm'));
            sessionStorage.setItem('xmpp.sm', JSON.stringify({ ...sm, id: 'gone' }));
        }""")
        await reloaded(page)
        fresh = await page.evaluate("() => __new().restore().then((ok) => [ok, __c.jid])")
        assert fresh[0] is True and fresh[1] not in (jid, None)
        await wait(page, "() => __c.status === 'online' "
                   "&& __c.contacts.get('bob@localhost')?.presence.online")
        jid = fresh[1]

        # remember me: a new visit (no session storage) logs in again with the token
        await page.evaluate("() => { __gone(); sessionStorage.clear(); }")
        await reloaded(page)
        again = await page.evaluate("""async () => {
            const c = __new();
            const ok = await c.restore();
            return { ok, jid: c.jid, status: c.status, mech: c.mechanism };
        }""")
        assert again["ok"] is True and again["status"] == "online"
        assert again["jid"] != jid and again["jid"].startswith("alice@localhost/web/")
        assert again["mech"] == "HT-SHA-256-NONE"
        await wait(page, "() => __c.contacts.get('bob@localhost')?.presence.online")
        bob.send_message(mto=SJID(again["jid"]), mbody="new session", mtype="chat")
        await wait(page, "() => __msgs().some((m) => m.body === 'new session')")

        # logout forgets everything (but the browser's client id): nothing to restore
        await page.evaluate("() => __c.logout()")
        left = await page.evaluate("() => [Object.keys(localStorage), sessionStorage.length]")
        assert left == [["xmpp.agent"], 0]
        await reloaded(page)
        assert await page.evaluate("() => __new().restore()") is False
    finally:
        await bob.close()
    await no_errors(page)


async def test_fast_token_instead_of_keys(web: Server, open_app: OpenApp,
                                          tmp_path: Path) -> None:
    """XEP-0484: "remember me" keeps a FAST token (never the password, no SCRAM keys); the
    server keeps only its hash; it counts up, rotates, is refused after logout."""
    assert web.host is not None
    password = "tr0ub4dor&3"
    await web.host.accounts.create("alice", password)
    page = await client_page(web, open_app)
    await login(page, "alice", password, remember=True)
    stored = await stored_login(page)
    assert stored["session"] is None
    fast = stored["local"]["fast"]
    token, client_id = fast["token"], fast["clientId"]
    assert token.startswith("secret-token:fast-") and fast["mechanism"] == "HT-SHA-256-NONE"
    assert fast["count"] == 0 and fast["expiry"]
    assert "keys" not in stored["local"]
    assert client_id == await page.evaluate("() => localStorage.getItem('xmpp.agent')")
    everything = await page.evaluate("""() => JSON.stringify([
        Object.entries(localStorage), Object.entries(sessionStorage)])""")
    assert password not in everything and "clientKey" not in everything

    # the server keeps a hash of the token, sealed by its key file; never the token
    tokens = await web.host.storage.fast_tokens.find("alice", client_key(client_id))
    assert web.host.fast_key is not None
    assert [web.host.fast_key.open(t) for t in tokens] == [token_secret(token)]
    assert token_secret(token) not in tokens[0].secret
    for path in (tmp_path / "db").iterdir():
        assert token.encode() not in path.read_bytes(), path

    # a new visit: the same user online through the token, its count stored and accepted
    await page.evaluate("() => { __gone(); sessionStorage.clear(); }")
    await reloaded(page)
    state = await page.evaluate("""async () => {
        const ok = await __new().restore();
        return { ok, jid: __c.jid, mech: __c.mechanism, status: __c.status };
    }""")
    assert state["ok"] is True and state["status"] == "online"
    assert state["mech"] == "HT-SHA-256-NONE" and state["jid"].startswith("alice@localhost/web/")
    assert (await stored_login(page))["local"]["fast"]["count"] == 1
    tokens = await web.host.storage.fast_tokens.find("alice", client_key(client_id))
    assert [t.last_count for t in tokens] == [1]

    # another tab of this browser logs in with the same token and client id, and does not
    # end the first tab's session (only one tab binds with Bind 2)
    tab = await page.context.new_page()
    tab.errors = []
    tab.on("console", lambda msg: msg.type == "error" and tab.errors.append(msg.text))
    await tab.route("**/favicon.ico", lambda route: route.fulfill(status=204, body=""))
    await tab.goto(app_url(web) + "static/js/xmpp/jid.js")
    await tab.evaluate(SETUP, EVENTS)
    other = await tab.evaluate("() => __new().restore().then((ok) => [ok, __c.jid])")
    assert other[0] is True and other[1] != state["jid"]
    assert not (JID.parse(other[1]).resource or "").startswith("web/")  # RFC 6120 bind
    bob = await connect(web, "bob", "pw")
    try:
        for target, where in ((state["jid"], page), (other[1], tab)):
            bob.send_message(mto=SJID(target), mbody=f"to {target}", mtype="chat")
            await wait(where, "(b) => __msgs().some((m) => m.body === b)", f"to {target}")
        assert await page.evaluate("() => __c.status") == "online"
    finally:
        await bob.close()
    await tab.evaluate("() => __gone()")
    await tab.close()
    assert tab.errors == []

    # rotation: a token due for renewal brings its successor, which replaces it; once that
    # is used, the old one is refused
    web.host.config.c2s.fast_token_rotation = 0
    for _ in range(2):
        await page.evaluate("() => { __gone(); sessionStorage.clear(); }")
        await reloaded(page)
        assert await page.evaluate("() => __new().restore()") is True
    fast = (await stored_login(page))["local"]["fast"]
    assert fast["token"] != token and fast["count"] == 4  # one for each login with a token
    refused = await fast_attempt(web, token, client_id, 100)
    assert refused.tag == S + "failure", etree.tostring(refused)
    web.host.config.c2s.fast_token_rotation = 86400
    token = fast["token"]

    # logout revokes the token (<fast invalidate='true'/>): it is refused afterwards
    await page.evaluate("() => __c.logout()")
    assert await stored_login(page) == {"local": None, "session": None}
    refused = await fast_attempt(web, token, client_id, 100)
    assert refused.tag == S + "failure" and condition(refused) == "not-authorized"
    assert await web.host.storage.fast_tokens.find("alice", client_key(client_id)) == []

    # a token the server no longer takes: dropped, and restore() says so (login screen)
    await login(page, "alice", password, remember=False)
    assert (await stored_login(page))["local"] is None  # this tab only
    await web.host.storage.fast_tokens.revoke("alice")
    await page.evaluate("() => __gone()")
    await reloaded(page)
    assert await page.evaluate("() => __new().restore()") is False
    assert await stored_login(page) == {"local": None, "session": None}
    await no_errors(page)


async def test_without_sasl2_scram_keys(browser: Any, tmp_path: Path) -> None:
    """A server without SASL2 (so without FAST): RFC 6120 SASL, bind, XEP-0198; "remember
    me" keeps the SCRAM keys (never the password) and logs in with them."""
    factory = ServerFactory(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'db' / 'xmppd.db'}")
    try:
        server = await factory.start(c2s={"sasl2": False})
        assert server.host is not None
        await server.host.accounts.create("alice", "a distinctive passphrase")
        context = await browser.new_context()
        page = await context.new_page()
        page.errors = []
        page.on("console", lambda msg: msg.type == "error" and page.errors.append(msg.text))
        await page.route("**/favicon.ico", lambda route: route.fulfill(status=204, body=""))
        await page.goto(app_url(server) + "static/js/xmpp/jid.js")
        await page.evaluate(SETUP, EVENTS)
        jid = await login(page, "alice", "a distinctive passphrase", remember=True)
        assert not (JID.parse(jid).resource or "").startswith("web/")  # RFC 6120 bind
        keys = (await stored_login(page))["local"]["keys"]
        assert keys["mechanism"] == "SCRAM-SHA-256" and "passphrase" not in json.dumps(keys)
        await page.evaluate("() => __c.conn.ws.close()")  # resumed after a drop
        await wait(page, "() => __events('status').some((d) => d.status === 'connecting')")
        await wait(page, "() => __c.status === 'online'")
        assert await page.evaluate("() => __c.jid") == jid
        await page.evaluate("() => { __gone(); sessionStorage.clear(); }")
        await reloaded(page)
        again = await page.evaluate(
            "() => __new().restore().then((ok) => [ok, __c.mechanism, __c.status])")
        assert again == [True, "SCRAM-SHA-256", "online"]
        await page.evaluate("() => __c.logout()")
        assert await stored_login(page) == {"local": None, "session": None}
        assert page.errors == []
        await context.close()
    finally:
        await factory.close()


# -- SCRAM against the RFCs' examples --------------------------------------------------------------

SCRAM_RUN = """async ([mech, nonce, serverFirst, serverFinal, keys]) => {
    const { MECHANISMS, toBase64 } = await import('/static/js/xmpp/sasl.js');
    const { parse, serialize } = await import('/static/js/xmpp/xml.js');
    const b64 = (s) => toBase64(new TextEncoder().encode(s));
    const frames = [
        `<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>${b64(serverFirst)}</challenge>`,
        `<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>${b64(serverFinal)}</success>`,
    ];
    const sent = [];
    const conn = {  // a stand-in for the Connection: the server's side is scripted
        send(node) { sent.push(atob(parse(serialize(node)).textContent)); },
        next() { return Promise.resolve(parse(frames.shift())); },
    };
    const creds = keys ? { username: 'user', keys, nonce } : { username: 'user',
                                                               password: 'pencil', nonce };
    try {
        const out = await MECHANISMS.find((m) => m.name === mech).run(conn, creds);
        return { sent, keys: out.keys };
    } catch (e) {
        return { sent, error: e.condition };
    }
}"""

VECTORS = {  # RFC 7677 §3 and RFC 5802 §5
    "SCRAM-SHA-256": (
        "rOprNGfwEbeRWgbNEkqO",
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
    ),
    "SCRAM-SHA-1": (
        "fyko+d2lbbFgONRv9qkxdawL",
        "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
        "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
    ),
}


async def test_scram_vectors(web: Server, open_app: OpenApp) -> None:
    page = await client_page(web, open_app)
    for mech, (nonce, server_first, client_final, server_final) in VECTORS.items():
        run = await page.evaluate(SCRAM_RUN, [mech, nonce, server_first, server_final, None])
        assert run.get("error") is None, run
        assert run["sent"] == [f"n,,n=user,r={nonce}", client_final]
        keys = run["keys"]
        assert keys["mechanism"] == mech and keys["iterations"] == 4096
        assert "pencil" not in json.dumps(keys)
        # the stored keys give the same proof without the password
        again = await page.evaluate(SCRAM_RUN, [mech, nonce, server_first, server_final, keys])
        assert again["sent"] == run["sent"] and again.get("error") is None
        # a server that cannot prove it knows the password is refused
        forged = await page.evaluate(SCRAM_RUN, [mech, nonce, server_first,
                                                 "v=" + base64.b64encode(b"x" * 20).decode(),
                                                 None])
        assert forged["error"] == "server-signature-mismatch"
        # keys made with another salt cannot be used
        other = await page.evaluate(SCRAM_RUN, [mech, nonce, server_first, server_final,
                                                {**keys, "salt": "c2FsdA=="}])
        assert other["error"] == "credentials-expired"
    await no_errors(page)
