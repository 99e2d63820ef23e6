"""The browser app in headless Chromium: Debian's ``chromium`` driven by Playwright.

``web`` is a running server on SQLite whose HTTP listener serves the app; ``browser`` is
Chromium (``CHROMIUM`` or /usr/bin/chromium; Playwright never downloads a browser here).
``open_app()`` gives a fresh browser context (its own storage, like another person's
browser) with the app loaded at ``http://localhost:<port>/``. Screenshots of the main screens
go to ``ARTIFACTS`` (``test-artifacts/screens`` by default).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.support.databases import unavailable
from tests.support.server import ServerFactory
from xmpp_server.server import Server

ARTIFACTS = Path(os.environ.get("XMPPD_TEST_ARTIFACTS", "test-artifacts")) / "screens"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).exists()
# No sandbox (containers run as root); no traffic of Chromium's own (updates, sync, field
# trials): the tests talk to the servers they start and nothing else.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

OpenApp = Callable[..., Awaitable[Any]]


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[Server]:
    """A server with the web app, on the embedded defaults (domain localhost, SQLite)."""
    factory = ServerFactory(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'db' / 'xmppd.db'}")
    try:
        yield await factory.start()
    finally:
        await factory.close()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:
        unavailable("Playwright", repr(exc))
    if not HAVE_CHROMIUM:
        unavailable("Chromium", f"{CHROMIUM} not found")
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                            args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


def app_url(server: Server) -> str:
    assert server.http is not None
    return f"http://localhost:{server.http.port}/"  # type: ignore[attr-defined]


@pytest.fixture
async def open_app(web: Server, browser: Any) -> AsyncIterator[OpenApp]:
    """``page = await open_app(locale="zh-CN", viewport=(390, 844))``: a new person's browser
    (``permissions=["notifications"]``: granted to the app's origin).

    Console errors and uncaught exceptions of the page are collected in ``page.errors``; a
    test ends with none (a CSP violation or a script error fails it).
    """
    contexts: list[Any] = []

    async def open_(locale: str = "en-US", viewport: tuple[int, int] = (1280, 800),
                    permissions: Sequence[str] = ()) -> Any:
        context = await browser.new_context(
            locale=locale, viewport={"width": viewport[0], "height": viewport[1]},
            permissions=list(permissions))
        contexts.append(context)
        page = await context.new_page()
        page.errors = []
        page.on("pageerror", lambda exc: page.errors.append(f"pageerror: {exc}"))
        page.on("console", lambda msg: msg.type == "error"
                and page.errors.append(f"console: {msg.text}"))
        await page.goto(app_url(web))
        return page

    yield open_
    for context in contexts:
        await context.close()


async def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path))
    return path
