"""Operating a cluster node: readiness follows Redis and the node's lease."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.cluster.conftest import Cluster
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
