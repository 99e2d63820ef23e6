"""XEP-0198 under pressure: no re-send storm, and detached sessions never lock an account out.

``test_sm_storm``: bob has a detached session (dropped, waiting for resumption) and a phone
that drops its connection and resumes every ``SOAK_STORM_PERIOD`` seconds; alice sends
``SOAK_STORM_MESSAGES`` chats to bob's bare JID, more than ``c2s.sm_max_unacked``. The phone's
session is dropped by the server at most a few times, it receives each message at most twice
(once live, once more when the detached session's queue is handed on) and bob's archive holds
each message once.

``test_detached_resource_slots``: with ``limits.max_resources_per_user = 3``, bob logs in on
the same resource again and again with resumption enabled and never resumes (each connection
just drops): every login succeeds and gets the resource it asked for, the new session
replacing the detached one, and a message to that full JID reaches the last of them.

Sizes (environment): ``SOAK_STORM_MESSAGES`` (default 2000), ``SOAK_STORM_PERIOD`` (default
1 s), ``SOAK_SLOT_LOGINS`` (default 10). A longer storm: ``SOAK_STORM_MESSAGES=7000``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import Counter
from pathlib import Path

import pytest

from tests.soak.support import Closed, Received, ServerProcess, SmClient, env_int

pytestmark = pytest.mark.slow

MAX_UNACKED = 500
MOST_DROPS = 3
QUIET_WAIT = 15


async def phone_reconnects(port: int, received: list[Received], stop: asyncio.Event,
                           period: float, drops: list[str], logins: list[bool]) -> None:
    """bob's phone: online ``period`` seconds, drops its connection, resumes; counts every
    connection the server ended (a stream error or a close it did not ask for)."""
    phone = SmClient(port, "bob", "phone", on_message=received.append)
    while not stop.is_set():
        try:
            logins.append(await phone.login(resume=True))
        except (Closed, OSError, TimeoutError) as exc:
            drops.append(f"login: {phone.stream_error or exc}")
            phone.abort()
            await asyncio.sleep(0.2)
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(phone.closed.wait(), period)
        if phone.closed.is_set():
            drops.append(phone.stream_error or "closed by the server")
        phone.abort()
        await asyncio.sleep(0.1)
    phone.abort()


async def test_sm_storm(tmp_path: Path, soak_db: str) -> None:
    total = env_int("SOAK_STORM_MESSAGES", 2000)
    period = float(os.environ.get("SOAK_STORM_PERIOD", "1"))
    server = ServerProcess(tmp_path, soak_db,
                           c2s={"sm_resume_timeout": 120, "sm_max_unacked": MAX_UNACKED},
                           limits={"max_offline_messages": 10 * total})
    await server.create_accounts(["alice", "bob"])
    await server.start()
    received: list[Received] = []
    drops: list[str] = []
    logins: list[bool] = []
    stop = asyncio.Event()
    old = SmClient(server.port, "bob", "old")
    alice = SmClient(server.port, "alice", "desk")
    phone_task: asyncio.Task[None] | None = None
    try:
        await old.login()
        await old.ping()
        old.abort()  # detached: it waits for a resumption that never comes
        phone_task = asyncio.create_task(
            phone_reconnects(server.port, received, stop, period, drops, logins))
        await asyncio.sleep(0.5)
        await alice.login(presence=False)
        began = asyncio.get_running_loop().time()
        for start in range(0, total, 50):
            for i in range(start, min(start + 50, total)):
                alice.send_chat("bob@localhost", f"s{i:06d}")
            await alice.wait_acked(200, timeout=60)
            await asyncio.sleep(0.02)
        await alice.wait_acked(0, timeout=60)
        sending = asyncio.get_running_loop().time() - began
        # The storm, if any, goes on after alice is done: wait until the phone gets nothing
        # new for a few seconds (``QUIET_WAIT`` at most).
        sent_all = len(received)
        quiet = False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(QUIET_WAIT):
                while not quiet:
                    before = len(received)
                    await asyncio.sleep(3)
                    quiet = len(received) == before
        after_done = len(received) - sent_all
        stop.set()
        await phone_task
        reader = SmClient(server.port, "bob", "reader")
        await reader.login(presence=False)
        archive = await reader.archive(most=2 * total)  # enough to see it is too many
        await reader.close()
        await alice.close()
    finally:
        stop.set()
        if phone_task is not None:
            phone_task.cancel()
        await server.stop(graceful=False)

    copies = Counter(m.body for m in received)
    archived = Counter(body for _, body in archive if body.startswith("s"))
    reasons = Counter(d.split(":")[0] for d in drops)
    figures = (f"{soak_db.partition(':')[0]}: {total} messages sent in {sending:.1f} s; "
               f"the phone logged in {len(logins)} times ({sum(logins)} resumed), "
               f"dropped by the server {len(drops)} times ({dict(reasons)}); "
               f"copies received {len(received)} "
               f"({len(copies)} distinct, most of one message {max(copies.values(), default=0)});"
               f" of which {after_done} after alice was done, "
               f"{'quiet then' if quiet else f'still arriving {QUIET_WAIT} s later'}; "
               f"archive rows {sum(archived.values())}"
               f"{'+ (read no further)' if len(archive) >= 2 * total else ''} "
               f"({len(archived)} distinct among them); "
               f"bounced to alice {len(alice.bounced)}")
    print(figures)
    assert len(drops) <= MOST_DROPS, figures
    assert len(received) <= 2 * total, figures
    assert len(copies) == total, figures
    assert sum(archived.values()) == len(archived) == total, figures


async def test_detached_resource_slots(tmp_path: Path) -> None:
    logins = env_int("SOAK_SLOT_LOGINS", 10)
    server = ServerProcess(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'db' / 'xmppd.db'}",
                           c2s={"sm_resume_timeout": 300},
                           limits={"max_resources_per_user": 3})
    await server.create_accounts(["alice", "bob"])
    await server.start()
    bound: list[str] = []
    refused: list[str] = []
    received: list[Received] = []
    try:
        for _ in range(logins):
            bob = SmClient(server.port, "bob", "phone", on_message=received.append)
            try:
                await bob.login()
                await bob.ping()
                bound.append(bob.jid or "")
            except Closed as exc:
                refused.append(str(exc)[:120])
            bob.abort()  # never resumed: the next login binds the same resource
        last = SmClient(server.port, "bob", "phone", on_message=received.append)
        last_ok = True
        try:
            await last.login()
            await last.ping()
        except Closed as exc:
            last_ok = False
            refused.append(str(exc)[:120])
        if last_ok:
            alice = SmClient(server.port, "alice", "desk")
            await alice.login(presence=False)
            alice.send_chat("bob@localhost/phone", "to the phone")
            await alice.wait_acked(0)
            await last.ping()
            await asyncio.sleep(0.5)
            await last.ping()
            await alice.close()
    finally:
        await server.stop()

    other = [jid for jid in bound if jid != "bob@localhost/phone"]
    got = [m.body for m in received].count("to the phone")
    figures = (f"{logins + 1} logins on bob@localhost/phone (max_resources_per_user 3): "
               f"{len(refused)} refused, {len(other)} given another resource "
               f"(e.g. {other[:2]}), the last session got the message to the full JID "
               f"{got} times; refusals e.g. {refused[:1]}")
    print(figures)
    assert not refused, figures
    assert not other, figures
    assert got == 1, figures
