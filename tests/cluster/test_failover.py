"""A node that vanishes: its lease runs out, a survivor cleans up and delivers what it held."""

from __future__ import annotations

import asyncio

import redis.asyncio as redis

from tests.cluster.conftest import Cluster, login, settled
from tests.cluster.test_routing import _friends


async def test_a_dead_nodes_sessions_end_and_its_inbox_is_delivered(cluster: Cluster) -> None:
    a, b = await cluster.start(), await cluster.start()
    assert a.cluster is not None and b.cluster is not None
    dead = b.cluster.node
    await _friends(a, "alice", "bob")
    alice = await login(a, "alice")
    bob = await login(b, "bob", "phone")
    try:
        for client in (alice, bob):
            await client.get_roster()
            client.send_presence()
        await alice.next("presence", lambda p: p["from"].bare == f"bob@{cluster.domain}")
        await settled(a, b)
        await cluster.kill(b)  # nothing it does from now on gets out
        # Still in a's view until the lease runs out: this goes to the dead node's inbox.
        alice.send_message(mto=f"bob@{cluster.domain}/phone", mbody="into the void",
                           mtype="chat")
        # RFC 6121 §4.5.2: the survivor tells bob's contacts he went.
        gone = await alice.next("presence", lambda p: p["from"] == f"bob@{cluster.domain}/phone"
                                and p["type"] == "unavailable", timeout=10)
        assert gone is not None
        async with asyncio.timeout(10):
            while dead not in a.cluster.reaper.reaped:  # noqa: ASYNC110 (no event for it)
                await asyncio.sleep(0.1)
        check = redis.Redis.from_url(cluster.redis_url)
        try:
            assert not await check.hexists(f"xmppd:{cluster.domain}:nodes", dead)
            assert not await check.exists(f"xmppd:{cluster.domain}:inbox:{dead}")
            assert not await check.hgetall(f"xmppd:{cluster.domain}:user:bob")
        finally:
            await check.aclose()
        # The message the dead node never delivered waits in offline storage.
        again = await login(a, "bob", "laptop")
        again.send_presence()
        msg = await again.next("message", lambda m: m["body"] == "into the void")
        assert msg.xml.find("{urn:xmpp:delay}delay") is not None  # stored, then delivered
        await again.close()
    finally:
        await alice.close()
        await bob.close()
