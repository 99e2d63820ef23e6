"""XEP-0198 stream management: acks both ways, resumption, and no loss when a session ends.

A raw client (``SmRaw``) speaks the protocol by hand where the counts must be exact; slixmpp's
own xep_0198 plugin shows a real client resuming. Resumption timeouts are 1-2 seconds.
"""

from __future__ import annotations

import asyncio
import base64
import time
from datetime import datetime
from typing import Any

import pytest
from lxml import etree
from slixmpp.exceptions import IqError

from tests.scenarios.test_messages import ping, send
from tests.scenarios.test_roster_presence import befriend, presence
from tests.support.clients import TIMEOUT, Client, Pred, StreamClient, connect
from xmpp_server.jid import JID
from xmpp_server.server import Server

SM = "urn:xmpp:sm:3"
S = "{" + SM + "}"
C = "{jabber:client}"
STREAM_ERROR = "{http://etherx.jabber.org/streams}error"
DELAY = "{urn:xmpp:delay}delay"
A = "alice@localhost"


class SmRaw(StreamClient):
    """A client stream by hand over plain TCP: PLAIN login, bind, then XEP-0198 elements."""

    @classmethod
    async def login(cls, server: Server, user: str = "alice", resource: str | None = "raw",
                    password: str = "secret") -> SmRaw:
        """Authenticated; bound to ``resource`` unless it is None."""
        raw = await cls.open(server)
        await raw.open_stream()
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        await raw.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                       f"{token}</auth>")
        await raw.next(lambda e: e.tag.endswith("}success"))
        raw.restart()
        features = await raw.open_stream()
        assert features.find(S + "sm") is not None  # §2: offered after authentication
        if resource is not None:
            await raw.bind(resource)
        return raw

    async def bind(self, resource: str) -> None:
        await self.send(f"<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:"
                        f"xmpp-bind'><resource>{resource}</resource></bind></iq>")
        await self.next(lambda e: e.get("id") == "bind" and e.get("type") == "result")

    async def enable(self, resume: bool = True) -> etree._Element:
        await self.send(f"<enable xmlns='{SM}'" + (" resume='true'/>" if resume else "/>"))
        enabled = await self.next(sm("enabled"))
        self.stanzas.clear()  # §4: counting starts now
        return enabled

    def h_through(self, pred: Pred) -> int:
        """The 'h' that acknowledges every stanza up to the one matching ``pred``."""
        return next(i for i, el in enumerate(self.stanzas, 1) if pred(el))


def sm(name: str, **attrs: str) -> Pred:
    return lambda e: e.tag == S + name and all(e.get(k) == v for k, v in attrs.items())


def message(body: str) -> Pred:
    return lambda e: e.tag == C + "message" and e.findtext(C + "body") == body


def session_of(server: Server, jid: str) -> Any:
    assert server.host is not None
    return server.host.sessions.get(JID.parse(jid))


async def stored(server: Server, user: str) -> int:
    assert server.host is not None
    return await server.host.storage.offline.count(user)


async def sm_client(server: Server, user: str) -> Client:
    """A slixmpp client with its XEP-0198 plugin, once stream management is enabled."""
    client = Client(f"{user}@localhost/phone", "secret", ("xep_0198", "xep_0203"))
    enabled: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_enabled(_: Any) -> None:
        if not enabled.done():
            enabled.set_result(None)

    client.add_event_handler("sm_enabled", on_enabled)
    client.connect("127.0.0.1", server.c2s_port)
    await asyncio.wait_for(asyncio.gather(client.started, enabled), TIMEOUT)
    return client


@pytest.fixture
async def server(servers: Any) -> Server:
    srv: Server = await servers.start(c2s={"require_tls": False, "sm_resume_timeout": 1})
    await befriend(srv, "alice", "bob")
    return srv


@pytest.fixture
async def bob(server: Server) -> Any:
    client = await connect(server, "bob", get_roster=True, send_presence=True,
                           plugins=("xep_0203",))
    client.auto_authorize = None
    yield client
    await client.close()


# -- enabling and acks (§3, §4) ---------------------------------------------------------------

