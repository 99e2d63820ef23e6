"""The web app in a browser: own presence, notifications and unread counts (RFC 6121 §4).

alice sets her status (show + message, RFC 6121 §4.7.2) in the sidebar; bob sees it in his
contact list, as text. The status comes back after alice reloads, in a resumed session and in
a new one. bob's browser allows notifications: a message for a chat he has not open shows
one (recorded by a wrapper around ``window.Notification``), and a click on it opens the chat.
Unread counts show in the document title and survive a reload; logging out forgets them.
"""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from tests.browser.conftest import OpenApp
from tests.browser.steps import (
    befriend,
    chat,
    contact,
    create_account,
    exact,
    login,
    logout,
    no_errors,
    open_chat,
    open_page,
    send,
    snap,
    tid,
    user_page,
)
from tests.support.clients import connect
from xmpp_server.server import Server

ALICE, BOB, CAROL = "alice@localhost", "bob@localhost", "carol@localhost"
XSS = "<img src=x onerror=window.__xss=1>"

# Records every Notification the app creates (the real one is not shown by headless Chromium).
RECORD_NOTIFICATIONS = """(() => {
  const Real = window.Notification;
  window.__notes = [];
  class Recorded {
    constructor(title, options = {}) {
      this.title = title;
      this.body = options.body;
      this.tag = options.tag;
      this.onclick = null;
      window.__notes.push(this);
    }
    close() { this.closed = true; }
    static get permission() { return Real.permission; }
    static requestPermission(...args) { return Real.requestPermission(...args); }
  }
  window.Notification = Recorded;
})();"""


async def notifying_page(open_app: OpenApp, web: Server, user: str) -> Any:
    """``user`` logged in, in a browser that granted notifications (and records them)."""
    await create_account(web, user)
    page = await open_page(open_app, permissions=["notifications"])
    await page.add_init_script(RECORD_NOTIFICATIONS)
    await page.reload()
    await login(page, user)
    return page


async def notes(page: Any) -> list[dict[str, str]]:
    return list(await page.evaluate(
        "() => window.__notes.map(n => ({title: n.title, body: n.body}))"))


async def set_status(page: Any, show: str, text: str | None = None) -> None:
    if text is not None:
        await tid(page, "status-text").fill(text)
    await tid(page, "status-select").select_option(show)
    await tid(page, "status-save").click()


def presence(page: Any, jid: str) -> Any:
    return tid(contact(page, jid), "contact-presence")


async def test_status_shown_to_friends_and_kept_across_reloads(web, open_app):
    alice = await user_page(open_app, web, "alice")
    bob = await user_page(open_app, web, "bob")
    await befriend(alice, ALICE, bob, BOB)
    await expect(tid(contact(bob, ALICE), "contact-status")).to_have_count(0)

    # away with a message
    await expect(tid(alice, "status-select")).to_have_value("available")
    await set_status(alice, "away", "at lunch")
    await expect(presence(bob, ALICE)).to_have_attribute("data-state", "away")
    await expect(tid(contact(bob, ALICE), "contact-status")).to_have_text(exact("at lunch"))
    await open_chat(bob, ALICE)  # the chat header says it too
    await expect(chat(bob).locator(".presence-text")).to_contain_text("at lunch")

    # do not disturb (a change of the select alone is sent too)
    await tid(alice, "status-select").select_option("dnd")
    await expect(presence(bob, ALICE)).to_have_attribute("data-state", "dnd")
    await expect(tid(contact(bob, ALICE), "contact-status")).to_have_text(exact("at lunch"))
    await snap(bob, "status-dnd-contact")

    # alice reloads (the stream is resumed): she comes back with her status
    await alice.reload()
    await expect(tid(alice, "screen-main")).to_be_visible()
    await expect(tid(alice, "status-select")).to_have_value("dnd")
    await expect(tid(alice, "status-text")).to_have_value("at lunch")
    await expect(presence(bob, ALICE)).to_have_attribute("data-state", "dnd")

    # a new session (no stream to resume): sent again after it starts
    await set_status(alice, "away", "back at 2")
    await expect(tid(contact(bob, ALICE), "contact-status")).to_have_text(exact("back at 2"))
    await alice.evaluate("() => sessionStorage.clear()")
    await alice.reload()
    await expect(tid(alice, "screen-main")).to_be_visible()
    await expect(tid(alice, "status-select")).to_have_value("away")
    await expect(tid(alice, "status-text")).to_have_value("back at 2")
    await expect(presence(bob, ALICE)).to_have_attribute("data-state", "away")
    await expect(tid(contact(bob, ALICE), "contact-status")).to_have_text(exact("back at 2"))

    # a status message is text, never markup
    await set_status(alice, "available", XSS)
    await expect(presence(bob, ALICE)).to_have_attribute("data-state", "online")
    await expect(tid(contact(bob, ALICE), "contact-status")).to_have_text(exact(XSS))
    await expect(contact(bob, ALICE).locator("img[src='x']")).to_have_count(0)
    assert await bob.evaluate("() => window.__xss") is None

    # clearing the message removes the line
    await set_status(alice, "available", "")
    await expect(tid(contact(bob, ALICE), "contact-status")).to_have_count(0)

    # logging out forgets the status: the next login starts available
    await set_status(alice, "away", "gone")
    await expect(presence(bob, ALICE)).to_have_attribute("data-state", "away")
    await logout(alice)
    await expect(presence(bob, ALICE)).to_have_attribute("data-state", "offline")
    assert await alice.evaluate(
        "() => Object.keys(localStorage).filter(k => k.startsWith('xmppd.presence.'))") == []
    await login(alice, "alice")
    await expect(tid(alice, "status-select")).to_have_value("available")
    await expect(presence(bob, ALICE)).to_have_attribute("data-state", "online")
    await no_errors(alice, bob)


