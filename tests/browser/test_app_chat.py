"""The web app in a browser: one-to-one chat.

Messages both ways, delivery receipts (XEP-0184), typing notifications (XEP-0085), correcting
the last message (XEP-0308), unread counts, and the history from the archive (XEP-0313) after
a reload, paged with "load more". dave writes from a desktop client (slixmpp) to fill the
archive quickly.
"""

from __future__ import annotations

from playwright.async_api import expect

from tests.browser.steps import (
    accept_request,
    befriend,
    chat,
    contact,
    exact,
    message,
    messages,
    no_errors,
    open_chat,
    send,
    show_contacts,
    snap,
    tid,
    user_page,
)
from tests.support.clients import connect

SEEDED = 45


async def test_chat_both_ways_receipts_typing_correction(web, open_app):
    alice = await user_page(open_app, web, "alice")
    bob = await user_page(open_app, web, "bob")
    await befriend(alice, "alice@localhost", bob, "bob@localhost")

    # alice writes; bob gets it with an unread count, and answers
    await open_chat(alice, "bob@localhost")
    await expect(tid(chat(alice), "chat-title")).to_contain_text("bob")
    await expect(tid(chat(alice), "contact-remove")).to_be_visible()
    hello = await send(alice, "Hello Bob")
    await expect(tid(hello, "message-receipt")).to_have_attribute("data-state", "delivered")
    await expect(tid(contact(bob, "alice@localhost"), "unread")).to_have_text(exact("1"))
    await open_chat(bob, "alice@localhost")
    await expect(tid(contact(bob, "alice@localhost"), "unread")).to_have_count(0)
    theirs = message(bob, "Hello Bob")
    await expect(theirs).to_have_count(1)
    await expect(theirs).not_to_have_class("mine")
    await expect(tid(theirs, "message-receipt")).to_have_count(0)
    await expect(tid(bob, "typing")).to_be_hidden()

    # bob types: alice sees it; he sends: the notice goes away
    await tid(chat(bob), "composer").press_sequentially("Hi Alice", delay=20)
    await expect(tid(alice, "typing")).to_be_visible()
    await tid(chat(bob), "send").click()
    await expect(message(bob, "Hi Alice").and_(bob.locator(".mine"))).to_have_count(1)
    await expect(message(alice, "Hi Alice")).to_have_count(1)
    await expect(tid(alice, "typing")).to_be_hidden()
    reply = message(bob, "Hi Alice")
    await expect(tid(reply, "message-receipt")).to_have_attribute("data-state", "delivered")

    # alice corrects her last message: same message, new text, marked edited on both sides
    hello_id = await hello.get_attribute("data-id")
    count = await messages(alice).count()
    await tid(chat(alice), "edit-last").click()
    await expect(tid(chat(alice), "composer")).to_have_value("Hello Bob")
    await tid(chat(alice), "composer").fill("Hello Bob, how are you?")
    await tid(chat(alice), "send").click()
    for page in (alice, bob):
        edited = message(page, "Hello Bob, how are you?")
        await expect(edited).to_have_count(1)
        await expect(tid(edited, "message-edited")).to_be_visible()
        await expect(message(page, "Hello Bob")).to_have_count(0)
    assert await messages(alice).count() == count
    assert await message(alice, "Hello Bob, how are you?").get_attribute("data-id") == hello_id
    await expect(tid(message(bob, "Hi Alice"), "message-edited")).to_have_count(0)

    # ArrowUp in the empty composer corrects again
    await tid(chat(alice), "composer").focus()
    await tid(chat(alice), "composer").press("ArrowUp")
    await expect(tid(chat(alice), "composer")).to_have_value("Hello Bob, how are you?")
    await tid(chat(alice), "composer").fill("Hello Bob! How are you?")
    await tid(chat(alice), "composer").press("Enter")
    await expect(message(bob, "Hello Bob! How are you?")).to_have_count(1)
    await expect(message(bob, "Hello Bob, how are you?")).to_have_count(0)
    await snap(alice, "chat", quiet=True)
    await no_errors(alice, bob)


async def test_unread_and_history_paging(web, open_app):
    alice = await user_page(open_app, web, "alice")
    bob = await user_page(open_app, web, "bob")
    await befriend(alice, "alice@localhost", bob, "bob@localhost")
    dave = await connect(web, "dave", "pw", get_roster=True, send_presence=True)
    try:
        dave.send_presence(pto="alice@localhost", ptype="subscribe", pstatus="dave")
        await accept_request(alice, "dave@localhost")

        # while alice talks with bob, dave's messages are counted on his entry
        await open_chat(alice, "bob@localhost")
        await send(alice, "ping bob")
        dave.send_message(mto="alice@localhost", mbody="dave one", mtype="chat")
        unread = tid(contact(alice, "dave@localhost"), "unread")
        await expect(unread).to_have_text(exact("1"))
        dave.send_message(mto="alice@localhost", mbody="dave two", mtype="chat")
        await expect(unread).to_have_text(exact("2"))
        await expect(message(alice, "dave one")).to_have_count(0)  # not in bob's chat
        await expect(tid(contact(alice, "bob@localhost"), "unread")).to_have_count(0)
        await open_chat(alice, "dave@localhost")
        await expect(unread).to_have_count(0)
        await expect(message(alice, "dave one")).to_have_count(1)
        await expect(message(alice, "dave two")).to_have_count(1)

        # dave fills the archive; alice, in his chat, sees them arrive
        for n in range(SEEDED):
            dave.send_message(mto="alice@localhost", mbody=f"seed {n:02d}", mtype="chat")
        await expect(message(alice, f"seed {SEEDED - 1:02d}")).to_have_count(1)
        await expect(unread).to_have_count(0)
    finally:
        await dave.close()

    # after a reload the history comes from the archive, newest first, older on demand
    await alice.reload()
    await expect(tid(alice, "screen-main")).to_be_visible()
    await open_chat(alice, "dave@localhost")
    await expect(message(alice, f"seed {SEEDED - 1:02d}")).to_have_count(1)
    load_more = tid(chat(alice), "load-more")
    await expect(load_more).to_be_visible()
    await expect(message(alice, "seed 00")).to_have_count(0)
    await expect(message(alice, "dave one")).to_have_count(0)
    first_page = await messages(alice).count()
    assert 0 < first_page < SEEDED + 2
    for _ in range(SEEDED):
        if await message(alice, "dave one").count():
            break
        shown = await messages(alice).count()
        await load_more.click()
        await expect(messages(alice)).not_to_have_count(shown)
    await expect(load_more).to_be_hidden()
    bodies = [b.strip() for b in await tid(chat(alice), "message-body").all_text_contents()]
    expected = ["dave one", "dave two", *(f"seed {n:02d}" for n in range(SEEDED))]
    assert bodies == expected, " | ".join(bodies)

    # bob's conversation is there too, own messages marked
    await open_chat(alice, "bob@localhost")
    await expect(message(alice, "ping bob").and_(alice.locator(".mine"))).to_have_count(1)
    await show_contacts(alice)
    await expect(tid(contact(alice, "dave@localhost"), "unread")).to_have_count(0)
    await no_errors(alice, bob)
