"""The web app in a browser: profile, emoji, files, and a phone-sized screen.

alice (desktop) sets her nickname (XEP-0172) and avatar (XEP-0084); her friend bob, on a
390x844 phone screen, sees both. She sends an emoji from the picker, an image and a text
file (XEP-0363 uploads): the image shows inline on both sides with exactly the uploaded
bytes, the other file as a link. On the phone the chat takes the whole screen and the back
button returns to the list.
"""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.browser.steps import (
    TIMEOUT,
    befriend,
    chat,
    contact,
    exact,
    fetch_bytes,
    message,
    messages,
    no_errors,
    open_chat,
    png,
    snap,
    tid,
    user_page,
)

PHONE = (390, 844)


async def image_loaded(page, locator):
    await expect(locator).to_be_visible()
    await page.wait_for_function("e => e.complete && e.naturalWidth > 0",
                                 arg=await locator.element_handle(), timeout=TIMEOUT)


async def test_profile_emoji_files_on_phone(web, open_app):
    alice = await user_page(open_app, web, "alice")
    bob = await user_page(open_app, web, "bob", viewport=PHONE)
    await befriend(alice, "alice@localhost", bob, "bob@localhost")

    # alice's profile: nickname and avatar
    await tid(alice, "profile-open").click()
    await tid(alice, "profile-nick").fill("Alice Liddell")
    await tid(alice, "avatar-input").set_input_files(files=[{
        "name": "me.png", "mimeType": "image/png", "buffer": png(64, 64, (20, 120, 220))}])
    await tid(alice, "profile-save").click()
    await image_loaded(alice, tid(alice, "profile-avatar"))
    await snap(alice, "profile", quiet=True)
    await tid(alice, "profile-close").click()
    await expect(tid(alice, "profile-nick")).to_be_hidden()
    await expect(tid(alice, "me")).to_have_text(exact("Alice Liddell"))

    # bob, on his phone, sees her new name and face
    await expect(tid(contact(bob, "alice@localhost"), "contact-name")).to_have_text(
        exact("Alice Liddell"))
    await image_loaded(bob, tid(contact(bob, "alice@localhost"), "contact-avatar"))
    await expect(tid(contact(alice, "bob@localhost"), "contact-avatar")).to_have_count(0)

    # phone: the chat takes the screen; back returns to the list
    await expect(tid(alice, "back")).to_be_hidden()
    await contact(bob, "alice@localhost").click()
    await expect(tid(bob, "chat", jid="alice@localhost")).to_be_visible()
    await expect(tid(bob, "contacts")).to_be_hidden()
    await expect(tid(bob, "back")).to_be_visible()
    await expect(tid(chat(bob), "chat-title")).to_contain_text("Alice Liddell")
    await tid(bob, "back").click()
    await expect(tid(bob, "contacts")).to_be_visible()
    await expect(chat(bob)).to_have_count(0)
    await contact(bob, "alice@localhost").click()
    await expect(tid(bob, "chat", jid="alice@localhost")).to_be_visible()

    # an emoji from the picker
    await open_chat(alice, "bob@localhost")
    composer = tid(chat(alice), "composer")
    await composer.fill("Great news ")
    await tid(chat(alice), "emoji-toggle").click()
    picker = tid(alice, "emoji-picker")
    await expect(picker).to_be_visible()
    emoji = tid(picker, "emoji").nth(3)
    symbol = (await emoji.text_content() or "").strip()
    assert symbol and not re.search(r"[A-Za-z0-9]", symbol), symbol
    await emoji.click()
    await expect(composer).to_have_value(f"Great news {symbol}")
    await tid(chat(alice), "send").click()
    await expect(message(alice, f"Great news {symbol}")).to_have_count(1)
    await expect(message(bob, f"Great news {symbol}")).to_have_count(1)
    await tid(chat(bob), "composer").fill("Wow, on my phone")
    await tid(chat(bob), "send").click()
    await expect(message(alice, "Wow, on my phone")).to_have_count(1)

    # an image shows inline on both sides, with the bytes that were sent
    photo = png(40, 30)
    await tid(chat(alice), "attach-input").set_input_files(files=[{
        "name": "photo.png", "mimeType": "image/png", "buffer": photo}])
    for page in (alice, bob):
        image = tid(chat(page), "message-image")
        await expect(image).to_have_count(1)
        await image_loaded(page, image)
        src = await image.get_attribute("src")
        assert src and re.match(r"^(https?|blob):", src), src
        assert await fetch_bytes(page, await image.evaluate("e => e.src")) == photo
        assert await image.evaluate("e => [e.naturalWidth, e.naturalHeight]") == [40, 30]
    await snap(bob, "phone-chat")

    # another file is a link to it
    notes = b"Chapter 1: Down the Rabbit-Hole\n"
    await tid(chat(alice), "attach-input").set_input_files(files=[{
        "name": "notes.txt", "mimeType": "text/plain", "buffer": notes}])
    for page in (alice, bob):
        link = tid(chat(page), "message-file")
        await expect(link).to_have_count(1)
        await expect(link).to_be_visible()
        assert await link.evaluate("e => e.tagName") == "A"
        href = await link.evaluate("e => e.href")
        assert re.match(r"^https?://", href) and href.endswith("notes.txt"), href
        assert await fetch_bytes(page, href) == notes
        await expect(tid(chat(page), "message-image")).to_have_count(1)
    assert await messages(bob).count() == await messages(alice).count()
    await no_errors(alice, bob)
