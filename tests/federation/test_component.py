"""XEP-0114 external components: a slixmpp ComponentXMPP bot on its own subdomain."""

from __future__ import annotations

import asyncio
from typing import Any

import slixmpp

from tests.federation.helpers import body, chat, close, iq_error, user
from tests.support.clients import RawClient


class Bot(slixmpp.ComponentXMPP):
    """Echoes every chat message back, from the address it was sent to."""

    def __init__(self, jid: str, secret: str) -> None:
        super().__init__(jid, secret)
        self.received: asyncio.Queue[Any] = asyncio.Queue()
        self.started: asyncio.Future[bool] = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", lambda _: self.started.done()
                               or self.started.set_result(True))
        self.add_event_handler("message", self._echo)

    def _echo(self, msg: Any) -> None:
        self.received.put_nowait(msg)
        if msg["type"] in ("chat", "normal"):
            self.send_message(mto=msg["from"], mfrom=msg["to"], mbody="echo: " + msg["body"],
                              mtype="chat")

    async def start(self, port: int) -> None:
        self.connect("127.0.0.1", port)
        await asyncio.wait_for(self.started, 10)

    async def stop(self) -> None:
        self.disconnect()
        await asyncio.wait_for(self.disconnected, 10)


async def test_bot_talks_with_local_users(servers):
    server = await servers.start(components={"port": 0, "secrets": "bot.localhost=s3cret"})
    bot = Bot("bot.localhost", "s3cret")
    await bot.start(server.components.port)
    alice = await user(server, "alice")
    chat(alice, "echo@bot.localhost", "hello bot")
    got = await bot.received.get()
    assert got["from"] == "alice@localhost/test" and got["to"] == "echo@bot.localhost"
    reply = await alice.next("message", body("echo: hello bot"))
    assert reply["from"] == "echo@bot.localhost"
    # IQs reach it too, and the router's errors come back for what it does not know
    # slixmpp's component answers an IQ it has no handler for with feature-not-implemented
    assert await iq_error(alice, "bot.localhost", "<query xmlns='jabber:iq:version'/>") \
        == "feature-not-implemented"
    await bot.stop()
    # once the bot is gone its domain is unknown to the server
    chat(alice, "echo@bot.localhost", "anyone?")
    err = await alice.next("all", lambda m: m["type"] == "error")
    assert err["error"]["condition"] in ("remote-server-not-found", "service-unavailable")
    await close(alice)


async def test_wrong_secret_unknown_domain_and_conflict(servers):
    server = await servers.start(components={"port": 0, "secrets": "bot.localhost=s3cret"})
    port = server.components.port
    for domain, error in (("other.localhost", b"<host-unknown"), ("bot.localhost", None)):
        raw = await RawClient.open(server, port)
        await raw.send(f"<stream:stream xmlns='jabber:component:accept' "
                       f"xmlns:stream='http://etherx.jabber.org/streams' to='{domain}'>"
                       .encode())
        if error is not None:
            assert error in await raw.read_until_closed()
            continue
        await raw.expect(b"id=")
        await raw.send(b"<handshake>0000</handshake>")
        assert b"<not-authorized" in await raw.read_until_closed()
    bot = Bot("bot.localhost", "s3cret")
    await bot.start(port)
    second = Bot("bot.localhost", "s3cret")
    second.connect("127.0.0.1", port)
    await asyncio.wait_for(second.disconnected, 10)  # <conflict/>: one connection per domain
    assert not second.started.done()
    alice = await user(server, "alice")
    chat(alice, "bot.localhost", "still the first one")
    await alice.next("message", body("echo: still the first one"))
    await bot.stop()
    await close(alice)


async def test_remote_users_reach_a_component(federation):
    a, b = await federation.start(a={"components": {"port": 0, "secrets": "bot.a.test=s3"}})
    bot = Bot("bot.a.test", "s3")
    await bot.start(a.components.port)
    bob = await user(b, "bob")
    chat(bob, "echo@bot.a.test", "from afar")
    got = await bot.received.get()
    assert got["from"] == "bob@b.test/test"
    await bob.next("message", body("echo: from afar"))
    # the component's own stanzas go out over the pair bot.a.test -> b.test
    assert ("bot.a.test", "b.test") in a.federation.links
    await bot.stop()
    await close(bob)
