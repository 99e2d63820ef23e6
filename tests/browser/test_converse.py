"""Converse.js 14 in Chromium against our server, over WebSocket and over BOSH.

Converse runs as a site would run it, from its own origin (``converse_page.py``), which our
server lists in ``http.origins``. alice uses Converse; bob is a desktop client (slixmpp).
Each transport goes through what a person does: log in, add a contact (subscriptions both
ways), chat both ways, join a room and talk in it, and get what was sent while logged out.
Converse is scripted through its public API (``_converse.api``) where a person would click
through menus, and through its composer where a person types; what bob says must appear in
Converse's views.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from lxml import etree
from playwright.async_api import TimeoutError as PlaywrightTimeout
from playwright.async_api import expect

from tests.browser.conftest import screenshot
from tests.browser.converse_page import ConverseSite
from tests.clients.scenarios import eventually, stored
from tests.support.clients import Client, connect
from tests.support.server import ServerFactory
from xmpp_server.jid import JID
from xmpp_server.server import Server

TIMEOUT = 15.0
ALICE, BOB = "alice@localhost", "bob@localhost"
ROOM = "lobby@conference.localhost"
DELAY = "{urn:xmpp:delay}delay"
# Markup, non-ASCII and an emoji, shown as sent. (Not scenarios.TEXT: Converse 14 turns its
# "<3" into an emoji and shifts the text after it by one character; its model has it right.)
TEXT = "<i>not markup</i> & «adieu» 你好 🌹"
expect.set_options(timeout=TIMEOUT * 1000)


@pytest.fixture
async def site() -> AsyncIterator[ConverseSite]:
    converse = ConverseSite()
    await converse.start()
    try:
        yield converse
    finally:
        await converse.close()


@pytest.fixture
async def xmppd(tmp_path: Path, site: ConverseSite) -> AsyncIterator[Server]:
    """The embedded defaults, with Converse's site among the allowed browser origins."""
    factory = ServerFactory(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'db' / 'xmppd.db'}")
    try:
        server = await factory.start(http={"origins": [site.origin]})
        assert server.host is not None
        await server.host.accounts.create("alice", "alice-pw")
        yield server
    finally:
        await factory.close()


def settings(server: Server, transport: str) -> dict[str, Any]:
    port = server.http.port  # type: ignore[union-attr]
    endpoint = ({"websocket_url": f"ws://localhost:{port}/xmpp-websocket"}
                if transport == "websocket"
                else {"bosh_service_url": f"http://localhost:{port}/http-bind"})
    return {
        **endpoint,
        "jid": ALICE, "password": "alice-pw", "auto_login": True,
        "discover_connection_methods": False, "view_mode": "fullscreen",
        "muc_domain": "conference.localhost", "i18n": "en", "play_sounds": False,
        "loglevel": "warn",
    }


async def call(page: Any, script: str, arg: Any = None) -> Any:
    """Run ``script`` (a function of ``arg``, may return a promise) in the page, in time."""
    async with asyncio.timeout(TIMEOUT):
        return await page.evaluate(script, arg)


async def log_in(browser: Any, site: ConverseSite, server: Server, transport: str) -> Any:
    """A fresh browser on Converse; returns once alice is logged in and has her roster."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    # The test stays off the Internet: Converse's login screen shows its sponsors' logos.
    await context.route(lambda url: not url.startswith(("http://localhost", "ws://localhost")),
                        lambda route: route.fulfill(status=204))
    page = await context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: msg.type == "error"
            and page.errors.append(f"console: {msg.text}"))
    await page.goto(site.url(**settings(server, transport)))
    try:
        await page.wait_for_function("() => window.conv?.api?.connection?.connected()",
                                     timeout=TIMEOUT * 1000)
        await call(page, "() => conv.api.waitUntil('rosterContactsFetched').then(() => null)")
    except (PlaywrightTimeout, TimeoutError) as exc:
        received = await call(page, "() => window.received")
        raise AssertionError(f"Converse did not log in; errors {page.errors}; "
                             f"received last {received[-5:]}") from exc
    return page


def no_errors(page: Any) -> None:
    """No script error, failed resource or CSP violation in the page's console."""
    assert page.errors == [], json.dumps(page.errors, indent=1)


async def converse_sends(scope: Any, text: str) -> None:
    """Type into the composer of ``scope`` (a chat or room view) and press Enter."""
    composer = scope.locator(".chat-textarea")
    await composer.fill(text)
    await composer.press("Enter")
    await expect(scope.locator(".chat-msg__text", has_text=text)).to_have_count(1)


def offline_deliveries(received: list[str], sender: str, body: str) -> list[etree._Element]:
    """Top-level messages from ``sender`` with ``body`` and a delay stamp: offline delivery,
    not an archive query's result (that is wrapped in <result><forwarded/>)."""
    found = []
    for xml in received:
        top = etree.fromstring(xml)
        stanzas = list(top) if top.tag.endswith("}body") else [top]  # BOSH wraps them
        for el in stanzas:
            if (etree.QName(el).localname == "message"
                    and el.get("from", "").split("/")[0] == sender
                    and el.findtext("{jabber:client}body") == body
                    and el.find(DELAY) is not None):
                found.append(el)
    return found


