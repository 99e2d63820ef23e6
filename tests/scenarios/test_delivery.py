"""What the server acknowledged arrives, once: the delivery journal, full queues, detached
sessions that give way (docs/guarantees.md). Raw XEP-0198 clients, where counts must be exact.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.scenarios.test_messages import ping, send
from tests.scenarios.test_roster_presence import befriend
from tests.scenarios.test_stream_mgmt import C, SmRaw, message, session_of, sm, stored
from tests.support.clients import TIMEOUT, connect
from xmpp_server.server import Server

BIND = "{urn:ietf:params:xml:ns:xmpp-bind}"
SID = "{urn:xmpp:sid:0}stanza-id"
A = "alice@localhost"
ONLY_POSTGRESQL = pytest.mark.parametrize(
    "backend_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)


async def held(server: Server, user: str) -> int:
    assert server.host is not None
    await server.host.durable()
    return await server.host.storage.offline.count_held(user)


async def eventually(check: Any, timeout: float = TIMEOUT) -> None:
    async with asyncio.timeout(timeout):
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def quiet(raw: SmRaw, wait: float = 0.5) -> None:
    """Take messages until none comes for ``wait`` seconds."""
    while True:
        try:
            await raw.next(lambda e: e.tag == C + "message", timeout=wait)
        except TimeoutError:
            return


def bodies(raw: SmRaw) -> list[str]:
    return [el.findtext(C + "body") or "" for el in raw.stanzas if el.tag == C + "message"]


async def bind_as(raw: SmRaw, resource: str) -> str:
    await raw.send(f"<iq type='set' id='bind2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                   f"<resource>{resource}</resource></bind></iq>")
    result = await raw.next(lambda e: e.get("id") == "bind2")
    assert result.get("type") == "result"
    return result.findtext(f"{BIND}bind/{BIND}jid") or ""


@pytest.fixture
async def bob(servers: Any) -> Any:
    server: Server = await servers.start(c2s={"require_tls": False, "sm_resume_timeout": 30,
                                              "sm_max_unacked": 10},
                                         limits={"max_resources_per_user": 3})
    await befriend(server, "alice", "bob")
    client = await connect(server, "bob", get_roster=True, send_presence=True)
    client.auto_authorize = None
    yield server, client
    await client.close()


async def test_unacknowledged_messages_are_kept_durably_until_acked(bob: Any) -> None:
    server, client = bob
    raw = await SmRaw.login(server)
    await raw.enable()
    await raw.send("<presence/>")
    for i in range(3):
        send(client, A + "/raw", f"m{i}")
    for i in range(3):
        await raw.next(message(f"m{i}"))
    assert await held(server, "alice") == 3  # written to the client, not yet acknowledged
    assert await stored(server, "alice") == 0  # and not waiting for a login either
    await raw.send(f"<a xmlns='urn:xmpp:sm:3' h='{raw.h_through(message('m2'))}'/>")
    await eventually(lambda: _is(held(server, "alice"), 0))
    raw.abort()


async def _is(value: Any, expected: int) -> bool:
    return await value == expected


async def test_a_full_queue_waits_in_offline_storage_instead_of_a_storm(bob: Any) -> None:
    """Past sm_max_unacked the session is not dropped and nothing is sent twice: the account's
    messages wait in offline storage and follow as the client acknowledges."""
    server, client = bob
    raw = await SmRaw.login(server)
    await raw.enable()
    await raw.send("<presence/>")
    for i in range(40):
        send(client, A + "/raw", f"m{i}")
    await ping(client)
    await raw.next(message("m0"))
    await quiet(raw)  # the queue (presence counts too) fills up: no more for now
    first = len(bodies(raw))
    assert 5 <= first <= 10
    assert await stored(server, "alice") == 40 - first
    session = session_of(server, A + "/raw")
    assert session is not None and session.congested and not session.closed
    async with asyncio.timeout(TIMEOUT):
        while len(bodies(raw)) < 40:
            await raw.send(f"<a xmlns='urn:xmpp:sm:3' h='{len(raw.stanzas)}'/>")
            await raw.next(lambda e: e.tag == C + "message" and e.findtext(C + "body") not in
                           {el.findtext(C + "body") for el in raw.stanzas[:-1]}, timeout=5)
    assert sorted(bodies(raw), key=lambda b: int(b[1:])) == [f"m{i}" for i in range(40)]
    assert len(set(bodies(raw))) == 40  # each once
    assert raw.ended is False
    await raw.send(f"<a xmlns='urn:xmpp:sm:3' h='{len(raw.stanzas)}'/>")
    await eventually(lambda: _is(held(server, "alice"), 0))
    assert await stored(server, "alice") == 0
    assert server.host is not None
    await eventually(lambda: _is(server.host.storage.archive.count("alice"), 40))
    raw.abort()


async def test_binding_the_resource_of_a_detached_session_replaces_it(bob: Any) -> None:
    server, client = bob
    old = await SmRaw.login(server, resource="phone")
    await old.enable(resume=True)
    await old.send("<presence/>")
    send(client, A + "/phone", "never acked")
    await old.next(message("never acked"))
    old.abort()  # detached: resumable for 30 s
    await asyncio.sleep(0.2)
    assert session_of(server, A + "/phone").detached

    new = await SmRaw.login(server, resource=None)
    assert await bind_as(new, "phone") == A + "/phone"  # not a suffixed resource
    await new.send("<presence/>")
    got = await new.next(message("never acked"))  # handed over from the replaced session
    assert got.find(SID) is not None
    await new.nothing(message("never acked"), wait=0.5)  # once
    new.abort()


async def test_detached_sessions_never_lock_an_account_out(bob: Any) -> None:
    server, _ = bob
    for i in range(6):  # twice max_resources_per_user, each left for resumption
        raw = await SmRaw.login(server, resource=None)
        assert await bind_as(raw, f"r{i}") == f"{A}/r{i}"
        await raw.enable(resume=True)
        raw.abort()
        await asyncio.sleep(0.1)
    assert server.host is not None
    assert len(server.host.sessions.of_user("alice")) <= 3


async def test_acknowledged_only_once_durable(bob: Any) -> None:
    """The <a/> answering the client's <r/> comes after the archive and journal have written
    what the acknowledged stanzas caused."""
    server, _ = bob
    alice = await SmRaw.login(server)
    await alice.enable()
    for i in range(5):
        await alice.send(f"<message to='bob@localhost' type='chat' id='x{i}'>"
                         f"<body>hello {i}</body></message>")
    await alice.send("<r xmlns='urn:xmpp:sm:3'/>")
    await alice.next(sm("a", h="5"))
    assert server.host is not None
    archive = server.host.storage.archive
    # No flush here: the answer itself promised it.
    assert await archive.count("alice") == 5
    assert await archive.count("bob") == 5
    alice.abort()


async def test_a_failing_session_end_handler_does_not_stop_the_others(bob: Any) -> None:
    server, client = bob
    assert server.host is not None

    def broken(_: Any) -> None:
        raise RuntimeError("storage went away")

    server.host.events.on("session-ended", broken, priority=1000)
    raw = await SmRaw.login(server)
    await raw.enable()
    await raw.send("<presence/>")
    send(client, A + "/raw", "unacked")
    await raw.next(message("unacked"))
    await raw.send("</stream:stream>")
    await raw.until_closed()
    await eventually(lambda: _is(stored(server, "alice"), 1))  # still handed on


@ONLY_POSTGRESQL  # SQLite has no pool of connections to exhaust
async def test_an_exhausted_database_pool_sheds_with_a_clear_error(bob: Any) -> None:
    """Every pooled connection busy (PostgreSQL: 20): a message that needs storage is refused
    with resource-constraint (type wait) after the pool's timeout, not queued without end."""
    server, client = bob
    assert server.host is not None
    engine = server.host.storage._engine
    held_connections = [await engine.connect() for _ in range(20)]
    try:
        iq_or_error = asyncio.get_running_loop().create_future()
        client.add_event_handler("message_error", lambda m: iq_or_error.set_result(m)
                                 if not iq_or_error.done() else None)
        send(client, A, "to alice, offline")  # offline storage needs a connection
        error = await asyncio.wait_for(iq_or_error, 15)
        assert error["error"]["condition"] == "resource-constraint"
        assert error["error"]["type"] == "wait"
    finally:
        for conn in held_connections:
            await conn.close()
    send(client, A, "once there is room")
    await ping(client)
    assert await stored(server, "alice") == 1


