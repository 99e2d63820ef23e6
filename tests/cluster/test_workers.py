"""``xmppd serve --workers N``: processes sharing the ports, one cluster on Redis."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as redis

from tests.support.clients import TIMEOUT, Client
from tests.support.databases import reset_postgres
from tests.support.server import free_port


def _env(tmp_path: Path, db_url: str, redis_url: str, domain: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XMPPD_")}
    env.update({
        "XMPPD_SERVER_DOMAIN": domain,
        "XMPPD_SERVER_DATA_DIR": str(tmp_path / "data"),
        "XMPPD_SERVER_LOG_LEVEL": "warning",
        "XMPPD_STORAGE_URL": db_url,
        "XMPPD_C2S_PORT": str(port),
        "XMPPD_C2S_DIRECT_TLS_PORT": "0",
        "XMPPD_HTTP_ENABLED": "false",
        "XMPPD_S2S_ENABLED": "false",
        "XMPPD_CLUSTER_REDIS_URL": redis_url,
        "XMPPD_CLUSTER_NODE": "w",
        "XMPPD_CLUSTER_LEASE_TTL": "1",
    })
    return env


async def _xmppd(env: dict[str, str], *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "xmpp_server", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, (out + err).decode()


async def _live_nodes(client: redis.Redis, domain: str) -> list[str]:
    nodes = [n.decode() for n in await client.hkeys(f"xmppd:{domain}:nodes")]
    return [n for n in nodes if await client.exists(f"xmppd:{domain}:lease:{n}")]


async def _node_of(client: redis.Redis, domain: str, user: str, resource: str) -> str | None:
    raw = await client.hget(f"xmppd:{domain}:user:{user}", resource)
    return json.loads(raw)["node"] if raw else None


@pytest.fixture
async def workers(tmp_path: Path, postgres_url: str,
                  redis_url: str) -> AsyncIterator[tuple[dict[str, str], int, redis.Redis]]:
    await reset_postgres(postgres_url)
    domain = f"w{secrets.token_hex(4)}.example"
    port = free_port()
    env = _env(tmp_path, postgres_url, redis_url, domain, port)
    client = redis.Redis.from_url(redis_url)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "xmpp_server", "serve", "--workers", "2", env=env,
        stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(60):
            while len(await _live_nodes(client, domain)) < 2:
                assert process.returncode is None, await process.stderr.read()  # type: ignore[union-attr]
                await asyncio.sleep(0.2)
        for user in ("alice", "bob"):
            code, out = await _xmppd(env, "user", "add", user, "--password", "secret")
            assert code == 0, out
        env["PORT"] = str(port)
        yield env, process.pid, client
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
        assert await _live_nodes(client, domain) == []
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        keys = [k async for k in client.scan_iter(match=f"xmppd:{domain}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def _login(env: dict[str, str], user: str, resource: str) -> Client:
    client = Client(f"{user}@{env['XMPPD_SERVER_DOMAIN']}/{resource}", "secret")
    client.connect("127.0.0.1", int(env["PORT"]))
    await asyncio.wait_for(client.started, TIMEOUT)
    client.send_presence()
    return client


async def test_two_workers_share_the_port_and_the_users(workers) -> None:  # type: ignore[no-untyped-def]
    env, _pid, client = workers
    domain = env["XMPPD_SERVER_DOMAIN"]
    alice = await _login(env, "alice", "desk")
    opened = [alice]
    try:
        await asyncio.sleep(0.2)
        alice_node = await _node_of(client, domain, "alice", "desk")
        assert alice_node is not None and alice_node.startswith("w-")
        bob = None
        for attempt in range(30):  # the kernel picks the worker: until bob lands elsewhere
            candidate = await _login(env, "bob", f"r{attempt}")
            opened.append(candidate)
            await asyncio.sleep(0.1)
            node = await _node_of(client, domain, "bob", f"r{attempt}")
            if node is not None and node != alice_node:
                bob = candidate
                break
            await candidate.close()
        assert bob is not None, "every connection went to one worker"
        await asyncio.sleep(0.2)
        alice.send_message(mto=f"{bob.boundjid}", mbody="across workers", mtype="chat")
        msg = await bob.next("message", lambda m: m["body"] == "across workers")
        bob.send_message(mto=str(msg["from"]), mbody="and back", mtype="chat")
        await alice.next("message", lambda m: m["body"] == "and back")
    finally:
        for c in opened:
            await c.close()


async def test_workers_need_redis(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XMPPD_")}
    env["XMPPD_SERVER_DATA_DIR"] = str(tmp_path)
    code, out = await _xmppd(env, "serve", "--workers", "2")
    assert code == 2
    assert out.strip().splitlines() == [
        "xmppd: serve --workers 2: workers share their sessions through Redis; "
        "set cluster.redis_url (with a PostgreSQL storage.url)"]


async def test_a_cluster_on_sqlite_is_refused(tmp_path: Path, redis_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XMPPD_")}
    env["XMPPD_SERVER_DATA_DIR"] = str(tmp_path)
    env["XMPPD_CLUSTER_REDIS_URL"] = redis_url
    code, out = await _xmppd(env, "serve")
    assert code == 2
    lines = out.strip().splitlines()
    assert len(lines) == 1 and "cluster.redis_url" in lines[0] and "SQLite" in lines[0], out


async def test_an_unreachable_redis_is_one_line(tmp_path: Path, postgres_url: str) -> None:
    await reset_postgres(postgres_url)
    env = _env(tmp_path, postgres_url, "redis://127.0.0.1:1/0", "r.example", free_port())
    code, out = await _xmppd(env, "serve")
    assert code == 2
    assert out.strip().splitlines() == [
        "xmppd: cluster.redis_url: cannot reach Redis at redis://127.0.0.1:1/0: "
        "Error 111 connecting to 127.0.0.1:1. Connection refused."], out
