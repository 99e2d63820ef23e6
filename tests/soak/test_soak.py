"""A short soak: login churn, messages and XEP-0198 resumption, with one kill -9 half-way.

``SOAK_USERS`` clients, one per account, come and go for ``SOAK_DURATION`` seconds: each logs
in (resuming its previous session half of the time), sends chats to the others' bare JIDs
for a second or two with acks requested, then closes cleanly or drops its connection, and
stays away a moment. Half-way the server is kill -9'd and started again on the same data.
Then every client leaves, and each account logs in once more for its offline messages and
reads its archive (XEP-0313).

Asserted: the server's resident memory (VmRSS) at the end of each of its two lives is at
most twice what it was after ``WARMUP`` seconds, plus ``RSS_MARGIN_MB``; the logins of the
last ``SOAK_INTERVAL`` seconds are at least half those of the first, and none is refused;
every message the server acknowledged reached its recipient and is in the recipient's
archive, once; once the clients are gone and their sessions' resumption time
(``c2s.sm_resume_timeout``) is over, the server goes quiet: the archive and offline-storage
row counts stop changing within ``QUIET_WITHIN`` seconds. A client that drops its connection
and then logs in afresh on the same resource leaves a detached session behind:
``limits.max_resources_per_user`` is low so that sessions holding their slot show up as refused
logins.

Environment: ``SOAK_USERS`` (default 8), ``SOAK_DURATION`` (default 60 s), ``SOAK_INTERVAL``
(default 10 s), ``SOAK_RATE`` (chats per second per online client, default 10),
``SOAK_RESUME_TIMEOUT`` (default 10 s), ``SOAK_MAX_RESOURCES`` (default 4),
``SOAK_BACKEND`` (``sqlite``, the default, or ``postgresql``). The long form, on both
backends: ``SOAK_DURATION=240 SOAK_USERS=20 SOAK_RESUME_TIMEOUT=60 SOAK_MAX_RESOURCES=10``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from tests.soak.support import Closed, Received, ServerProcess, SmClient, env_int
from tests.support.databases import postgres_database

pytestmark = pytest.mark.slow

WARMUP = 8.0  # seconds after a start before the RSS reference sample
RSS_MARGIN_MB = 50
QUIET_WITHIN = 5.0  # seconds, once the resumption time is over
OBSERVE = 20.0  # seconds the row counts are watched at most


@pytest.fixture
def soak_url(tmp_path: Path) -> Iterator[str]:
    if os.environ.get("SOAK_BACKEND", "sqlite") == "postgresql":
        yield from postgres_database("xmppd_soak")
    else:
        yield f"sqlite+aiosqlite:///{tmp_path / 'db' / 'xmppd.db'}"


@dataclass
class User:
    name: str
    acked: set[str] = field(default_factory=set)  # bodies the server acknowledged
    sent_to: dict[str, str] = field(default_factory=dict)  # body -> recipient
    logins: list[float] = field(default_factory=list)  # loop time of each login
    resumed: int = 0
    failures: list[str] = field(default_factory=list)


async def churn(user: User, port: int, peers: list[str], received: dict[str, list[str]],
                deadline: float, rate: int, rng: random.Random) -> None:
    loop = asyncio.get_running_loop()

    def got(m: Received) -> None:
        received[m.body].append(user.name)

    client = SmClient(port, user.name, "r", on_message=got)
    seq = 0
    while loop.time() < deadline:
        try:
            if await client.login(resume=rng.random() < 0.5):
                user.resumed += 1
            user.logins.append(loop.time())
            online_until = loop.time() + rng.uniform(0.5, 2.0)
            while loop.time() < online_until:
                peer = rng.choice(peers)
                body = f"{user.name}-{seq}"
                seq += 1
                user.sent_to[body] = peer
                client.send_chat(f"{peer}@localhost", body)
                if seq % 5 == 0:
                    client.request_ack()
                await client.drain()
                await asyncio.sleep(1 / rate)
            with contextlib.suppress(TimeoutError):
                await client.wait_acked(0, timeout=5)
            if rng.random() < 1 / 3:
                await client.close()
            else:
                client.abort()
        except (Closed, OSError, TimeoutError) as exc:
            user.failures.append(str(exc)[:100])
            client.abort()
        finally:
            user.acked.update(client.acked_bodies())
        await asyncio.sleep(rng.uniform(0.2, 1.0))
    client.abort()


async def sample_rss(server: ServerProcess, samples: list[tuple[int, float, float]],
                     stop: asyncio.Event) -> None:
    """(life, seconds since that start, MB) every second."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        with contextlib.suppress(OSError, RuntimeError, AssertionError):
            if server.ready:
                samples.append((server.starts, loop.time() - server.started_at, server.rss_mb()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


async def row_counts(engine: AsyncEngine) -> tuple[int, int]:
    async with engine.connect() as conn:
        archive = (await conn.execute(sa.text("SELECT count(*) FROM archive"))).scalar_one()
        offline = (await conn.execute(
            sa.text("SELECT count(*) FROM offline_messages"))).scalar_one()
    return int(archive), int(offline)


async def final_collect(port: int, name: str, received: dict[str, list[str]],
                        failed: list[str]) -> list[str]:
    """Log in once more (offline messages come), wait for quiet; the archive's bodies (what
    was read of them when the server does not answer: the failure goes to ``failed``)."""
    def got(m: Received) -> None:
        received[m.body].append(name)

    client = SmClient(port, name, "r", on_message=got)
    archive: list[tuple[str, str]] = []
    try:
        # Measuring, not exercising: without XEP-0198 a large offline backlog cannot end the
        # session as "too many unacknowledged stanzas" (the churn above covers that).
        await client.login(sm=False)
        before = -1
        async with asyncio.timeout(60):
            while before != (now := sum(len(v) for v in received.values())):
                before = now
                await client.ping()
                await asyncio.sleep(1.5)
        archive = await client.archive()
    except (Closed, OSError, TimeoutError) as exc:
        failed.append(f"{name}: {exc!r}"[:100])
    await client.close()
    return [body for _, body in archive]


async def test_soak_short(tmp_path: Path, soak_url: str) -> None:
    users = env_int("SOAK_USERS", 8)
    duration = env_int("SOAK_DURATION", 60)
    interval = env_int("SOAK_INTERVAL", 10)
    rate = env_int("SOAK_RATE", 10)
    resume_timeout = env_int("SOAK_RESUME_TIMEOUT", 10)
    max_resources = env_int("SOAK_MAX_RESOURCES", 4)
    names = [f"user{i}" for i in range(users)]
    server = ServerProcess(tmp_path, soak_url, c2s={"sm_resume_timeout": resume_timeout},
                           limits={"max_offline_messages": 100000,
                                   "max_resources_per_user": max_resources})
    await server.create_accounts(names)
    await server.start()
    loop = asyncio.get_running_loop()
    engine = create_async_engine(soak_url, poolclass=NullPool)
    received: dict[str, list[str]] = defaultdict(list)
    people = [User(name) for name in names]
    rss: list[tuple[int, float, float]] = []
    stop_sampling = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(server, rss, stop_sampling))
    began = loop.time()
    deadline = began + duration
    rng = random.Random(0x50A4)
    try:
        workers = [asyncio.create_task(
            churn(u, server.port, [n for n in names if n != u.name], received, deadline, rate,
                  random.Random(rng.random())))
            for u in people]
        await asyncio.sleep(duration / 2)
        await server.kill9()
        killed_at = loop.time() - began
        await server.start()
        await asyncio.gather(*workers)
        left_at = loop.time()
        # Sessions left detached end after their resumption time; then nothing should change.
        await asyncio.sleep(resume_timeout + 1)
        counts = [await row_counts(engine)]
        quiet_after: float | None = None
        while loop.time() - left_at < resume_timeout + 1 + OBSERVE:
            await asyncio.sleep(1)
            counts.append(await row_counts(engine))
            if len(counts) >= 4 and len(set(counts[-4:])) == 1:
                quiet_after = loop.time() - left_at - resume_timeout - 1 - 3
                break
        stop_sampling.set()
        await sampler
        final_failed: list[str] = []
        archives = await asyncio.gather(
            *(final_collect(server.port, name, received, final_failed) for name in names))
    finally:
        stop_sampling.set()
        await server.stop(graceful=False)
        await engine.dispose()

    # Memory: each life of the server, its end against its state after the warm-up.
    rss_report = []
    rss_ok = True
    for life in (1, 2):
        mine = [(t, mb) for n, t, mb in rss if n == life]
        warm = next((mb for t, mb in mine if t >= WARMUP), None)
        if warm is None or not mine:
            continue
        final, peak = mine[-1][1], max(mb for _, mb in mine)
        rss_ok = rss_ok and final <= 2 * warm + RSS_MARGIN_MB
        rss_report.append(f"life {life}: {warm:.0f} MB after {WARMUP:.0f} s -> {final:.0f} MB "
                          f"at {mine[-1][0]:.0f} s (peak {peak:.0f})")
    # Logins per interval.
    times = sorted(t - began for u in people for t in u.logins)
    slots = [sum(1 for t in times if k * interval <= t < (k + 1) * interval)
             for k in range(duration // interval)]
    per_minute = [n * 60 // interval for n in slots]
    # Acknowledged messages: delivered, and archived by the recipient.
    in_archive = {name: set(bodies) for name, bodies in zip(names, archives, strict=True)}
    acked = [(b, u.sent_to[b]) for u in people for b in u.acked]
    lost = [b for b, to in acked if to not in received.get(b, ())]
    not_archived = [b for b, to in acked if b not in in_archive[to]]
    dup_rows = sum(len(bodies) - len(set(bodies)) for bodies in archives)
    extra = sum(len(v) - 1 for v in received.values() if len(v) > 1)
    failures = [f for u in people for f in u.failures]
    pool_timeouts = sum(server.log_text(n).count("QueuePool limit") for n in (1, 2))
    refused = [f for f in failures if "refused" in f]
    figures = (
        f"{soak_url.partition(':')[0]}, {users} users, {duration} s, kill -9 at "
        f"{killed_at:.0f} s: logins/min per {interval} s {per_minute} "
        f"({sum(u.resumed for u in people)} resumed; {len(failures)} failed, "
        f"{len(refused)} refused, e.g. {refused[:1]}); RSS {'; '.join(rss_report)}; "
        f"messages sent {sum(len(u.sent_to) for u in people)}, acked {len(acked)}, "
        f"acked never delivered {len(lost)}, acked not archived {len(not_archived)}, "
        f"copies beyond the first {extra}, duplicate archive rows {dup_rows}; "
        f"final logins failed {len(final_failed)} {final_failed[:1]}; server log: "
        f"{pool_timeouts} database pool timeouts; "
        f"after the clients left, (archive, offline) rows {counts[0]} -> {counts[-1]}, "
        f"{f'quiet {quiet_after:.0f} s' if quiet_after is not None else 'not quiet'} after "
        f"the resumption time ({resume_timeout} s) was over"
        f"; e.g. lost {lost[:3]}")
    print(figures)
    assert not final_failed, figures
    assert not pool_timeouts, figures
    assert rss_ok, figures
    assert slots and slots[-1] >= slots[0] / 2, figures
    assert not lost, figures
    assert not not_archived, figures
    assert not dup_rows, figures
    assert not refused, figures
    assert quiet_after is not None and quiet_after <= QUIET_WITHIN, figures
