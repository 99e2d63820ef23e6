"""A cluster node is kill -9'd mid-conversation: nothing either side was acknowledged is lost.

Two ``xmppd serve`` processes (nodes a and b) share PostgreSQL and Redis. alice, on a, sends
numbered messages to bob's bare JID, asking for XEP-0198 acks as she goes; bob is on b, with
stream management. Once a quarter of the messages are acknowledged, b is kill -9'd: bob
reconnects to a (his old session cannot be resumed there: it died with its node) and alice
sends the rest. Every message the server acknowledged to alice must reach bob at least once,
live or from offline storage, and be in his archive once; the dead node's entries leave Redis
within two lease periods. Copies beyond the first (what bob had received but not yet
acknowledged when b died, and what a routed to bob's resource on b before it noticed b was
gone) are counted and reported; each carries the stanza-id of the first, so a client drops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as redis

from tests.soak.support import Closed, Received, ServerProcess, SmClient
from tests.soak.test_kill9 import collect
from tests.support.databases import postgres_database

pytestmark = pytest.mark.slow

TOTAL = 600
KILL_AT = TOTAL // 4
BATCH = 25
LEASE = 1.0


@pytest.fixture
def cluster_db() -> Iterator[str]:
    yield from postgres_database("xmppd_cluster")


async def _send(alice: SmClient, bob_jid: str, numbers: range) -> None:
    for start in range(numbers.start, numbers.stop, BATCH):
        for i in range(start, min(start + BATCH, numbers.stop)):
            alice.send_chat(bob_jid, f"m{i:05d}")
        alice.request_ack()
        await alice.drain()
        await alice.wait_acked(4 * BATCH, timeout=30)
        await asyncio.sleep(0.02)


async def test_kill9_of_a_node_loses_nothing(tmp_path: Path, cluster_db: str,
                                             redis_url: str) -> None:
    domain = f"k{secrets.token_hex(4)}.example"
    nodes = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        nodes.append(ServerProcess(
            tmp_path / name, cluster_db, domain,
            cluster={"redis_url": redis_url, "node": name, "lease_ttl": LEASE},
            c2s={"sm_resume_timeout": 5}, limits={"max_offline_messages": 10 * TOTAL}))
    a, b = nodes
    await a.create_accounts(["alice", "bob"])
    for node in nodes:
        await node.start()
    check = redis.Redis.from_url(redis_url)
    received: list[Received] = []
    alice = SmClient(a.port, "alice", "desk", domain=domain)
    bob = SmClient(b.port, "bob", "phone", domain=domain, on_message=received.append)
    try:
        await alice.login(presence=False)
        await bob.login()
        await bob.ping()
        await asyncio.sleep(0.3)  # a's replica has bob
        bob_jid = f"bob@{domain}"
        await _send(alice, bob_jid, range(0, KILL_AT))
        before_kill = len(received)
        await b.kill9()
        bob.abort()
        dead_at = asyncio.get_running_loop().time()
        # bob comes back through the surviving node, alice goes on sending
        bob.port = a.port
        with contextlib.suppress(Closed, TimeoutError):
            await bob.login(resume=True)  # b's session died with it: a new one on a
        assert not bob.resumed
        await _send(alice, bob_jid, range(KILL_AT, TOTAL))
        # the dead node's traces are gone within two lease periods (and a look more)
        async with asyncio.timeout(4 * LEASE + 2):
            while True:
                nodes_left = [n.decode() for n in await check.hkeys(f"xmppd:{domain}:nodes")]
                entries = await check.hgetall(f"xmppd:{domain}:user:bob")
                if not any(n.startswith("b/") for n in nodes_left) and not any(
                        json.loads(v)["node"].startswith("b/") for v in entries.values()):
                    break
                await asyncio.sleep(0.1)
        cleaned_in = asyncio.get_running_loop().time() - dead_at
        await collect(bob, received, quiet=1.5)
        archive = await bob.archive()
        acked = alice.acked_bodies()
    finally:
        alice.abort()
        bob.abort()
        for node in nodes:
            await node.stop()
        keys = [k async for k in check.scan_iter(match=f"xmppd:{domain}:*")]
        if keys:
            await check.delete(*keys)
        await check.aclose()

    copies = Counter(m.body for m in received)
    archived = Counter(body for _, body in archive)
    lost = [body for body in acked if not copies[body]]
    not_archived = [body for body in acked if not archived[body]]
    twice_archived = [body for body, n in archived.items() if n > 1]
    extra = sum(n - 1 for n in copies.values())
    ids: dict[str, set[str | None]] = {}
    for m in received:
        ids.setdefault(m.body, set()).add(m.stanza_id)
    split = [body for body, s in ids.items() if len(s) != 1 or None in s]
    figures = (f"alice acked {len(acked)} of {TOTAL}; bob got {len(received)} "
               f"({before_kill} before the kill, {len(copies)} distinct); acked but never "
               f"delivered: {len(lost)}; copies beyond the first: {extra}; archive: "
               f"{len(archive)} rows, acked not archived {len(not_archived)}, archived twice "
               f"{len(twice_archived)}; copies with another stanza-id: {len(split)}; "
               f"dead node cleaned up in {cleaned_in:.1f} s; "
               f"e.g. lost {lost[:3]}")
    print(figures)
    assert len(acked) == TOTAL, figures
    assert not lost, figures
    assert not not_archived and not twice_archived, figures
    assert not split, figures  # a client can drop the copies: each has the first's id
