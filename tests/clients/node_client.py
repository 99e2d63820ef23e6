"""A Node.js XMPP client (Strophe.js, @xmpp/client) driven from a test, line by line.

The scripts in ``node/`` speak the protocol of ``node/driver.mjs``: a JSON command a line
on stdin, JSON events a line on stdout. ``await client.do("message", to=..., body=...)`` runs
one command and returns its result (a failed command raises ``NodeError``);
``await client.stanza(pred)`` takes the first stanza received that matches, parsed with lxml
(stanzas without an ``xmlns`` are in ``jabber:client``, as on the stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from lxml import etree

from tests.clients.conftest import require_node_modules, require_program

NODE_DIR = Path(__file__).parent / "node"
TIMEOUT = 15.0
DOMAIN = "localhost"
PASSWORD = "secret"
C = "{jabber:client}"

Pred = Callable[[etree._Element], bool]
# What each script imports (tests/clients/package.json pins them all).
PACKAGES = {
    "strophe.mjs": ("strophe.js", "ws", "@xmldom/xmldom", "xhr2"),
    "xmpp_js.mjs": ("@xmpp/client", "ws"),
}


class NodeError(Exception):
    """A command the client reported as failed."""


def parse(xml: str) -> etree._Element:
    """A stanza as the client printed it; no ``xmlns`` means the stream's ``jabber:client``."""
    wrapper = etree.fromstring(f"<wrapper xmlns='jabber:client'>{xml}</wrapper>")
    return wrapper[0]


class NodeClient:
    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        self.proc = proc
        self.name = name
        self.events: list[dict[str, Any]] = []
        self.stderr = b""
        self.login: dict[str, Any] = {}  # what ``connect`` reported
        self._arrived = asyncio.Condition()
        self._ids = 0
        self._reader = asyncio.create_task(self._read())
        self._errors = asyncio.create_task(self._read_stderr())

    @classmethod
    async def start(cls, script: str, env: dict[str, str] | None = None) -> NodeClient:
        node = require_program("node")
        for package in PACKAGES[script]:
            require_node_modules(package)
        proc = await asyncio.create_subprocess_exec(
            node, str(NODE_DIR / script), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, **(env or {})})
        return cls(proc, script)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            try:
                event = json.loads(line)
                if event["event"] == "stanza":
                    event["element"] = parse(event["xml"])
            except (ValueError, etree.XMLSyntaxError):  # kept for the failure message
                event = {"event": "output", "line": line.decode(errors="replace")}
            async with self._arrived:
                self.events.append(event)
                self._arrived.notify_all()
        async with self._arrived:
            self.events.append({"event": "exit"})
            self._arrived.notify_all()

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        async for line in self.proc.stderr:  # what the library logged, for failure messages
            self.stderr = (self.stderr + line)[-4000:]

    async def next(self, pred: Callable[[dict[str, Any]], bool],
                   timeout: float = TIMEOUT) -> dict[str, Any]:
        """The first event received (or still to come) that matches; others stay queued."""
        try:
            async with asyncio.timeout(timeout), self._arrived:
                while True:
                    for i, event in enumerate(self.events):
                        if pred(event):
                            return self.events.pop(i)
                        if event["event"] == "exit":
                            raise AssertionError(f"{self.name} exited: {self.stderr.decode()}")
                    await self._arrived.wait()
        except TimeoutError:
            raise AssertionError(f"{self.name}: nothing matched in {timeout}s; not read:\n"
                                 f"{self.trace()}") from None

    async def do(self, op: str, timeout: float = TIMEOUT, **args: Any) -> dict[str, Any]:
        """Run one command; its result (``done``), or ``NodeError`` (``failed``)."""
        assert self.proc.stdin is not None
        self._ids += 1
        ident = self._ids
        self.proc.stdin.write(json.dumps({"id": ident, "op": op, **args}).encode() + b"\n")
        await self.proc.stdin.drain()
        event = await self.next(lambda e: e.get("id") == ident, timeout)
        if event["event"] == "failed":
            raise NodeError(f"{self.name} {op}: {event['error']}\n{self.trace()}")
        return event

    def trace(self, last: int = 40) -> str:
        """What the client reported and has not been read, for a failure message
        (XMPP_TRACE=1 in the environment adds the XML sent and received)."""
        lines = [json.dumps({k: v for k, v in e.items() if k != "element"}, ensure_ascii=False)
                 for e in self.events[-last:]]
        return "\n".join([*lines, self.stderr.decode(errors="replace")])

    async def stanza(self, pred: Pred, timeout: float = TIMEOUT) -> etree._Element:
        event = await self.next(lambda e: e["event"] == "stanza" and pred(e["element"]), timeout)
        element: etree._Element = event["element"]
        return element

    async def close(self) -> None:
        """End the script (stdin closed: it finishes its commands and exits)."""
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), TIMEOUT)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        await asyncio.gather(self._reader, self._errors, return_exceptions=True)


Login = Callable[..., Awaitable[NodeClient]]


@contextlib.asynccontextmanager
async def logins(script: str, service: str, env: dict[str, str] | None = None
                 ) -> AsyncIterator[Login]:
    """``await login("juliet")``: a new client process logged in over ``service``, with
    ``client.login`` what it reported (``jid``, ``mechanism``); all end with the block."""
    started: list[NodeClient] = []

    async def login(user: str, password: str = PASSWORD, resource: str = "node") -> NodeClient:
        client = await NodeClient.start(script, env)
        started.append(client)
        client.login = await client.do("connect", service=service, domain=DOMAIN,
                                       username=user, password=password, resource=resource)
        return client

    try:
        yield login
    finally:
        for client in started:
            await client.close()


# -- stanzas as a test reads them ------------------------------------------------------------

def body(text: str) -> Pred:
    return lambda el: el.tag == C + "message" and el.findtext(C + "body") == text


def presence(frm: str, type_: str | None = None) -> Pred:
    """Presence from ``frm`` (a bare JID matches every resource) of ``type_`` (None: available)."""
    def match(el: etree._Element) -> bool:
        sender = el.get("from", "")
        return (el.tag == C + "presence" and el.get("type") == type_
                and (sender == frm or sender.startswith(frm + "/")))
    return match
