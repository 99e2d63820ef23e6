"""@xmpp/client (xmpp.js) from Node.js, over TCP with STARTTLS and over WebSocket (RFC 7395):
the scenarios of ``scenarios.py`` with ``node/xmpp_js.mjs``. It logs in with SASL2
(XEP-0388) and Bind 2 (XEP-0386), enabling stream management inline. The server's
self-signed certificate is trusted as a CA (NODE_EXTRA_CA_CERTS), so it is checked for
the domain as any certificate would be."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.clients import scenarios
from tests.clients.node_client import Login, logins
from xmpp_server.server import Server

SERVICES = {
    "starttls": lambda s: f"xmpp://127.0.0.1:{s.c2s_port}",
    "websocket": lambda s: f"ws://127.0.0.1:{s.http.port}/xmpp-websocket",
}


def trust(server: Server) -> dict[str, str]:
    """The server's certificate as the one CA Node.js adds to its own."""
    cert = Path(server.config.server.data_dir) / "tls" / f"{scenarios.DOMAIN}.crt"
    assert cert.is_file(), cert
    return {"NODE_EXTRA_CA_CERTS": str(cert)}


@pytest.fixture(params=list(SERVICES))
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def login(transport: str, client_server: Server) -> AsyncIterator[Login]:
    service = SERVICES[transport](client_server)
    async with logins("xmpp_js.mjs", service, trust(client_server)) as login:
        yield login


async def test_login(client_server: Server, transport: str, login: Login) -> None:
    juliet = await scenarios.log_in(client_server, login)
    assert (juliet.login["sasl"], juliet.login["mechanism"]) == ("SASL2", "SCRAM-SHA-1")
    if transport == "starttls":
        assert juliet.login["tls"] in ("TLSv1.2", "TLSv1.3")
    # Bind 2: the resource is the client's tag and what the server adds (XEP-0386 §2.3).
    assert juliet.login["jid"].startswith(scenarios.JULIET + "/node")


async def test_login_direct_tls(client_server: Server) -> None:
    assert client_server.direct_tls_port is not None
    service = f"xmpps://{scenarios.DOMAIN}:{client_server.direct_tls_port}"  # XEP-0368
    async with logins("xmpp_js.mjs", service, trust(client_server)) as login:
        juliet = await scenarios.log_in(client_server, login)
    assert juliet.login["tls"] in ("TLSv1.2", "TLSv1.3")


async def test_contact_both_ways(client_server: Server, login: Login) -> None:
    await scenarios.contact_both_ways(client_server, login)


async def test_chat_both_ways(client_server: Server, login: Login) -> None:
    await scenarios.chat_both_ways(client_server, login)


async def test_offline_delivery(client_server: Server, login: Login) -> None:
    await scenarios.offline_delivery(client_server, login)


async def test_room(client_server: Server, login: Login) -> None:
    await scenarios.room(client_server, login)
