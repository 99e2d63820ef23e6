"""The web app in a browser: an account's life (register, log in, stay in, log out) and language.

Registration goes through the app (XEP-0077 in-band); a reload keeps the person logged in
(stream resumption or the stored SCRAM keys) until they log out, after which a reload shows
the login screen. The interface speaks English or Chinese: the browser's language decides,
the language switch overrides it and the choice survives a reload.
"""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.browser.conftest import app_url
from tests.browser.steps import (
    CJK,
    create_account,
    exact,
    login,
    logout,
    no_errors,
    open_page,
    snap,
    tid,
)

LATIN = re.compile(r"[A-Za-z]")


async def test_register_login_reload_logout(web, open_app):
    page = await open_page(open_app)
    await expect(tid(page, "screen-login")).to_be_visible()
    await expect(tid(page, "screen-main")).to_be_hidden()
    await snap(page, "login")

    # a wrong password is refused with a visible error
    await create_account(web, "mallory", "right")
    await tid(page, "login-username").fill("mallory")
    await tid(page, "login-password").fill("wrong")
    await tid(page, "login-submit").click()
    await expect(tid(page, "login-error")).to_be_visible()
    await expect(tid(page, "login-error")).not_to_have_text(exact(""))
    await expect(tid(page, "screen-main")).to_be_hidden()

    # register through the app; the login form comes back prefilled
    await tid(page, "show-register").click()
    await tid(page, "register-username").fill("alice")
    await tid(page, "register-password").fill("s3cret pass")
    await tid(page, "register-submit").click()
    await expect(tid(page, "register-result")).to_be_visible()
    await expect(tid(page, "register-result")).not_to_have_text(exact(""))
    assert web.host is not None and await web.host.accounts.exists("alice")
    if not await tid(page, "login-username").is_visible():
        await tid(page, "show-login").click()
    await expect(tid(page, "login-username")).to_have_value(re.compile(r"^alice(@localhost)?$"))

    # taking a registered name again fails and creates nothing
    await tid(page, "show-register").click()
    await tid(page, "register-username").fill("alice")
    await tid(page, "register-password").fill("other")
    await tid(page, "register-submit").click()
    failure = page.locator('[data-testid="register-result"], [data-testid="toast"],'
                           ' [data-testid="login-error"]').filter(has_text=LATIN)
    await expect(failure.first).to_be_visible()
    await tid(page, "show-login").click()

    await login(page, "alice", "s3cret pass")
    await expect(tid(page, "me")).to_contain_text("alice")
    await expect(tid(page, "tab-contacts")).to_be_visible()
    await expect(tid(page, "tab-groups")).to_be_visible()

    # a reload keeps the session
    await page.reload()
    await expect(tid(page, "screen-main")).to_be_visible()
    await expect(tid(page, "screen-login")).to_be_hidden()
    await expect(tid(page, "me")).to_contain_text("alice")
    stored = await page.evaluate("() => JSON.stringify({...localStorage, ...sessionStorage})")
    assert "s3cret pass" not in stored, "the password itself is stored"

    # so does opening the app again in a new tab of the same browser (stored keys)
    again = await page.context.new_page()
    again.errors = []
    again.on("pageerror", lambda exc: again.errors.append(f"pageerror: {exc}"))
    await again.goto(app_url(web))
    await expect(tid(again, "screen-main")).to_be_visible()
    await expect(tid(again, "me")).to_contain_text("alice")
    await again.close()

    # logging out forgets it: a reload shows the login screen
    await logout(page)
    await page.reload()
    await expect(tid(page, "screen-login")).to_be_visible()
    await expect(tid(page, "screen-main")).to_be_hidden()
    stored = await page.evaluate("() => JSON.stringify({...localStorage, ...sessionStorage})")
    assert "s3cret pass" not in stored
    await no_errors(page, again)


async def test_language_follows_browser_and_switch(web, open_app):
    await create_account(web, "li")
    await create_account(web, "emma")

    # a Chinese browser gets the Chinese interface from the start
    zh = await open_page(open_app, locale="zh-CN")
    await expect(tid(zh, "login-submit")).to_have_text(CJK)
    await login(zh, "li")
    await expect(tid(zh, "tab-contacts")).to_have_text(CJK)
    await expect(tid(zh, "tab-groups")).to_have_text(CJK)
    await expect(tid(zh, "lang-switch")).to_have_value("zh")
    await snap(zh, "zh")

    # an English one gets English, and switches
    en = await open_page(open_app, locale="en-US")
    await expect(tid(en, "login-submit")).not_to_have_text(CJK)
    await expect(tid(en, "login-submit")).to_have_text(LATIN)
    await login(en, "emma")
    await expect(tid(en, "lang-switch")).to_have_value("en")
    english = (await tid(en, "tab-contacts").text_content() or "").strip()
    assert english and not CJK.search(english)
    await tid(en, "lang-switch").select_option("zh")
    await expect(tid(en, "tab-contacts")).to_have_text(CJK)
    await expect(tid(en, "tab-groups")).to_have_text(CJK)

    # the choice is kept across a reload, and switching back restores English
    await en.reload()
    await expect(tid(en, "screen-main")).to_be_visible()
    await expect(tid(en, "tab-contacts")).to_have_text(CJK)
    await tid(en, "lang-switch").select_option("en")
    await expect(tid(en, "tab-contacts")).to_have_text(exact(english))
    await no_errors(zh, en)
