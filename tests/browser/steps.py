"""Steps the end-to-end tests share: they drive the app only through its DOM contract.

Every element is found by its ``data-testid`` (the list in the web app's contract); a few
carry a second attribute (``data-jid``, ``data-room``, ``data-nick``, ``data-state``) that
``tid(scope, "contact", jid="bob@localhost")`` matches too. Waiting is Playwright's: each
``expect`` polls up to ``TIMEOUT`` ms, nothing sleeps.
"""

from __future__ import annotations

import re
import struct
import zlib
from typing import Any

from playwright.async_api import expect

from tests.browser.conftest import OpenApp, screenshot
from xmpp_server.server import Server

TIMEOUT = 10_000
CJK = re.compile(r"[\u4e00-\u9fff]")
expect.set_options(timeout=TIMEOUT)


def tid(scope: Any, testid: str, **attrs: str) -> Any:
    """The elements with ``data-testid=testid`` (and ``data-<key>=value`` for each attribute)."""
    selector = f'[data-testid="{testid}"]'
    for key, value in attrs.items():
        selector += f'[data-{key.replace("_", "-")}="{value}"]'
    return scope.locator(selector)


def exact(text: str) -> re.Pattern[str]:
    """A pattern matching exactly ``text`` (Playwright normalises white space around it)."""
    return re.compile(rf"^\s*{re.escape(text)}\s*$")


async def open_page(open_app: OpenApp, **kwargs: Any) -> Any:
    """A new person's browser on the app; confirmation dialogs (if any) are accepted."""
    page = await open_app(**kwargs)
    page.on("dialog", lambda dialog: dialog.accept())
    return page


async def create_account(web: Server, user: str, password: str = "pw") -> None:
    assert web.host is not None
    if not await web.host.accounts.exists(user):
        await web.host.accounts.create(user, password)


async def login(page: Any, user: str, password: str = "pw", remember: bool = True) -> None:
    """Log in through the login screen and wait for the main screen."""
    await expect(tid(page, "screen-login")).to_be_visible()
    await tid(page, "login-username").fill(user)
    await tid(page, "login-password").fill(password)
    remember_box = tid(page, "login-remember")
    if await remember_box.is_checked() != remember:
        await remember_box.click()
    await tid(page, "login-submit").click()
    await expect(tid(page, "screen-main")).to_be_visible()
    await expect(tid(page, "screen-login")).to_be_hidden()


async def logout(page: Any) -> None:
    await tid(page, "logout").click()
    await expect(tid(page, "screen-login")).to_be_visible()
    await expect(tid(page, "screen-main")).to_be_hidden()


async def user_page(open_app: OpenApp, web: Server, user: str, **kwargs: Any) -> Any:
    """A browser where ``user`` (an account made here unless it exists) is logged in."""
    await create_account(web, user)
    page = await open_page(open_app, **kwargs)
    await login(page, user)
    return page


async def snap(page: Any, name: str, quiet: bool = False) -> None:
    """A screenshot for the README: entrance animations finished (and toasts gone: ``quiet``)."""
    if quiet:
        await expect(tid(page, "toast")).to_be_hidden()
    await page.evaluate("""() => document.getAnimations().forEach(a => {
        try { a.finish(); } catch (e) { /* an endless one */ } })""")
    await screenshot(page, name)


def contact(page: Any, jid: str) -> Any:
    return tid(tid(page, "contacts"), "contact", jid=jid)


async def show_contacts(page: Any) -> None:
    """The contacts tab, on a phone after going back from a chat."""
    back = tid(page, "back")
    if await back.is_visible():
        await back.click()
    await tid(page, "tab-contacts").click()
    await expect(tid(page, "add-contact-open")).to_be_visible()  # (an empty list has no size)


async def show_groups(page: Any) -> None:
    back = tid(page, "back")
    if await back.is_visible():
        await back.click()
    await tid(page, "tab-groups").click()
    await expect(tid(page, "create-group-open")).to_be_visible()


