"""XEP-0160 offline messages with XEP-0203 delay: storing, delivering, quota, durability."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from storage import open_storage
from tests.scenarios.test_messages import STANZA_ID, body_is, close, is_error, online, ping, send
from tests.support.clients import TIMEOUT, Client, connect
from xmpp_server.accounts import Accounts
from xmpp_server.server import Server

HINTS = "urn:xmpp:hints"


def errors_of(client: Client) -> None:
    """Collect message errors too (slixmpp's "message" event needs a <body/>)."""
    client.queues["message_error"] = asyncio.Queue()
    client.add_event_handler("message_error", client.queues["message_error"].put_nowait)


async def stored(server: Server, user: str) -> int:
    assert server.host is not None
    return await server.host.storage.offline.count(user)


def assert_delayed(msg: Any) -> None:
    assert msg["delay"]["from"] == "localhost"
    assert msg["delay"]["stamp"] is not None
    assert msg["delay"]["text"] == "Offline Storage"


async def test_stored_then_delivered_in_order_with_delay(server):
    await server.host.accounts.create("bob", "secret")
    alice = await online(server, "alice")
    try:
        for i in range(5):
            send(alice, "bob@localhost", f"m{i}", type_="chat" if i % 2 else "normal")
        await ping(alice)
        await alice.nothing("message", is_error, wait=0)
        assert await stored(server, "bob") == 5

        bob = await online(server, "bob", "phone", priority=0, create=False)
        got = [await bob.next("message") for _ in range(5)]
        assert [m["body"] for m in got] == [f"m{i}" for i in range(5)]
        for m in got:
            assert m["from"] == "alice@localhost/test"
            assert m["to"] == "bob@localhost"
            assert_delayed(m)
            assert m["stanza_id"]["by"] == "bob@localhost"
        assert got[0]["delay"]["stamp"] <= got[-1]["delay"]["stamp"]
        assert len({m["stanza_id"]["id"] for m in got}) == 5
        assert await stored(server, "bob") == 0  # deleted once written (bob's ping: handled)

        # Delivered once: a second resource coming online gets nothing.
        bob2 = await online(server, "bob", "desk", priority=0, create=False)
        await bob2.nothing("message", wait=0.3)
        await close(bob, bob2)
    finally:
        await alice.close()


async def test_live_messages_after_delivery_are_not_delayed(server):
    await server.host.accounts.create("bob", "secret")
    alice = await online(server, "alice")
    try:
        send(alice, "bob@localhost", "while away")
        await ping(alice)
        bob = await online(server, "bob", create=False)
        assert_delayed(await bob.next("message", body_is("while away")))
        send(alice, "bob@localhost", "now")
        live = await bob.next("message", body_is("now"))
        assert not live.xml.findall("{urn:xmpp:delay}delay")
        await bob.close()
    finally:
        await alice.close()


async def test_negative_priority_neither_receives_nor_triggers_delivery(server):
    await server.host.accounts.create("bob", "secret")
    alice = await online(server, "alice")
    bob_neg = None
    try:
        send(alice, "bob@localhost", "before")
        await ping(alice)
        # XEP-0160 §2 / RFC 6121 §8.5.2.1.1: negative presence gets no offline messages...
        bob_neg = await online(server, "bob", "neg", priority=-1, create=False)
        await bob_neg.nothing("message", wait=0.3)
        assert await stored(server, "bob") == 1
        send(alice, "bob@localhost", "during")  # ...and does not count as available
        await ping(alice)
        await alice.nothing("message", is_error, wait=0)
        assert await stored(server, "bob") == 2
        await bob_neg.nothing("message", wait=0.2)

        bob = await online(server, "bob", "pos", priority=0, create=False)
        got = [(await bob.next("message"))["body"] for _ in range(2)]
        assert got == ["before", "during"]
        await bob_neg.nothing("message", wait=0.2)
        await close(bob)
    finally:
        await close(alice, *([bob_neg] if bob_neg else []))


async def test_full_jid_of_offline_user_is_stored(server):
    await server.host.accounts.create("bob", "secret")
    alice = await online(server, "alice")
    try:
        send(alice, "bob@localhost/gone", "to a resource")  # RFC 6121 §8.5.3.2.1
        await ping(alice)
        assert await stored(server, "bob") == 1
        bob = await online(server, "bob", create=False)
        await bob.next("message", body_is("to a resource"))
        await bob.close()
    finally:
        await alice.close()


async def test_what_is_not_stored(server):
    await server.host.accounts.create("bob", "secret")
    alice = await online(server, "alice")
    errors_of(alice)
    try:
        chat_state = ET.Element("{http://jabber.org/protocol/chatstates}composing")
        send(alice, "bob@localhost", None, extra=[chat_state])  # XEP-0160 §3
        err = await alice.next("message_error")
        assert err["error"]["condition"] == "service-unavailable"

        no_store = ET.Element(f"{{{HINTS}}}no-store")  # XEP-0334
        send(alice, "bob@localhost", "secret", extra=[no_store])
        err = await alice.next("message_error")
        assert err["body"] == "secret"
        assert not err.xml.findall(STANZA_ID)  # the id of a message nobody keeps is not leaked

        for type_ in ("headline", "error"):
            send(alice, "bob@localhost", type_, type_=type_)
        await ping(alice)
        assert await stored(server, "bob") == 0

        store = ET.Element(f"{{{HINTS}}}store")  # XEP-0334: store even without a body
        receipt = ET.Element("{urn:xmpp:receipts}received", {"id": "r1"})
        send(alice, "bob@localhost", None, extra=[store, receipt])
        await ping(alice)
        await alice.nothing("message_error", wait=0)
        assert await stored(server, "bob") == 1
    finally:
        await alice.close()


async def test_quota(servers):
    server = await servers.start(limits={"max_offline_messages": 3})
    await server.host.accounts.create("bob", "secret")
    alice = await online(server, "alice")
    try:
        for i in range(4):
            send(alice, "bob@localhost", f"q{i}")
        err = await alice.next("message", is_error)
        assert err["body"] == "q3"
        assert err["error"]["condition"] == "service-unavailable"
        assert err["error"]["text"] == "offline message storage of bob@localhost is full"
        assert not err.xml.findall(STANZA_ID)
        bob = await online(server, "bob", create=False)
        got = [(await bob.next("message"))["body"] for _ in range(3)]
        assert got == ["q0", "q1", "q2"]
        await bob.nothing("message", wait=0.3)
        await bob.close()
    finally:
        await alice.close()


# -- races between storing and coming online --------------------------------------------------

def gate(target: object, name: str) -> tuple[asyncio.Event, asyncio.Event]:
    """Hold calls of ``target.name`` until the returned ``release`` is set."""
    entered, release = asyncio.Event(), asyncio.Event()
    real: Callable[..., Awaitable[Any]] = getattr(target, name)

    async def held(*args: Any, **kw: Any) -> Any:
        entered.set()
        await release.wait()
        return await real(*args, **kw)

    setattr(target, name, held)
    return entered, release


def initial_presence_seen(server: Server) -> asyncio.Event:
    seen = asyncio.Event()
    assert server.host is not None
    server.host.events.on("initial-presence", lambda _session: seen.set(), priority=100)
    return seen


async def test_delivery_waits_for_a_store_in_progress(server):
    await server.host.accounts.create("bob", "secret")
    alice = await online(server, "alice")
    entered, release = gate(server.host.storage.offline, "store")
    seen = initial_presence_seen(server)
    try:
        send(alice, "bob@localhost", "racing")
        await entered.wait()
        bob = await connect(server, "bob", create=False)
        bob.send_presence()
        await seen.wait()
        release.set()
        await bob.next("message", body_is("racing"))
        await ping(bob)
        assert await stored(server, "bob") == 0
        await bob.close()
    finally:
        await alice.close()


async def test_message_stored_after_delivery_is_handed_over(server):
    await server.host.accounts.create("bob", "secret")
    alice = await online(server, "alice")
    # Routed to storage while bob is away, but stored only after his delivery ran.
    entered, release = gate(server.host.accounts, "exists")
    try:
        send(alice, "bob@localhost", "late")
        await entered.wait()
        bob = await online(server, "bob", create=False)  # initial delivery: nothing yet
        release.set()
        await bob.next("message", body_is("late"))
        await ping(alice)
        assert await stored(server, "bob") == 0
        await bob.close()
    finally:
        await alice.close()


async def test_two_resources_coming_online_at_once_get_it_once(server):
    await server.host.accounts.create("bob", "secret")
    alice = await online(server, "alice")
    try:
        send(alice, "bob@localhost", "once")
        await ping(alice)
        entered, release = gate(server.host.storage.offline, "fetch")
        both = asyncio.Event()
        seen: list[object] = []

        def count(session: object) -> None:
            seen.append(session)
            if len(seen) == 2:
                both.set()

        server.host.events.on("initial-presence", count, priority=100)
        bob_a = await connect(server, "bob", resource="a", create=False)
        bob_b = await connect(server, "bob", resource="b", create=False)
        bob_a.send_presence()
        bob_b.send_presence()
        await entered.wait()
        await both.wait()
        release.set()
        await ping(bob_a)
        await ping(bob_b)
        got = [c for c in (bob_a, bob_b) if not c.queues["message"].empty()]
        assert len(got) == 1  # XEP-0160 §2: to the resource whose presence came first
        await got[0].next("message", body_is("once"))
        await got[0].nothing("message", wait=0.2)
        assert await stored(server, "bob") == 0
        await close(bob_a, bob_b)
    finally:
        await alice.close()


# -- durability -------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def server_process(db_url: str, tmp_path: Path) -> AsyncIterator[int]:
    """``python -m xmpp_server`` on the embedded defaults and ``db_url``; yields its c2s port.

    Leaving the block kills it with SIGKILL: no shutdown code runs.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("XMPPD_")}
    env.update({
        "XMPPD_SERVER_DATA_DIR": str(tmp_path / "data"),
        "XMPPD_STORAGE_URL": db_url,
        "XMPPD_C2S_PORT": str(port),
        "XMPPD_C2S_DIRECT_TLS_PORT": "0",
        "XMPPD_HTTP_ENABLED": "false",
        "XMPPD_S2S_ENABLED": "false",
    })
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    with (tmp_path / "server.log").open("ab") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "xmpp_server", cwd=cwd, env=env, stdout=log, stderr=log,
        )
    try:
        async with asyncio.timeout(30):
            while True:  # polling a port: there is nothing to await
                if proc.returncode is not None:
                    log_text = (tmp_path / "server.log").read_text()
                    raise RuntimeError(f"the server exited with {proc.returncode}:\n{log_text}")
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    await asyncio.sleep(0.05)
                    continue
                writer.close()
                break
        yield port
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()


async def login(port: int, user: str) -> Client:
    client = Client(f"{user}@localhost/test", "secret", plugins=("xep_0203",))
    client.connect("127.0.0.1", port)
    await asyncio.wait_for(client.started, TIMEOUT)
    return client


@pytest.mark.slow
async def test_nothing_lost_across_kill_9(db_url: str, tmp_path: Path):
    async with await open_storage(db_url) as storage:
        accounts = Accounts(storage)
        await accounts.create("alice", "secret")
        await accounts.create("bob", "secret")

    async with server_process(db_url, tmp_path) as port:
        alice = await login(port, "alice")
        for i in range(20):
            send(alice, "bob@localhost", f"durable {i}")
        # No XMPP signal says "stored"; but a session's stanzas are handled in order, so the
        # answer to this ping proves the 20 messages went through storage first.
        await ping(alice)
        await alice.nothing("message", is_error, wait=0)
    # killed -9 here
    alice.disconnect()

    async with server_process(db_url, tmp_path) as port:
        bob = await login(port, "bob")
        bob.send_presence()
        got = [await bob.next("message") for _ in range(20)]
        assert [m["body"] for m in got] == [f"durable {i}" for i in range(20)]
        for m in got:
            assert_delayed(m)
        await ping(bob)  # delivery and deletion are done when the presence is handled
        bob.disconnect()

    async with await open_storage(db_url) as storage:
        assert await storage.offline.count("bob") == 0
