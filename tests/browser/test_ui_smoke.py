"""The web app's interface at a glance: both languages, the strict CSP, a phone-sized screen.

The login screen speaks the browser's language (English, Chinese) and the language switch
changes every string at once and is remembered; the page builds its DOM without inline
styles or script (a CSP violation is a console error and fails the test); on a 390 px wide
screen the app is one column without horizontal scrolling.
"""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.browser.conftest import screenshot
from tests.browser.steps import CJK, create_account, login, no_errors, open_page, tid

LATIN = re.compile(r"[A-Za-z]")
PHONE = (390, 844)
LOGIN_STRINGS = ("login-submit", "show-register")


async def no_inline_styles(page) -> None:
    assert await page.locator("[style]").count() == 0
    assert await page.evaluate("() => document.querySelectorAll('script:not([src])').length") == 0


async def no_horizontal_scroll(page) -> None:
    widths = await page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], widths


async def test_login_screen_in_english_and_chinese(web, open_app):
    en = await open_page(open_app, locale="en-US")
    await expect(tid(en, "screen-login")).to_be_visible()
    await expect(tid(en, "screen-main")).to_be_hidden()
    for testid in LOGIN_STRINGS:
        await expect(tid(en, testid)).to_have_text(LATIN)
        await expect(tid(en, testid)).not_to_have_text(CJK)
    await expect(tid(en, "lang-switch")).to_have_value("en")

    zh = await open_page(open_app, locale="zh-CN")
    for testid in LOGIN_STRINGS:
        await expect(tid(zh, testid)).to_have_text(CJK)
    await expect(tid(zh, "lang-switch")).to_have_value("zh")
    assert await zh.evaluate("() => document.documentElement.lang") == "zh-CN"

    # the switch changes the strings at once and is remembered across a reload
    await tid(en, "lang-switch").select_option("zh")
    await expect(tid(en, "login-submit")).to_have_text(CJK)
    await tid(en, "show-register").click()
    await expect(tid(en, "register-submit")).to_have_text(CJK)
    await en.reload()
    await expect(tid(en, "login-submit")).to_have_text(CJK)
    await tid(en, "lang-switch").select_option("en")
    await expect(tid(en, "login-submit")).not_to_have_text(CJK)

    for page in (en, zh):
        await no_inline_styles(page)
    await no_errors(en, zh)


async def test_phone_layout(web, open_app):
    phone = await open_page(open_app, viewport=PHONE)
    await expect(tid(phone, "screen-login")).to_be_visible()
    await expect(tid(phone, "login-submit")).to_be_visible()
    await no_horizontal_scroll(phone)
    await tid(phone, "show-register").click()
    await expect(tid(phone, "register-submit")).to_be_visible()
    await no_horizontal_scroll(phone)
    await tid(phone, "show-login").click()

    # logged in: one column, the list without a back button, still no horizontal scroll
    await create_account(web, "pat")
    await login(phone, "pat")
    await expect(tid(phone, "contacts")).to_be_visible()
    await expect(tid(phone, "back")).to_be_hidden()
    await expect(tid(phone, "chat")).to_be_hidden()
    await expect(tid(phone, "me")).to_contain_text("pat")
    await no_horizontal_scroll(phone)
    await tid(phone, "tab-groups").click()
    await expect(tid(phone, "groups")).to_be_attached()
    await expect(tid(phone, "create-group-open")).to_be_visible()
    await no_horizontal_scroll(phone)
    await no_inline_styles(phone)
    await screenshot(phone, "smoke-phone")
    await no_errors(phone)