async def test_notifications_title_and_unread_across_reload(web, open_app):
    alice = await user_page(open_app, web, "alice")
    bob = await notifying_page(open_app, web, "bob")
    await befriend(alice, ALICE, bob, BOB)
    # granted already: nothing to ask; alice's browser was not asked yet (or cannot show any)
    await expect(tid(bob, "notifications-enable")).to_be_hidden()
    asked = await alice.evaluate("() => Notification.permission") == "default"
    await expect(tid(alice, "notifications-enable")).to_have_count(1)
    assert await tid(alice, "notifications-enable").is_visible() == asked
    await expect(bob).to_have_title("xmppd Chat")

    # two messages for a chat bob has not open: notifications, counts, title
    await open_chat(alice, BOB)
    await send(alice, "one")
    await send(alice, "two <b>bold</b>")
    await expect(tid(contact(bob, ALICE), "unread")).to_have_text(exact("2"))
    await expect(bob).to_have_title("(2) xmppd Chat")
    assert await notes(bob) == [{"title": "alice", "body": "one"},
                                {"title": "alice", "body": "two <b>bold</b>"}]

    # the counts survive a reload
    await bob.reload()
    await expect(tid(bob, "screen-main")).to_be_visible()
    await expect(tid(contact(bob, ALICE), "unread")).to_have_text(exact("2"))
    await expect(bob).to_have_title("(2) xmppd Chat")

    # logging out forgets them
    await logout(bob)
    await expect(bob).to_have_title("xmppd Chat")
    assert await bob.evaluate(
        "() => Object.keys(localStorage).filter(k => k.startsWith('xmppd.unread.'))") == []
    await login(bob, "bob")
    await expect(contact(bob, ALICE)).to_be_visible()
    await expect(tid(contact(bob, ALICE), "unread")).to_have_count(0)
    await expect(bob).to_have_title("xmppd Chat")

    # a click on the notification opens the chat
    await send(alice, "three")
    await expect(bob).to_have_title("(1) xmppd Chat")
    assert (await notes(bob))[-1] == {"title": "alice", "body": "three"}
    await bob.evaluate("() => window.__notes.at(-1).onclick()")
    await expect(tid(bob, "chat", jid=ALICE)).to_be_visible()
    await expect(tid(contact(bob, ALICE), "unread")).to_have_count(0)
    await expect(bob).to_have_title("xmppd Chat")

    # with the chat open and the tab visible: no notification, no count
    count = len(await notes(bob))
    await send(alice, "four")
    await expect(tid(chat(bob), "message").filter(has_text="four")).to_have_count(1)
    assert len(await notes(bob)) == count

    # do not disturb: no notification (carol writes from a desktop client: a chat not open)
    await set_status(bob, "dnd")
    await expect(presence(alice, BOB)).to_have_attribute("data-state", "dnd")
    carol = await connect(web, "carol", "pw")
    try:
        carol.send_message(mto=BOB, mbody="quiet please", mtype="chat")
        await expect(tid(contact(bob, CAROL), "unread")).to_have_text(exact("1"))
        await expect(bob).to_have_title("(1) xmppd Chat")
        assert len(await notes(bob)) == count
        # available again: notified
        await set_status(bob, "available")
        carol.send_message(mto=BOB, mbody="hello again", mtype="chat")
        await expect(tid(contact(bob, CAROL), "unread")).to_have_text(exact("2"))
        assert (await notes(bob))[-1] == {"title": "carol", "body": "hello again"}
    finally:
        await carol.close()
    await no_errors(alice, bob)
