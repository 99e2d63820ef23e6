"""Strophe.js 5 (the library under Converse.js and JSXC) from Node.js, over WebSocket
(RFC 7395, ``/xmpp-websocket``) and BOSH (XEP-0206, ``/http-bind``): the scenarios of
``scenarios.py`` with ``node/strophe.mjs``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.clients import scenarios
from tests.clients.node_client import Login, logins
from xmpp_server.server import Server

PATHS = {"websocket": "ws://{}/xmpp-websocket", "bosh": "http://{}/http-bind"}


@pytest.fixture(params=list(PATHS))
async def login(request: pytest.FixtureRequest, client_server: Server) -> AsyncIterator[Login]:
    http = f"127.0.0.1:{client_server.http.port}"  # type: ignore[attr-defined]
    async with logins("strophe.mjs", PATHS[request.param].format(http)) as login:
        yield login


async def test_login(client_server: Server, login: Login) -> None:
    # Strophe asks for a session after binding (RFC 3921's, still advertised as optional),
    # and reports CONNECTED only once the server has answered it.
    juliet = await scenarios.log_in(client_server, login)
    assert juliet.login["mechanism"] == "SCRAM-SHA-256"


async def test_contact_both_ways(client_server: Server, login: Login) -> None:
    await scenarios.contact_both_ways(client_server, login)


async def test_chat_both_ways(client_server: Server, login: Login) -> None:
    await scenarios.chat_both_ways(client_server, login)


async def test_offline_delivery(client_server: Server, login: Login) -> None:
    await scenarios.offline_delivery(client_server, login)


async def test_room(client_server: Server, login: Login) -> None:
    await scenarios.room(client_server, login)
