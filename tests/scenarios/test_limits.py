"""Resource limits against hostile clients: connections per address, the login deadline,
clients that stop reading, stanza rates. Each limit closes or slows only the offender."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

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


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for something the server does once a connection has gone."""
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError


async def _features(server, tls: bool = False) -> RawClient:  # type: ignore[no-untyped-def]
    raw = await (RawClient.open_tls(server) if tls else RawClient.open(server))
    await raw.send(raw.header())
    await raw.expect(b"</stream:features>")
    return raw


async def test_connections_per_address_are_capped_and_released(servers):
    server = await servers.start(modules=CORE, c2s={"require_tls": False,
                                                    "max_connections_per_ip": 3})
    held = [await _features(server), await _features(server), await _features(server, tls=True)]
    for tls in (False, True):  # plain and direct TLS share the count
        over = await (RawClient.open_tls(server) if tls else RawClient.open(server))
        data = await over.read_until_closed()  # refused before it says anything
        assert b"<stream:stream" in data and b"<policy-violation" in data
        assert b"too many connections from your address" in data
        assert data.rstrip().endswith(b"</stream:stream>")
        await over.close()
    await held.pop().close()  # a closed connection frees its place
    await _until(lambda: server.host.peers.count("127.0.0.1") < 3)
    again = await _features(server)
    assert b"<mechanisms" in again.buffer
    for raw in (*held, again):
        await raw.close()
    await _until(lambda: server.host.peers.count("127.0.0.1") == 0)
    await _ping(server)


async def _flood(flooder: RawClient, to: str, caplog: pytest.LogCaptureFixture,
                 max_bytes: int) -> int:
    """Send ``to`` 1 KB messages until the server logs that it stopped reading."""
    stanza = (f"<message to='{to}' type='chat'><body>{'x' * 1000}</body></message>").encode()
    sent = 0
    while sent < max_bytes and "stopped reading" not in caplog.text:
        await flooder.send(stanza * 50)
        sent += len(stanza) * 50
        await asyncio.sleep(0)
    return sent


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "direct-tls"])
async def test_client_that_stops_reading_is_closed_not_buffered(servers, caplog, tls):
    caplog.set_level(logging.INFO, logger="xmpp_server.stream.tcp")
    server = await servers.start(modules=CORE, c2s={"require_tls": False},
                                 limits={"max_output_buffer_bytes": 262144})
    for user in ("reader", "flooder"):
        await server.host.accounts.create(user, "pw")
    reader = await (RawClient.open_tls(server) if tls else RawClient.open(server))
    await reader.login("reader", "pw")  # and reads no more for now
    flooder = await RawClient.open(server)
    await flooder.login("flooder", "pw")
    sent = await _flood(flooder, "reader@localhost/raw", caplog, 40_000_000)
    assert "stopped reading" in caplog.text, f"still buffering after {sent:,} bytes"
    data = await reader.read_until_closed()  # what was written before the error, then it
    assert b"<policy-violation" in data and b"client not reading" in data
    assert data.rstrip().endswith(b"</stream:stream>")
    await _until(lambda: not server.host.sessions.is_online("reader"))
    # The flooder's stream lives on.
    flooder.buffer = b""
    await flooder.send(PING % b"after")
    assert b"type=\"result\"" in await flooder.expect(b"id=\"after\"")
    await flooder.close()
    await reader.close()


async def test_stanza_rate_slows_a_flooding_client_and_loses_nothing(servers):
    server = await servers.start(modules=CORE, c2s={"require_tls": False},
                                 limits={"stanzas_per_second": 10})
    for user in ("flooder", "receiver"):
        await server.host.accounts.create(user, "pw")
    receiver = await RawClient.open(server)
    await receiver.login("receiver", "pw")
    flooder = await RawClient.open(server)
    await flooder.login("flooder", "pw")
    count = 60
    await flooder.send(b"".join(
        b"<message to='receiver@localhost/raw' type='chat' id='m%d'><body>%d</body></message>"
        % (i, i) for i in range(count)))

    async def read_all() -> bytes:
        return await receiver.expect(b"id=\"m%d\"" % (count - 1), timeout=30)

    reading = asyncio.create_task(read_all())
    await _ping(server)  # another client is served meanwhile
    assert not reading.done(), "the flood went through at full speed"
    assert receiver.buffer.count(b"</message>") < count
    data = await reading
    ids = [int(part.split(b'"', 1)[0]) for part in data.split(b"id=\"m")[1:]]
    assert ids == list(range(count))  # all of them, in order
    await flooder.close()
    await receiver.close()


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "direct-tls"])
async def test_one_write_of_many_small_stanzas_is_not_one_big_stanza(servers, tls):
    """max_stanza_bytes limits each stanza, however many arrive in one read."""
    server = await servers.start(modules=CORE, c2s={"require_tls": False})
    await server.host.accounts.create("alice", "pw")
    raw = await (RawClient.open_tls(server) if tls else RawClient.open(server))
    await raw.login("alice", "pw")
    count = 5000
    data = b"".join(PING % b"p%d" % i for i in range(count))
    assert len(data) > 262144
    raw.writer.write(data)
    reply = await raw.expect(b"id=\"p%d\"" % (count - 1), timeout=60)
    assert b"<stream:error" not in reply
    assert reply.count(b"type=\"result\"") == count
    await raw.close()
