"""Clusters of nodes in the test process: each a ``Server`` on its own loopback address
(127.0.0.2, .3, .4), all on the machine's PostgreSQL and Redis, with a domain of their own
so tests never see each other's keys."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis

from tests.support.clients import TIMEOUT, Client
from tests.support.databases import reset_postgres, unavailable
from tests.support.server import ServerFactory
from xmpp_server.server import Server

REDIS_URL = os.environ.get("XMPPD_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:
        unavailable("Redis", repr(exc))
    finally:
        await client.aclose()
    yield REDIS_URL


class Cluster:
    """Nodes of one domain; ``start()`` adds one, ``kill(node)`` makes one vanish."""

    def __init__(self, tmp_path: Path, db_url: str, redis_url: str) -> None:
        self.domain = f"c{secrets.token_hex(4)}.example"
        self.factory = ServerFactory(tmp_path, db_url)
        self.redis_url = redis_url
        self.nodes: list[Server] = []

    async def start(self, **sections: dict[str, Any]) -> Server:
        n = len(self.nodes) + 2
        cluster = {"redis_url": self.redis_url, "node": f"node{n}", "lease_ttl": 1.0,
                   **sections.pop("cluster", {})}
        c2s = {"bind": f"127.0.0.{n}", **sections.pop("c2s", {})}
        server = await self.factory.start(self.domain, cluster=cluster, c2s=c2s, **sections)
        self.nodes.append(server)
        return server

    async def kill(self, server: Server) -> None:
        """The node vanishes as in a crash: no goodbye to Redis, its clients cut off."""
        cluster = server.cluster
        assert cluster is not None
        await cluster.membership.stop()  # no more renewals: the lease runs out
        await cluster.inbox.stop()  # what arrives stays in its inbox
        await cluster.outbox.stop()
        await cluster.directory.stop()
        await cluster.directory.stop_listening()
        server.cluster = None  # stop() must not leave cleanly; nothing it sends gets out
        self.nodes.remove(server)
        await self.factory.stop(server)
        await cluster.redis.aclose()

    async def close(self) -> None:
        await self.factory.close()
        client = redis.Redis.from_url(self.redis_url)
        try:
            keys = [k async for k in client.scan_iter(match=f"xmppd:{self.domain}:*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()


@pytest.fixture
async def cluster(tmp_path: Path, postgres_url: str, redis_url: str) -> AsyncIterator[Cluster]:
    await reset_postgres(postgres_url)
    nodes = Cluster(tmp_path, postgres_url, redis_url)
    try:
        yield nodes
    finally:
        await nodes.close()


async def login(server: Server, user: str, resource: str = "test", password: str = "secret",
                plugins: tuple[str, ...] = ()) -> Client:
    """A slixmpp client of ``user`` on the node ``server`` (the account created if new)."""
    assert server.host is not None
    if not await server.host.accounts.exists(user):
        await server.host.accounts.create(user, password)
    client = Client(f"{user}@{server.host.domain}/{resource}", password, plugins)
    client.connect(server.config.c2s.bind, server.c2s_port)
    await asyncio.wait_for(client.started, TIMEOUT)
    return client


async def settled(*nodes: Server, timeout: float = 5.0) -> None:
    """Wait until every node's directory writes are out and every replica agrees."""
    for node in nodes:
        assert node.cluster is not None
        await node.cluster.directory.flush()
    await asyncio.sleep(0.05)  # the channel delivers to the other nodes' replicas


@pytest.fixture(autouse=True)
async def watchdog() -> AsyncIterator[None]:
    """A cluster test that hangs fails after two minutes, printing (to the real stderr, not
    the captured one) what every task awaits."""
    loop = asyncio.get_running_loop()

    def expire() -> None:
        out = sys.__stderr__
        print("a cluster test hung for 120 s; what each task awaits:", file=out)
        for task in asyncio.all_tasks(loop):
            task.print_stack(file=out)
        for task in asyncio.all_tasks(loop):
            task.cancel("the test hung")

    handle = loop.call_later(120, expire)
    try:
        yield
    finally:
        handle.cancel()