async def add_contact(page: Any, jid: str, note: str) -> None:
    await show_contacts(page)
    await tid(page, "add-contact-open").click()
    await tid(page, "add-contact-jid").fill(jid)
    await tid(page, "add-contact-note").fill(note)
    await tid(page, "add-contact-submit").click()
    await expect(contact(page, jid)).to_be_visible()


async def accept_request(page: Any, jid: str, note: str | None = None) -> None:
    await show_contacts(page)
    request = tid(page, "request", jid=jid)
    await expect(request).to_be_visible()
    if note is not None:
        await expect(tid(request, "request-note")).to_have_text(exact(note))
    await tid(request, "request-accept").click()
    await expect(request).to_have_count(0)
    await expect(contact(page, jid)).to_be_visible()


async def befriend(a: Any, a_jid: str, b: Any, b_jid: str, note: str = "hello") -> None:
    """``a`` asks ``b`` (with a note), ``b`` accepts; each then sees the other online."""
    await add_contact(a, b_jid, note)
    await accept_request(b, a_jid, note)
    await expect(tid(contact(a, b_jid), "contact-presence")).to_have_attribute(
        "data-state", "online")
    await expect(tid(contact(b, a_jid), "contact-presence")).to_have_attribute(
        "data-state", "online")


def chat(page: Any) -> Any:
    """The open conversation (1:1 or group)."""
    return page.locator('[data-testid="chat"]:visible')


async def open_chat(page: Any, jid: str) -> Any:
    await show_contacts(page)
    await contact(page, jid).click()
    pane = tid(page, "chat", jid=jid)
    await expect(pane).to_be_visible()
    return pane


async def open_group(page: Any, room: str) -> Any:
    await show_groups(page)
    await tid(tid(page, "groups"), "group", jid=room).click()
    pane = tid(page, "chat", jid=room)
    await expect(pane).to_be_visible()
    return pane


def messages(page: Any) -> Any:
    return tid(chat(page), "message")


def message(page: Any, body: str) -> Any:
    """The message(s) of the open chat whose body is exactly ``body``."""
    return messages(page).filter(has=tid(page, "message-body").filter(has_text=exact(body)))


async def send(page: Any, text: str) -> Any:
    """Type ``text`` in the composer and send it; returns the own message that shows it."""
    await tid(chat(page), "composer").fill(text)
    await tid(chat(page), "send").click()
    mine = message(page, text).and_(page.locator(".mine"))
    await expect(mine).to_have_count(1)
    await expect(tid(chat(page), "composer")).to_have_value("")
    return mine


async def field_kind(locator: Any) -> str:
    return str(await locator.evaluate("e => e.tagName")).lower()


async def choose(locator: Any, value: str) -> None:
    """Fill a text input, or pick an option of a <select> by value or by label."""
    if await field_kind(locator) == "select":
        options = await locator.evaluate(
            "e => [...e.options].map(o => [o.value, o.textContent])")
        for option_value, label in options:
            if value in (option_value, label) or value in label:
                await locator.select_option(value=option_value)
                return
        raise AssertionError(f"no option {value!r} in {options!r}")
    await locator.fill(value)


async def fetch_bytes(page: Any, url: str) -> bytes:
    """What the page gets for ``url`` (http(s) or blob:), as the page's own fetch sees it."""
    data = await page.evaluate(
        "async u => Array.from(new Uint8Array(await (await fetch(u)).arrayBuffer()))", url)
    return bytes(data)


async def no_errors(*pages: Any) -> None:
    for page in pages:
        assert page.errors == [], page.errors


def png(width: int = 16, height: int = 16, rgb: tuple[int, int, int] = (200, 30, 60)) -> bytes:
    """A small valid PNG of one colour (with a gradient so that bytes differ per size)."""
    raw = b"".join(
        b"\0" + b"".join(bytes(((rgb[0] + x * 7) % 256, rgb[1], (rgb[2] + y * 5) % 256))
                         for x in range(width))
        for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))

