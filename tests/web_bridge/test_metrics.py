"""/metrics (Prometheus text format) and /healthz."""

from __future__ import annotations

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.scenarios.test_messages import send
from tests.support.clients import connect
from tests.support.server import ServerFactory
from tests.web_bridge.clients import BoshClient, WsClient, base_url
from xmpp_server.server import Server


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def scrape(server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with aiohttp.ClientSession() as http, http.get(base_url(server) + "/metrics") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return samples(await r.text())


async def test_metrics_count_connections_stanzas_errors_and_storage(server: Server) -> None:
    await server.host.accounts.create("carol", "secret")  # type: ignore[union-attr]
    alice = await connect(server, "alice")
    bob = await connect(server, "bob", direct_tls=True)
    ws = await WsClient.open(server)
    bosh, _ = await BoshClient.create(server)
    try:
        await ws.login("carol")
        before = await scrape(server)
        send(alice, "bob@localhost/test", "hi")
        await bob.next("message")
        send(alice, "nobody@elsewhere.example", "lost")
        await alice.next("message", lambda m: m["type"] == "error")
        after = await scrape(server)
    finally:
        await alice.close()
        await bob.close()
        await ws.close()
        await bosh.close()
    # alice: STARTTLS (counted as tls once upgraded); bob: direct TLS
    assert after[("xmppd_connections", (("transport", "tls"),))] == 2
    assert after[("xmppd_connections", (("transport", "websocket"),))] == 1
    assert after[("xmppd_connections", (("transport", "bosh"),))] == 1
    assert after[("xmppd_sessions", ())] == 3
    routed = ("xmppd_stanzas_routed_total", ())
    errors = ("xmppd_stanza_errors_total", ())
    assert after[routed] >= before[routed] + 2
    assert after[errors] == before[errors] + 1
    select = ("xmppd_storage_query_seconds_count", (("operation", "select"),))
    assert after[select] > 0  # logins read credentials


async def test_metrics_allow_and_switches(servers: ServerFactory) -> None:
    server = await servers.start(http={"metrics_allow": ["10.0.0.0/8"], "healthz": False})
    async with aiohttp.ClientSession() as http:
        async with http.get(base_url(server) + "/metrics") as response:
            assert response.status == 403  # loopback is not in metrics_allow
        async with http.get(base_url(server) + "/healthz") as response:
            assert response.status == 404
    other = await servers.start(http={"metrics": False})
    async with aiohttp.ClientSession() as http, http.get(base_url(other) + "/metrics") as r:
        assert r.status == 404


async def test_healthz_and_readyz(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    alive, ready = base_url(server) + "/healthz", base_url(server) + "/readyz"
    async with aiohttp.ClientSession() as http:
        async with http.get(alive) as response:
            assert response.status == 200
            body = await response.json()
        assert body["status"] == "ok" and body["domain"] == "localhost"
        async with http.get(ready) as response:
            assert response.status == 200
            assert (await response.json()) == {"status": "ok", "storage": "up"}

        async def broken(_: str) -> bool:
            raise ConnectionError("database down")

        assert server.host is not None
        monkeypatch.setattr(server.host.storage.users, "exists", broken)
        async with http.get(ready) as response:  # not ready: take it out of the balancer
            assert response.status == 503
            assert (await response.json())["storage"] == "down"
        async with http.get(alive) as response:  # but alive: restarting it would not help
            assert response.status == 200
