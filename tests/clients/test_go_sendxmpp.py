"""go-sendxmpp (Debian's) scripted against the default server: a message, a room message and a
file upload (XEP-0363), each received by a user on the suite's slixmpp.

It runs with flags only (``-u -p -j``, no ``sendxmpprc``: HOME is the test's directory), on our
port, with ``-n`` for the self-signed certificate: STARTTLS by default, direct TLS with ``-t``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.clients.conftest import require_program
from tests.clients.rooms import enter
from tests.support.clients import Client, connect
from xmpp_server.server import Server

ROOM = "lobby@conference.localhost"
TIMEOUT = 30.0


@pytest.fixture
def go_sendxmpp() -> str:
    return require_program("go-sendxmpp")


@pytest.fixture
async def alice(client_server: Server) -> AsyncIterator[Client]:
    client = await connect(client_server, "alice", plugins=("xep_0030", "xep_0045", "xep_0004"),
                           send_presence=True)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def sendxmpp(go_sendxmpp: str, client_server: Server, tmp_path: Path) -> Any:
    """``await sendxmpp("alice@localhost", message="hi")``: runs go-sendxmpp as gosx, which
    must succeed; ``direct_tls=True`` uses the direct TLS port with ``-t``."""
    assert client_server.host is not None
    await client_server.host.accounts.create("gosx", "secret")

    async def run(*args: str, message: str = "", direct_tls: bool = False) -> None:
        port = client_server.direct_tls_port if direct_tls else client_server.c2s_port
        flags = ["-n", "-u", "gosx@localhost", "-p", "secret", "-j", f"127.0.0.1:{port}"]
        if direct_tls:
            flags.append("-t")
        process = await asyncio.create_subprocess_exec(
            go_sendxmpp, *flags, *args, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "HOME": str(tmp_path)})
        try:
            async with asyncio.timeout(TIMEOUT):
                output, _ = await process.communicate(message.encode())
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        assert process.returncode == 0, output.decode(errors="replace")

    return run


@pytest.mark.parametrize("direct_tls", [False, True], ids=["starttls", "direct_tls"])
async def test_message(sendxmpp: Any, alice: Client, direct_tls: bool) -> None:
    await sendxmpp("alice@localhost", message="disk almost full\n", direct_tls=direct_tls)
    msg = await alice.next("message")
    assert msg["from"].bare == "gosx@localhost" and msg["type"] == "chat"
    assert msg["body"].strip() == "disk almost full"


async def test_room_message(sendxmpp: Any, alice: Client) -> None:
    await enter(alice, ROOM, "alice")
    await sendxmpp("-c", "-a", "monitor", ROOM, message="build 42 passed\n")
    msg = await alice.next("message", lambda m: m["type"] == "groupchat")
    assert str(msg["from"]) == f"{ROOM}/monitor"
    assert msg["body"].strip() == "build 42 passed"
    assert msg.xml.find("{urn:xmpp:sid:0}stanza-id").get("by") == ROOM


async def test_file_upload(sendxmpp: Any, alice: Client, client_server: Server,
                           tmp_path: Path) -> None:
    data = os.urandom(150_000)
    path = tmp_path / "report.bin"
    path.write_bytes(data)
    await sendxmpp("-h", str(path), "alice@localhost")
    msg = await alice.next("message")
    url = msg["body"].strip()
    port = client_server.http.port  # type: ignore[attr-defined]
    assert url.startswith(f"http://localhost:{port}/upload/") and url.endswith("/report.bin")
    assert msg.xml.findtext("{jabber:x:oob}x/{jabber:x:oob}url") == url  # XEP-0066
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200
        assert await response.read() == data
