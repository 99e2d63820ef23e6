"""Outgoing links: queueing while connecting, a peer restarting, timeouts, idle streams."""

from __future__ import annotations

import asyncio

from tests.federation.helpers import body, chat, close, eventually, user


async def test_stanzas_wait_while_the_peer_restarts(federation):
    a, b = await federation.start()
    alice = await user(a, "alice")
    bob = await user(b, "bob")
    chat(alice, "bob@b.test", "before")
    await bob.next("message", body("before"))
    await bob.close()
    await federation.b.stop()
    # b.test is down: a.test keeps these while it retries, in order
    for i in range(3):
        chat(alice, "bob@b.test", f"queued {i}")
    links = a.federation.links
    await eventually(lambda: ("a.test", "b.test") in links
                     and len(links[("a.test", "b.test")].queue) == 3)
    link = links[("a.test", "b.test")]
    assert [s.el.findtext("{jabber:client}body") for s in link.queue] == \
        ["queued 0", "queued 1", "queued 2"]
    assert not link.ready
    b = await federation.b.start()
    # delivered once b.test is back: stored offline for bob, in order
    for _ in range(300):
        if await b.host.storage.offline.count("bob") == 3:
            break
        await asyncio.sleep(0.02)
    bob = await user(b, "bob")
    for i in range(3):
        await bob.next("message", body(f"queued {i}"))
    chat(bob, "alice@a.test", "back")
    await alice.next("message", body("back"))
    await close(alice, bob)


async def test_unreachable_peer_bounces_with_a_timeout(federation):
    a, _ = await federation.start(a={"s2s": {"connect_timeout": 0.5}})
    await federation.b.stop()
    alice = await user(a, "alice")
    chat(alice, "bob@b.test", "anyone there?")
    err = await alice.next("all", lambda m: m["type"] == "error")
    assert err["from"] == "bob@b.test"
    assert err["error"]["condition"] == "remote-server-timeout"
    assert err.xml.findtext("{jabber:client}body") == "anyone there?"
    assert ("a.test", "b.test") not in a.federation.links
    # an IQ too
    iq = alice.make_iq_get(ito="b.test")
    iq.enable("ping")
    from slixmpp.exceptions import IqError
    try:
        await iq.send(timeout=5)
    except IqError as exc:
        assert exc.iq["error"]["condition"] == "remote-server-timeout"
    else:
        raise AssertionError("no error")
    await close(alice)


async def test_idle_streams_close_and_reopen(federation):
    a, b = await federation.start(a={"s2s": {"idle_timeout": 0.3}},
                                  b={"s2s": {"idle_timeout": 0.3}})
    alice = await user(a, "alice")
    bob = await user(b, "bob")
    chat(alice, "bob@b.test", "one")
    await bob.next("message", body("one"))
    first = a.federation.links[("a.test", "b.test")].stream
    await asyncio.wait_for(first.connection.lost, 5)  # closed for idleness
    assert not a.federation.links and not b.federation.incoming
    chat(alice, "bob@b.test", "two")
    await bob.next("message", body("two"))
    assert a.federation.links[("a.test", "b.test")].stream is not first
    await close(alice, bob)
