"""Resource limits against hostile clients: connections per address, the login deadline,
clients that stop reading, stanza rates. Each limit closes or slows only the offender."""

from __future__ import annotations

import asyncio

from tests.support.clients import RawClient, connect

CORE = {"enabled": ["ping", "version", "time"]}
PING = b"<iq type='get' id='%s' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"


async def _ping(server) -> None:  # type: ignore[no-untyped-def]
    """A logged-in bystander still gets a ping answered."""
    bystander = await connect(server, "bystander")
    try:
        iq = bystander.make_iq_get(ito="localhost")
        iq.enable("ping")
        assert (await bystander.query(iq))["type"] == "result"
    finally:
        await bystander.close()


async def test_trickling_unauthenticated_stream_is_closed_at_the_deadline(servers):
    """A byte now and then is not silence: the deadline runs from connect (c2s.auth_timeout)."""
    server = await servers.start(modules=CORE, c2s={"require_tls": False, "auth_timeout": 3,
                                                    "ping_interval": 60})
    early = await connect(server, "early")  # logged in before the deadline: stays
    raw = await RawClient.open(server)
    header = raw.header()

    async def trickle() -> None:
        for i in range(10_000):
            await raw.send(header[i : i + 1] if i < len(header) else b" ")
            await asyncio.sleep(0.2)

    task = asyncio.create_task(trickle())
    try:
        data = await raw.read_until_closed(timeout=15)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert b"<connection-timeout" in data and b"authentication took too long" in data
    iq = early.make_iq_get(ito="localhost")
    iq.enable("ping")
    assert (await early.query(iq))["type"] == "result"
    await early.close()
    await raw.close()