async def add_contact(page: Any, bob: Client) -> None:
    """alice adds bob; bob accepts and asks back; Converse accepts him (he is in its roster)."""
    await call(page, "jid => conv.api.contacts.add({jid, name: 'Bob'}).then(() => null)", BOB)
    await bob.next("presence", lambda p: p["type"] == "subscribe" and p["from"].bare == ALICE)
    bob.send_presence(pto=ALICE, ptype="subscribed")
    bob.send_presence(pto=ALICE, ptype="subscribe")
    await page.wait_for_function(
        "jid => conv.state.roster.get(jid)?.get('subscription') === 'both'", arg=BOB,
        timeout=TIMEOUT * 1000)
    await bob.next("presence", lambda p: p["type"] == "subscribed" and p["from"].bare == ALICE)
    await bob.next("roster_push", lambda iq: iq["roster"]["items"].get(ALICE, {}).get(
        "subscription") == "both")
    # bob is online, and Converse shows him so
    await page.wait_for_function(
        "jid => conv.state.roster.get(jid)?.presence?.get('presence') === 'online'", arg=BOB,
        timeout=TIMEOUT * 1000)
    await expect(page.locator("converse-roster").get_by_text("Bob")).to_be_visible()


async def chat_both_ways(page: Any, bob: Client) -> None:
    await call(page, "jid => conv.api.chats.open(jid, {}, true).then(() => null)", BOB)
    chat = page.locator(f'converse-chat[jid="{BOB}"]')
    bob.send_message(mto=ALICE, mbody="Hello from a desktop client " + TEXT, mtype="chat")
    await expect(chat.locator(".chat-msg__text", has_text="Hello from a desktop client ")
                 ).to_be_visible()
    await converse_sends(chat, "Hello from Converse " + TEXT)
    msg = await bob.next("message", lambda m: m["body"] == "Hello from Converse " + TEXT)
    assert msg["from"].bare == ALICE and msg["type"] == "chat"


async def room_both_ways(page: Any, server: Server, bob: Client) -> None:
    """alice opens a new room, bob joins once Converse has configured it, they talk."""
    await call(page, "jid => conv.api.rooms.open(jid, {nick: 'alice'}, true).then(() => null)",
               ROOM)
    room = page.locator(f'converse-muc[jid="{ROOM}"]')
    await expect(room.locator(".chat-textarea")).to_be_visible()
    assert server.host is not None
    service = server.host.modules["muc"].service  # type: ignore[attr-defined]

    async def configured() -> bool:  # an instant room (XEP-0045 §10.1.2): open to others
        state = await service.room(JID.parse(ROOM))
        return state is not None and not state.locked
    await eventually(configured)

    join = bob.make_presence(pto=f"{ROOM}/bob")
    join.append(ET.Element("{http://jabber.org/protocol/muc}x"))
    join.send()
    await bob.next("presence", lambda p: p["from"] == f"{ROOM}/bob"
                   and "110" in str(p))  # his own presence: he is in
    await expect(room.locator("converse-muc-occupants").get_by_text("bob")).to_be_visible()
    await converse_sends(room, "Hello room from Converse " + TEXT)
    msg = await bob.next("message", lambda m: m["body"] == "Hello room from Converse " + TEXT)
    assert msg["type"] == "groupchat" and str(msg["from"]) == f"{ROOM}/alice"
    bob.send_message(mto=ROOM, mbody="Hello room from a desktop client " + TEXT,
                     mtype="groupchat")
    await expect(room.locator(".chat-msg__text",
                              has_text="Hello room from a desktop client " + TEXT)
                 ).to_be_visible()


async def offline_delivery(page: Any, server: Server, bob: Client, relog: Any) -> Any:
    """alice logs out; bob writes; alice logs in again and reads it: a new page."""
    await call(page, "() => conv.api.user.logout().then(() => null)")
    await bob.next("presence", lambda p: p["from"].bare == ALICE and p["type"] == "unavailable")
    no_errors(page)
    await page.context.close()
    text = "Written while you were away " + TEXT
    bob.send_message(mto=ALICE, mbody=text, mtype="chat")
    await stored(server, "alice", 1)
    page = await relog()
    await call(page, "jid => conv.api.chats.open(jid, {}, true).then(() => null)", BOB)
    chat = page.locator(f'converse-chat[jid="{BOB}"]')
    await expect(chat.locator(".chat-msg__text", has_text=text)).to_be_visible()
    received = await call(page, "() => window.received")
    assert offline_deliveries(received, BOB, text), "not delivered from offline storage"
    return page


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["websocket", "bosh"])
async def test_converse(transport: str, xmppd: Server, site: ConverseSite, browser: Any) -> None:
    page = await log_in(browser, site, xmppd, transport)
    bob = await connect(xmppd, "bob", "bob-pw", get_roster=True, send_presence=True)
    bob.auto_authorize = None  # bob answers requests himself
    bob.auto_subscribe = False
    try:
        await add_contact(page, bob)
        await chat_both_ways(page, bob)
        await room_both_ways(page, xmppd, bob)
        await screenshot(page, f"converse-{transport}-room")
        page = await offline_delivery(page, xmppd, bob,
                                      lambda: log_in(browser, site, xmppd, transport))
        await screenshot(page, f"converse-{transport}-offline")
        no_errors(page)
    finally:
        await bob.close()
        await page.context.close()