async def test_enable_and_acks_both_ways(server: Server) -> None:
    raw = await SmRaw.login(server, resource=None)
    await raw.send(f"<enable xmlns='{SM}'/>")  # §3: not before binding
    failed = await raw.next(sm("failed"))
    assert failed[0].tag.endswith("}unexpected-request")
    await raw.bind("raw")
    enabled = await raw.enable()
    assert enabled.get("resume") == "true" and enabled.get("max") == "1" and enabled.get("id")
    await raw.send(f"<enable xmlns='{SM}'/>")  # only once
    await raw.next(sm("failed"))

    for i in range(3):
        await raw.send(f"<iq type='get' id='p{i}' to='localhost'><ping xmlns='urn:xmpp:ping'/>"
                       "</iq>")
    await raw.send(f"<r xmlns='{SM}'/>")
    await raw.next(sm("a", h="3"))  # the client's three stanzas were handled
    for i in range(3):
        await raw.next(lambda e, i=i: e.get("id") == f"p{i}")  # type: ignore[misc]
    await raw.next(sm("r"))  # the server asks for an ack of its three results, unprompted
    state = session_of(server, A + "/raw").sm
    assert len(state.queue) == 3
    await raw.send(f"<a xmlns='{SM}' h='2'/><r xmlns='{SM}'/>")
    await raw.next(sm("a", h="3"))  # <a/> and <r/> are not stanzas: not counted
    assert len(state.queue) == 1

    await raw.send(f"<a xmlns='{SM}' h='5'/>")  # more than was ever sent
    error = await raw.next(lambda e: e.tag == STREAM_ERROR)
    assert error[0].tag.endswith("}undefined-condition")
    too_high = error.find(S + "handled-count-too-high")
    assert too_high is not None and too_high.get("h") == "5"
    assert too_high.get("send-count") == "3"
    await raw.until_closed()
    assert raw.ended


# -- resumption (§5) --------------------------------------------------------------------------

async def test_slixmpp_resumes_with_presence_kept_and_each_message_once(
        server: Server, bob: Client) -> None:
    alice = await sm_client(server, "alice")
    try:
        alice.send_presence()
        await bob.next("presence", presence(A + "/phone"))
        session = session_of(server, A + "/phone")
        send(bob, A + "/phone", "before")
        await alice.next("message", lambda m: m["body"] == "before")
        alice.abort()
        send(bob, A + "/phone", "during 1")
        send(bob, A, "during 2")
        await ping(bob)
        assert session.detached and session_of(server, A + "/phone") is session

        resumed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        alice.add_event_handler("session_resumed", lambda _: resumed.set_result(None))
        alice.connect("127.0.0.1", server.c2s_port)
        await asyncio.wait_for(resumed, TIMEOUT)
        got = [(await alice.next("message"))["body"] for _ in range(2)]
        assert got == ["during 1", "during 2"]
        await alice.nothing("message", wait=0.3)  # "before" was handled: not sent again
        assert not session.detached and session.available
        await bob.nothing("presence", presence(A + "/phone", "unavailable"), wait=0)
        send(alice, "bob@localhost", "back")
        assert (await bob.next("message"))["body"] == "back"
    finally:
        await alice.close()


async def test_h_counts_and_retransmission_after_resume(server: Server, bob: Client) -> None:
    raw = await SmRaw.login(server)
    previd = (await raw.enable()).get("id")
    await raw.send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    await raw.next(lambda e: e.get("id") == "p1")  # the server's stanza 1
    send(bob, A + "/raw", "m1")
    send(bob, A + "/raw", "m2")
    await raw.next(message("m1"))
    await raw.next(message("m2"))
    await raw.send(f"<a xmlns='{SM}' h='2'/><r xmlns='{SM}'/>")  # m2 never gets handled
    await raw.next(sm("a", h="1"))
    raw.abort()
    send(bob, A + "/raw", "m3")
    await ping(bob)

    again = await SmRaw.login(server, resource=None)
    await again.send(f"<resume xmlns='{SM}' previd='{previd}' h='2'/>")
    await again.next(sm("resumed", previd=previd, h="1"))
    await again.next(message("m2"))
    await again.next(message("m3"))
    await again.nothing(lambda e: e.tag == C + "message")
    await again.send("<iq type='get' id='p2' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
                     f"<r xmlns='{SM}'/>")
    await again.next(sm("a", h="2"))  # the count goes on from the old stream
    await again.next(lambda e: e.get("id") == "p2")
    await again.send(f"<a xmlns='{SM}' h='5'/>")  # m2, m3 and p2: everything, exactly
    await again.send(f"<r xmlns='{SM}'/>")
    await again.next(sm("a"))
    assert len(session_of(server, A + "/raw").sm.queue) == 0
    await again.close()


