"""The web app in a browser: user text is never HTML, and the page forbids inline code.

A message, a nickname, a request note, a room name and description that look like HTML show
as the literal text: no element is created from them and no handler runs.
"""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.browser.conftest import app_url
from tests.browser.steps import (
    add_contact,
    chat,
    choose,
    contact,
    exact,
    message,
    no_errors,
    open_chat,
    open_group,
    open_page,
    send,
    show_groups,
    tid,
    user_page,
)

XSS = "<img src=x onerror=window.__xss=1>"
XSS_NOTE = "<b onmouseover=window.__xss=2>note</b>"
XSS_DESC = "<script>window.__xss=3</script>"


async def test_csp_forbids_inline_code(web, open_app):
    page = await open_page(open_app)
    response = await page.goto(app_url(web))
    assert response is not None and response.ok
    csp = response.headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    html = await response.text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html, re.I), "inline <script>"
    assert not re.search(r"<style\b", html, re.I), "inline <style>"
    assert not re.search(r"\sstyle\s*=", html, re.I), "style= attribute"
    assert not re.search(r"\son[a-z]+\s*=", html, re.I), "on*= handler"
    for asset in await page.evaluate(
            "() => [...document.querySelectorAll('script[src], link[href]')]"
            ".map(e => e.src || e.href)"):
        assert asset.startswith(app_url(web)), f"{asset} is not from our origin"
    await no_errors(page)


async def test_user_text_is_never_html(web, open_app):
    alice = await user_page(open_app, web, "alice")
    bob = await user_page(open_app, web, "bob")

    # a request note that is markup
    await add_contact(alice, "bob@localhost", XSS_NOTE)
    request = tid(bob, "request", jid="alice@localhost")
    note = tid(request, "request-note")
    await expect(note).to_have_text(exact(XSS_NOTE))
    assert await note.evaluate("e => e.textContent.trim()") == XSS_NOTE
    assert await note.locator("b").count() == 0
    await tid(request, "request-accept").click()
    await befriend_done(alice, bob)

    # a message
    await open_chat(alice, "bob@localhost")
    await send(alice, XSS)
    await open_chat(bob, "alice@localhost")
    body = tid(chat(bob), "message-body").filter(has_text=exact(XSS))
    await expect(body).to_have_count(1)
    assert await body.evaluate("e => e.textContent.trim()") == XSS
    assert await tid(chat(bob), "message-body").locator("img").count() == 0
    assert await tid(chat(alice), "message-body").locator("img").count() == 0

    # a nickname
    await tid(alice, "profile-open").click()
    await tid(alice, "profile-nick").fill(XSS)
    await tid(alice, "profile-save").click()
    await tid(alice, "profile-close").click()
    await expect(tid(alice, "me")).to_have_text(exact(XSS))
    name = tid(contact(bob, "alice@localhost"), "contact-name")
    await expect(name).to_have_text(exact(XSS))
    assert await name.evaluate("e => e.textContent.trim()") == XSS
    assert await tid(bob, "contacts").locator("img:not([data-testid=contact-avatar])").count() == 0

    # a room name and description
    await show_groups(alice)
    await tid(alice, "create-group-open").click()
    await tid(alice, "group-name").fill(XSS)
    await tid(alice, "group-description").fill(XSS_DESC)
    await tid(alice, "create-group-submit").click()
    label = tid(tid(alice, "groups"), "group-name-label")
    await expect(label).to_have_text(exact(XSS))
    assert await label.evaluate("e => e.textContent.trim()") == XSS
    group = tid(tid(alice, "groups"), "group").first
    if not await tid(alice, "chat", jid=await group.get_attribute("data-jid")).is_visible():
        await group.click()
    await expect(tid(chat(alice), "chat-title")).to_have_text(exact(XSS))
    await expect(tid(chat(alice), "group-description-label")).to_have_text(exact(XSS_DESC))
    assert await tid(alice, "groups").locator("img").count() == 0
    assert await chat(alice).locator("[data-testid=chat-title] img").count() == 0

    # bob is invited to it (by "<img ...>"), joins, and reads a message there
    room = await group.get_attribute("data-jid")
    await tid(chat(alice), "group-invite-open").click()
    await choose(tid(alice, "invite-jid"), "bob@localhost")
    await tid(alice, "invite-submit").click()
    await show_groups(bob)
    invitation = tid(bob, "invitation", room=room)
    await expect(invitation).to_be_visible()
    assert await invitation.locator("img").count() == 0
    await tid(invitation, "invitation-accept").click()
    bob_label = tid(tid(tid(bob, "groups"), "group", jid=room), "group-name-label")
    await expect(bob_label).to_have_text(exact(XSS))
    await open_group(bob, room)
    await send(alice, XSS_NOTE)
    in_group = message(bob, XSS_NOTE)
    await expect(in_group).to_have_count(1)
    assert await in_group.locator("img, b").count() == 0
    sender = (await tid(in_group, "message-sender").text_content() or "").strip()
    assert sender in (XSS, "alice"), sender
    assert await tid(bob, "groups").locator("img").count() == 0

    for page in (alice, bob):
        assert await page.evaluate("() => window.__xss") is None
        assert await page.evaluate("() => typeof window.__xss") == "undefined"
    await no_errors(alice, bob)


async def befriend_done(alice, bob):
    """After bob accepted: both lists show the other online (``befriend`` minus the asking)."""
    await expect(tid(contact(bob, "alice@localhost"), "contact-presence")).to_have_attribute(
        "data-state", "online")
    await expect(tid(contact(alice, "bob@localhost"), "contact-presence")).to_have_attribute(
        "data-state", "online")

