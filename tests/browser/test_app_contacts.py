"""The web app in a browser: the contact list, presence and subscription requests (RFC 6121).

Two people in two browsers: alice asks bob with a note, bob sees the note and accepts, each
sees the other come online and go offline (and gets what was written meanwhile). Two more
people on a desktop client (slixmpp) ask alice: she declines one and accepts the other. At
last she removes bob.
"""

from __future__ import annotations

from playwright.async_api import expect

from tests.browser.steps import (
    accept_request,
    add_contact,
    contact,
    exact,
    login,
    logout,
    message,
    no_errors,
    open_chat,
    send,
    show_contacts,
    snap,
    tid,
    user_page,
)
from tests.support.clients import connect


async def test_contacts_requests_presence(web, open_app):
    alice = await user_page(open_app, web, "alice")
    bob = await user_page(open_app, web, "bob")

    # alice asks bob with a note; bob sees who asks and why, and accepts
    await add_contact(alice, "bob@localhost", "It's Alice from the book club")
    await accept_request(bob, "alice@localhost", "It's Alice from the book club")
    bob_on_alice = tid(contact(alice, "bob@localhost"), "contact-presence")
    await expect(bob_on_alice).to_have_attribute("data-state", "online")
    await expect(tid(contact(bob, "alice@localhost"), "contact-presence")).to_have_attribute(
        "data-state", "online")
    await expect(tid(contact(alice, "bob@localhost"), "contact-name")).to_contain_text("bob")
    await expect(tid(contact(alice, "bob@localhost"), "unread")).to_have_count(0)

    # two people ask alice from another client: one is declined, one accepted
    carol = await connect(web, "carol", "pw", get_roster=True, send_presence=True)
    dave = await connect(web, "dave", "pw", get_roster=True, send_presence=True)
    try:
        carol.send_presence(pto="alice@localhost", ptype="subscribe", pstatus="carol, spam")
        dave.send_presence(pto="alice@localhost", ptype="subscribe", pstatus="dave, a friend")
        await show_contacts(alice)
        carol_request = tid(alice, "request", jid="carol@localhost")
        await expect(tid(carol_request, "request-note")).to_have_text(exact("carol, spam"))
        await expect(tid(tid(alice, "request", jid="dave@localhost"), "request-note")
                     ).to_have_text(exact("dave, a friend"))
        await snap(alice, "contacts-requests")
        await tid(carol_request, "request-decline").click()
        await expect(carol_request).to_have_count(0)
        await carol.next("presence", lambda p: p["type"] == "unsubscribed")
        await expect(contact(alice, "carol@localhost")).to_have_count(0)

        await accept_request(alice, "dave@localhost", "dave, a friend")
        await dave.next("presence", lambda p: p["type"] == "subscribed")
        await expect(tid(contact(alice, "dave@localhost"), "contact-presence")
                     ).to_have_attribute("data-state", "online")

        # dave goes away, then offline
        dave.send_presence(pshow="away", pstatus="lunch")
        await expect(tid(contact(alice, "dave@localhost"), "contact-presence")
                     ).to_have_attribute("data-state", "away")
    finally:
        await carol.close()
        await dave.close()
    await expect(tid(contact(alice, "dave@localhost"), "contact-presence")).to_have_attribute(
        "data-state", "offline")
    await expect(tid(alice, "request")).to_have_count(0)
    await snap(alice, "contacts")

    # bob logs out: offline for alice, who writes to him; he logs in again: online, and he
    # has the message (kept offline), which only now counts as delivered
    await logout(bob)
    await expect(bob_on_alice).to_have_attribute("data-state", "offline")
    await open_chat(alice, "bob@localhost")
    waiting = await send(alice, "Call me when you are back")
    await expect(tid(waiting, "message-receipt")).to_have_attribute("data-state", "sent")
    await login(bob, "bob")
    await expect(bob_on_alice).to_have_attribute("data-state", "online")
    await expect(tid(contact(bob, "alice@localhost"), "unread")).to_have_text(exact("1"))
    await open_chat(bob, "alice@localhost")
    await expect(message(bob, "Call me when you are back")).to_have_count(1)
    await expect(tid(waiting, "message-receipt")).to_have_attribute("data-state", "delivered")

    # alice removes bob
    await tid(alice, "contact-remove").click()
    await expect(contact(alice, "bob@localhost")).to_have_count(0)
    await alice.reload()
    await expect(tid(alice, "screen-main")).to_be_visible()
    await expect(contact(alice, "dave@localhost")).to_be_visible()
    await expect(contact(alice, "bob@localhost")).to_have_count(0)
    await no_errors(alice, bob)
