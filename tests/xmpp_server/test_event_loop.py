"""The tests run on the event loop ``TEST_EVENT_LOOP`` selects, the server under test too."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.clients import RawClient
from tests.support.loops import TEST_LOOP
from tests.support.server import ServerFactory


def from_uvloop(obj: object) -> bool:
    return type(obj).__module__.split(".")[0] == "uvloop"


async def test_server_runs_on_the_selected_loop(tmp_path: Path) -> None:
    factory = ServerFactory(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'xmppd.db'}")
    try:
        server = await factory.start()
        loop = asyncio.get_running_loop()
        assert from_uvloop(loop) == (TEST_LOOP == "uvloop"), type(loop)
        # The server's sockets are the loop's own: an accepted connection's transport.
        raw = await RawClient.open(server)
        try:
            await raw.send(raw.header())
            await raw.expect(b"</stream:features>")
            [conn] = server.c2s[0].connections
            assert from_uvloop(conn._transport) == (TEST_LOOP == "uvloop"), type(conn._transport)
        finally:
            await raw.close()
    finally:
        await factory.close()