@ONLY_POSTGRESQL  # cutting the server's connections (pg_terminate_backend)
async def test_a_database_hiccup_at_session_end_loses_nothing(bob: Any) -> None:
    """Every database connection is cut as alice's session ends: her contacts still see her
    go and what she never acknowledged is still stored (retried, not dropped)."""
    server, client = bob
    assert server.host is not None
    raw = await SmRaw.login(server)
    await raw.enable()
    await raw.send("<presence/>")
    await client.next("presence", lambda p: p["from"] == A + "/raw")
    for i in range(5):  # within sm_max_unacked
        send(client, A + "/raw", f"unacked {i}")
    for i in range(5):
        await raw.next(message(f"unacked {i}"))
    await raw.send("<r xmlns='urn:xmpp:sm:3'/>")
    await raw.next(sm("a"))
    await cut_connections(server)
    await raw.send("</stream:stream>")
    await raw.until_closed()
    await client.next("presence", lambda p: p["from"] == A + "/raw"
                      and p["type"] == "unavailable")
    await eventually(lambda: _is(stored(server, "alice"), 5))


async def cut_connections(server: Server) -> None:
    """PostgreSQL ends every connection the server has to its database."""
    import asyncpg

    from tests.support.databases import ADMIN_DSN

    assert server.host is not None
    database = server.host.storage._engine.url.database
    conn = await asyncpg.connect(ADMIN_DSN, timeout=5)
    try:
        await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = $1 AND pid <> pg_backend_pid()", database)
    finally:
        await conn.close()


@ONLY_POSTGRESQL
async def test_connections_cut_during_traffic_bounce_nothing(bob: Any) -> None:
    """The database cuts every connection while messages are being stored offline: the
    statements on the dead connections are tried again, nothing bounces, all are stored."""
    server, client = bob
    assert server.host is not None
    errors: list[Any] = []
    client.add_event_handler("message_error", errors.append)
    for i in range(25):
        send(client, A, f"before {i}")
    await ping(client)
    await cut_connections(server)
    for i in range(25):
        send(client, A, f"after {i}")
    await ping(client)
    assert errors == []
    assert await stored(server, "alice") == 50
