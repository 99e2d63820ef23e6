"""Debian 12's slixmpp 1.8.3, under the system Python, driven from a test.

``debian_slixmpp_client.py`` runs in its own process (``/usr/bin/python3 -I``): the test
writes commands and reads what the client saw, as JSON lines::

    deb = await DebianSlixmpp.start(python, server, "deb")      # logged in, or an error
    await deb.call("send", to="alice@localhost", body="hi")
    msg = await deb.next("message", lambda e: e["body"] == "hello")

Events stay queued until a ``next`` takes them; ``seen`` keeps every one, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Self

from tests.support.databases import unavailable
from xmpp_server.server import Server

SCRIPT = Path(__file__).with_name("debian_slixmpp_client.py")
PYTHON = "/usr/bin/python3"
VERSION = "1.8.3"
TIMEOUT = 15.0

Event = dict[str, Any]


def require_debian_slixmpp(python: str = PYTHON) -> str:
    """The system Python, if Debian's slixmpp 1.8.3 is installed for it."""
    try:
        found = subprocess.run([python, "-I", "-c", "import slixmpp; print(slixmpp.__version__)"],
                               capture_output=True, text=True, timeout=30)
    except OSError as exc:
        unavailable(f"{python} with slixmpp {VERSION}", repr(exc))
    if found.returncode != 0 or found.stdout.strip() != VERSION:
        unavailable(f"{python} with slixmpp {VERSION} (Debian's python3-slixmpp)",
                    (found.stdout + found.stderr).strip()[-200:] or "not installed")
    return python


class CommandError(Exception):
    """The client answered a command with an error (its RFC 6120 condition)."""

    def __init__(self, op: str, condition: str) -> None:
        super().__init__(f"{op}: {condition}")
        self.condition = condition


class DebianSlixmpp:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.seen: list[Event] = []
        self._pending: list[Event] = []
        self._arrived = asyncio.Condition()
        self._replies: dict[int, asyncio.Future[Event]] = {}
        self._next_id = 0
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def launch(cls, python: str, server: Server, user: str, password: str = "secret", *,
                     resource: str = "debian", keepalive: int = 0) -> Self:
        """The client's process, connecting (``start`` also waits for the session)."""
        assert server.host is not None
        args = [f"{user}@{server.host.domain}/{resource}", password, "127.0.0.1",
                str(server.c2s_port)]
        if keepalive:
            args += ["--keepalive", str(keepalive)]
        if os.environ.get("DEBIAN_SLIXMPP_DEBUG") == "1":  # its XML, on stderr
            args.append("--debug")
        process = await asyncio.create_subprocess_exec(
            python, "-I", str(SCRIPT), *args, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE)
        return cls(process)

    @classmethod
    async def start(cls, python: str, server: Server, user: str, password: str = "secret",
                    **kw: Any) -> Self:
        """A logged-in client (the account is created first if it does not exist)."""
        assert server.host is not None
        if not await server.host.accounts.exists(user):
            await server.host.accounts.create(user, password)
        client = await cls.launch(python, server, user, password, **kw)
        try:
            outcome = await client.next("session_start", lambda e: True, kinds=(
                "session_start", "failed_all_auth", "connection_failed", "disconnected"))
        except BaseException:
            await client.close()
            raise
        if outcome["event"] != "session_start":
            await client.close()
            raise ConnectionError(f"slixmpp {VERSION} did not log in: {outcome}")
        return client

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            item: Event = json.loads(line)
            if "reply" in item:
                future = self._replies.pop(item["reply"], None)
                if future is not None and not future.done():
                    future.set_result(item)
                continue
            self.seen.append(item)
            async with self._arrived:
                self._pending.append(item)
                self._arrived.notify_all()
        for future in self._replies.values():
            if not future.done():
                future.set_exception(ConnectionError("the client's process ended"))
        async with self._arrived:
            self._arrived.notify_all()

    async def call(self, op: str, timeout: float = TIMEOUT, **args: Any) -> Event:
        """Run a command; its reply, or CommandError with the condition the client got."""
        self._next_id += 1
        number = self._next_id
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._replies[number] = future
        self._write({"op": op, "seq": number, **args})
        async with asyncio.timeout(timeout):
            reply = await future
        if "error" in reply:
            raise CommandError(op, reply["error"])
        return reply

    def _write(self, command: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command).encode() + b"\n")

    async def next(self, event: str, pred: Callable[[Event], bool] | None = None,
                   timeout: float = TIMEOUT, kinds: tuple[str, ...] = ()) -> Event:
        """The first event of this kind (or of ``kinds``) that matches; others stay queued."""
        wanted = kinds or (event,)
        async with asyncio.timeout(timeout), self._arrived:
            while True:
                for i, item in enumerate(self._pending):
                    if item["event"] in wanted and (pred is None or pred(item)):
                        return self._pending.pop(i)
                if self._reader.done():
                    raise ConnectionError(f"the client ended before {event}: {self.seen[-5:]}")
                await self._arrived.wait()

    async def nothing(self, event: str, pred: Callable[[Event], bool] | None = None,
                      wait: float = 0.5) -> None:
        with contextlib.suppress(TimeoutError):
            item = await self.next(event, pred, timeout=wait)
            raise AssertionError(f"unexpected {event}: {item}")

    async def close(self) -> None:
        """Log out (``</stream:stream>``) and end the process."""
        if self.process.returncode is None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                self._write({"op": "quit", "seq": 0})
            try:
                await asyncio.wait_for(self.process.wait(), TIMEOUT)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        await self._reader


@contextlib.asynccontextmanager
async def debian_clients() -> AsyncIterator[list[DebianSlixmpp]]:
    """Every client added to the list is closed on the way out (also when a test fails)."""
    opened: list[DebianSlixmpp] = []
    try:
        yield opened
    finally:
        for client in opened:
            await client.close()
