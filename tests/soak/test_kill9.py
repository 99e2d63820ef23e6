"""No loss across kill -9: what the server acknowledged (XEP-0198 <a h/>) is delivered or stored.

alice sends numbered chat messages to bob's bare JID, asking for acks as she goes; bob comes
and goes (``SOAK_BOB_PERIOD`` seconds online, as long offline): he drops the connection and
resumes, drops it and logs in afresh on the same resource, or closes cleanly. Once the server
has acknowledged ``SOAK_KILL9_AT`` of alice's messages it is kill -9'd and started again on the
same data; bob logs in, takes his offline messages and reads his archive (XEP-0313).

Every message the server acknowledged must have reached bob at least once; copies beyond the
first are bounded by what can be in flight (``c2s.sm_max_unacked``) and carry the stanza-id of
the first; bob's archive holds each acknowledged message exactly once, under that stanza-id.

Sizes (environment): ``SOAK_KILL9_MESSAGES`` (default 2000) messages at most,
``SOAK_KILL9_AT`` (default 3/4 of them) acknowledged before the kill, ``SOAK_KILL9_RATE``
(default 400) messages per second, ``SOAK_BOB_PERIOD`` (default 0.5 s). A longer run, as in
the field: ``SOAK_KILL9_MESSAGES=12000 SOAK_KILL9_AT=8000 SOAK_BOB_PERIOD=2``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from tests.soak.support import Closed, Received, ServerProcess, SmClient, env_int

pytestmark = pytest.mark.slow

MAX_UNACKED = 1000
RESUME_TIMEOUT = 5
BATCH = 50  # alice asks for an ack after each batch
WINDOW = 200  # and sends on once at most this many wait for one


async def bob_comes_and_goes(port: int, received: list[Received], stop: asyncio.Event,
                             period: float, cycles: list[str]) -> None:
    """bob on and off: drop and resume, drop and log in afresh, or close cleanly."""
    bob = SmClient(port, "bob", "phone", on_message=received.append)
    left = "closed"
    for n in range(1_000_000):
        if stop.is_set():
            break
        try:
            resumed = await bob.login(resume=left == "dropped" and n % 2 == 0)
            cycles.append("resumed" if resumed else "login")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), period)
            if n % 3 == 2:
                await bob.close()
                left = "closed"
            else:
                bob.abort()
                left = "dropped"
        except (Closed, OSError, TimeoutError):
            bob.abort()
            left = "dropped"
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), period)
    bob.abort()


async def alice_sends(alice: SmClient, total: int, kill_at: int, rate: int,
                      killed: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    began = loop.time()
    for start in range(0, total, BATCH):
        await asyncio.sleep(max(0.0, began + start / rate - loop.time()))
        for i in range(start, min(start + BATCH, total)):
            alice.send_chat("bob@localhost", f"m{i:06d}")
        alice.request_ack()
        await alice.drain()
        # The kill comes with messages in flight: the acks counted are those read so far.
        if alice.sm.acked >= kill_at:
            break
        await alice.wait_acked(WINDOW, timeout=60)
    killed.set()


async def collect(bob: SmClient, received: list[Received], quiet: float = 2.0) -> None:
    """Wait until nothing new has arrived for ``quiet`` seconds (at most a minute)."""
    await bob.ping()
    async with asyncio.timeout(60):
        while True:
            before = len(received)
            await asyncio.sleep(quiet)
            await bob.ping()
            if len(received) == before:
                return


async def test_kill9_no_loss(tmp_path: Path, soak_db: str) -> None:
    total = env_int("SOAK_KILL9_MESSAGES", 2000)
    kill_at = env_int("SOAK_KILL9_AT", total * 3 // 4)
    period = float(os.environ.get("SOAK_BOB_PERIOD", "0.5"))
    rate = env_int("SOAK_KILL9_RATE", 400)
    server = ServerProcess(tmp_path, soak_db,
                           c2s={"sm_resume_timeout": RESUME_TIMEOUT,
                                "sm_max_unacked": MAX_UNACKED},
                           limits={"max_offline_messages": 10 * total})
    await server.create_accounts(["alice", "bob"])
    await server.start()
    received: list[Received] = []
    cycles: list[str] = []
    stop, killed = asyncio.Event(), asyncio.Event()
    bob_task = asyncio.create_task(
        bob_comes_and_goes(server.port, received, stop, period, cycles))
    alice = SmClient(server.port, "alice", "desk")
    try:
        await alice.login(presence=False)
        sender = asyncio.create_task(alice_sends(alice, total, kill_at, rate, killed))
        await killed.wait()
        await server.kill9()
        with contextlib.suppress(Closed, TimeoutError):
            await sender
        await alice.closed.wait()  # every <a/> the server wrote is read
        acked = alice.acked_bodies()
        stop.set()
        await bob_task
        before_kill = len(received)

        await server.start()
        bob = SmClient(server.port, "bob", "phone", on_message=received.append)
        await bob.login()
        await collect(bob, received)
        archive = await bob.archive()
        await bob.close()
    finally:
        stop.set()
        bob_task.cancel()
        alice.abort()
        await server.stop()

    copies = Counter(m.body for m in received)
    ids: dict[str, set[str | None]] = defaultdict(set)
    for m in received:
        ids[m.body].add(m.stanza_id)
    archived = Counter(body for _, body in archive)
    archive_ids: dict[str, set[str]] = defaultdict(set)
    for aid, body in archive:
        archive_ids[body].add(aid)
    lost = [b for b in acked if not copies[b]]
    lost_everywhere = [b for b in lost if not archived[b]]
    extra = sum(n - 1 for n in copies.values())
    id_split = [b for b, s in ids.items() if len(s) != 1 or None in s]
    not_archived = [b for b in acked if not archived[b]]
    archived_twice = [b for b, n in archived.items() if n > 1]
    id_mismatch = [b for b in acked if copies[b] and archived[b] and ids[b] != archive_ids[b]]
    figures = (
        f"{soak_db.partition(':')[0]}: alice acked {len(acked)} of {alice.sm.sent} sent; "
        f"bob got {len(received)} messages ({before_kill} before the kill, "
        f"{len(copies)} distinct) over {len(cycles)} logins ({cycles.count('resumed')} resumed); "
        f"acked but never delivered: {len(lost)} (of which not archived either: "
        f"{len(lost_everywhere)}); copies beyond the first: {extra} (bound {MAX_UNACKED}); "
        f"messages whose copies differ in stanza-id: {len(id_split)}; archive rows "
        f"{len(archive)}: acked not archived {len(not_archived)}, archived more than once "
        f"{len(archived_twice)}, archive id != delivered stanza-id {len(id_mismatch)}; "
        f"bounced to alice: {len(alice.bounced)}; "
        f"e.g. lost {lost[:3]}, split {id_split[:3]}, twice {archived_twice[:3]}")
    print(figures)
    assert not lost, figures
    assert extra <= MAX_UNACKED, figures
    assert not id_split, figures
    assert not not_archived and not archived_twice and not id_mismatch, figures
