"""Operating a cluster: readiness follows Redis and the node's lease; ``cluster status``."""

from __future__ import annotations

import asyncio
import os

import aiohttp

from tests.cluster.conftest import Cluster, login
from tests.cluster.test_workers import _xmppd
from tests.web_bridge.clients import base_url


async def test_readyz_follows_the_lease(cluster: Cluster) -> None:
    node = await cluster.start()
    assert node.cluster is not None
    async with aiohttp.ClientSession() as http:
        async with http.get(base_url(node) + "/readyz") as response:
            assert response.status == 200
            assert await response.json() == {"status": "ok", "storage": "up", "cluster": "up"}
        # The lease is taken away (as if the node had been cut off long enough): the node
        # notices at its next renewal, stops serving and is no longer ready.
        await node.cluster.redis.delete(cluster_key(cluster, node.cluster.node))
        async with asyncio.timeout(5):
            while not node.cluster.membership.lost:  # noqa: ASYNC110 (no event for it)
                await asyncio.sleep(0.05)
        assert node.failure is not None and "lease" in node.failure
        async with http.get(base_url(node) + "/readyz") as response:
            assert response.status == 503
            assert (await response.json())["cluster"] == "down"


def cluster_key(cluster: Cluster, node: str) -> str:
    return f"xmppd:{cluster.domain}:lease:{node}"


async def test_cluster_status(cluster: Cluster) -> None:
    a, b = await cluster.start(), await cluster.start()
    assert a.cluster is not None and b.cluster is not None
    alice, bob = await login(a, "alice"), await login(b, "bob", "one")
    bob2 = await login(b, "bob", "two")
    try:
        await a.cluster.directory.flush()
        await b.cluster.directory.flush()
        env = {k: v for k, v in os.environ.items() if not k.startswith("XMPPD_")}
        env.update({"XMPPD_SERVER_DOMAIN": cluster.domain,
                    "XMPPD_STORAGE_URL": a.config.storage.url,
                    "XMPPD_CLUSTER_REDIS_URL": cluster.redis_url})
        code, out = await _xmppd(env, "cluster", "status")
        assert code == 0, out
        lines = dict(line.split("\t", 1) for line in out.strip().splitlines())
        assert lines[a.cluster.node].startswith("live\tup ")
        assert lines[a.cluster.node].endswith("sessions=1\trooms=0")
        assert lines[b.cluster.node].endswith("sessions=2\trooms=0")
    finally:
        for client in (alice, bob, bob2):
            await client.close()