async def test_resume_with_unknown_or_foreign_previd_fails(server: Server) -> None:
    bobs = await SmRaw.login(server, "bob")
    bobs_id = (await bobs.enable()).get("id")
    raw = await SmRaw.login(server, resource=None)
    for previd in ("no-such-session", bobs_id):
        await raw.send(f"<resume xmlns='{SM}' previd='{previd}' h='0'/>")
        failed = await raw.next(sm("failed"))
        assert failed[0].tag.endswith("}item-not-found")
    await raw.bind("fresh")  # §5: binding is still allowed after a failed resume
    assert session_of(server, A + "/fresh") is not None
    await raw.close()
    await bobs.close()


async def test_resume_while_the_old_stream_is_open_ends_that_stream(
        server: Server, bob: Client) -> None:
    old = await SmRaw.login(server)
    previd = (await old.enable()).get("id")
    new = await SmRaw.login(server, resource=None)
    await new.send(f"<resume xmlns='{SM}' previd='{previd}' h='0'/>")
    await new.next(sm("resumed"))
    error = await old.next(lambda e: e.tag == STREAM_ERROR)
    assert error[0].tag.endswith("}conflict")
    await old.until_closed()
    send(bob, A + "/raw", "to the new stream")
    await new.next(message("to the new stream"))
    await new.close()


# -- the end of a session: nothing lost (§4) --------------------------------------------------

async def test_expiry_sends_unavailable_stores_messages_and_bounces_iqs(
        server: Server, bob: Client) -> None:
    raw = await SmRaw.login(server)
    await raw.enable()
    await raw.send("<presence/>")
    await bob.next("presence", presence(A + "/raw"))
    send(bob, A + "/raw", "seen, never acked")
    await raw.next(message("seen, never acked"))
    raw.abort()
    dropped_at = time.time()
    send(bob, A + "/raw", "while away")
    iq = bob.make_iq_get(ito=A + "/raw")
    iq.enable("ping")
    request = asyncio.ensure_future(bob.query(iq))
    await bob.nothing("presence", presence(A + "/raw", "unavailable"), wait=0.5)
    assert await stored(server, "alice") == 0  # still resumable

    await bob.next("presence", presence(A + "/raw", "unavailable"))
    with pytest.raises(IqError) as info:
        await request
    assert info.value.iq["error"]["condition"] == "service-unavailable"
    assert session_of(server, A + "/raw") is None
    await ping(bob)
    assert await stored(server, "alice") == 2

    alice = await connect(server, "alice", create=False)
    alice.send_presence()
    got = [await alice.next("message") for _ in range(2)]
    assert [m["body"] for m in got] == ["seen, never acked", "while away"]
    for m in got:  # the first <delay/> is the time the server first sent it (XEP-0203)
        stamp = m.xml.find(DELAY).get("stamp")
        assert datetime.fromisoformat(stamp).timestamp() <= dropped_at + 0.5
    await alice.nothing("message", wait=0.3)
    await alice.close()


async def test_clean_close_hands_on_what_was_not_acked(server: Server, bob: Client) -> None:
    raw = await SmRaw.login(server)
    await raw.enable(resume=False)
    await raw.send("<presence/>")
    await bob.next("presence", presence(A + "/raw"))
    for body in ("one", "two", "three"):
        send(bob, A + "/raw", body)
        await raw.next(message(body))
    iq = bob.make_iq_get(ito=A + "/raw")
    iq.enable("ping")
    request = asyncio.ensure_future(bob.query(iq))
    await raw.next(lambda e: e.tag == C + "iq")  # and never answered
    h = raw.h_through(message("one"))  # "one" and the presence before it
    await raw.send(f"<a xmlns='{SM}' h='{h}'/></stream:stream>")
    await raw.until_closed()
    await bob.next("presence", presence(A + "/raw", "unavailable"))  # ended, not detached
    with pytest.raises(IqError):
        await request  # bounced after the messages before it were handed on
    assert await stored(server, "alice") == 2

    alice = await connect(server, "alice", create=False)
    alice.send_presence()
    assert [(await alice.next("message"))["body"] for _ in range(2)] == ["two", "three"]
    await alice.close()


async def test_shutdown_ends_detached_sessions_into_offline_storage(servers: Any) -> None:
    server = await servers.start(c2s={"require_tls": False, "sm_resume_timeout": 60})
    await befriend(server, "alice", "bob")
    raw = await SmRaw.login(server)
    await raw.enable()
    bob = await connect(server, "bob")
    send(bob, A + "/raw", "kept through the restart")
    await raw.next(message("kept through the restart"))
    raw.abort()
    await ping(bob)
    await servers.stop(server)

    again = await servers.start(c2s={"require_tls": False})
    assert await stored(again, "alice") == 1
