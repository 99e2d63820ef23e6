"""Message throughput over the three client transports: TCP, WebSocket (RFC 7395), BOSH.

Starts one server in-process (SQLite in a temporary directory, loopback only), logs in
``--pairs`` pairs of clients per transport, and has each sender send ``--messages`` chat
messages to its partner; reports delivered messages per second and the ratio to TCP.
Bounded: a fixed number of messages, a 60 s cap per transport. Run from the repository root:

    python bench/http_transports.py --pairs 10 --messages 200
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import tempfile
import time

import aiohttp
from lxml import etree

from xmpp_server.config import load_config
from xmpp_server.server import Server

SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
BIND = "urn:ietf:params:xml:ns:xmpp-bind"
FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
HTTPBIND = "http://jabber.org/protocol/httpbind"


def auth(user: str) -> str:
    token = base64.b64encode(f"\0{user}\0pw".encode()).decode()
    return f"<auth xmlns='{SASL}' mechanism='PLAIN'>{token}</auth>"


def bind(resource: str) -> str:
    return (f"<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='{BIND}'>"
            f"<resource>{resource}</resource></bind></iq>")


def message(to: str, i: int) -> str:
    return f"<message xmlns='jabber:client' to='{to}' type='chat'><body>m{i}</body></message>"


class Tcp:
    """Plain TCP with PLAIN (the server runs with require_tls off for the comparison)."""

    async def login(self, server: Server, user: str) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", server.c2s_port)
        header = ("<stream:stream xmlns='jabber:client' xmlns:stream="
                  "'http://etherx.jabber.org/streams' to='localhost' version='1.0'>")
        self.writer.write(header.encode())
        await self._until(b"</stream:features>")
        self.writer.write(auth(user).encode())
        await self._until(b"<success")
        self.writer.write(header.encode())
        await self._until(b"</stream:features>")
        self.writer.write(bind("b").encode())
        await self._until(b"</iq>")

    async def _until(self, token: bytes) -> None:
        buf = b""
        while token not in buf:
            buf += await self.reader.read(65536)

    async def send(self, xml: str) -> None:
        self.writer.write(xml.encode())

    async def received(self, count: int) -> None:
        seen, buf = 0, b""
        while seen < count:
            buf += await self.reader.read(65536)
            seen += buf.count(b"</message>")
            buf = buf[buf.rfind(b"</message>") + 10:] if b"</message>" in buf else buf[-10:]

    async def close(self) -> None:
        self.writer.close()


class WebSocket:
    async def login(self, server: Server, user: str) -> None:
        self.http = aiohttp.ClientSession()
        port = server.http.port  # type: ignore[attr-defined]
        self.ws = await self.http.ws_connect(f"http://127.0.0.1:{port}/xmpp-websocket",
                                             protocols=("xmpp",))
        opening = f"<open xmlns='{FRAMING}' to='localhost' version='1.0'/>"
        for step, count in ((opening, 2), (auth(user), 1), (opening, 2), (bind("b"), 1)):
            await self.ws.send_str(step)
            for _ in range(count):
                await self.ws.receive_str()

    async def send(self, xml: str) -> None:
        await self.ws.send_str(xml)

    async def received(self, count: int) -> None:
        seen = 0
        while seen < count:
            if "<message" in await self.ws.receive_str():
                seen += 1

    async def close(self) -> None:
        await self.ws.close()
        await self.http.close()


class Bosh:
    async def login(self, server: Server, user: str) -> None:
        self.http = aiohttp.ClientSession()
        self.url = f"http://127.0.0.1:{server.http.port}/http-bind"  # type: ignore[attr-defined]
        self.rid = 1
        self.sid = ""
        body = await self._post("", to="localhost", wait="10", hold="1",
                                **{"xmpp:version": "1.0"})
        self.sid = etree.fromstring(body.encode()).get("sid", "")
        await self._post(auth(user))
        await self._post("", **{"xmpp:restart": "true"})
        await self._post(bind("b"))
        self.outstanding: asyncio.Task[str] | None = None

    async def _post(self, payload: str, **attrs: str) -> str:
        self.rid += 1
        attrs = {"rid": str(self.rid), **({"sid": self.sid} if self.sid else {}), **attrs}
        text = " ".join(f"{k}='{v}'" for k, v in attrs.items())
        data = f"<body xmlns='{HTTPBIND}' xmlns:xmpp='urn:xmpp:xbosh' {text}>{payload}</body>"
        async with self.http.post(self.url, data=data) as response:
            return await response.text()

    async def send(self, xml: str) -> None:
        # As web clients do: the new request releases the one held before it (hold=1).
        previous, self.outstanding = self.outstanding, asyncio.create_task(self._post(xml))
        if previous is not None:
            await previous

    async def received(self, count: int) -> None:
        seen = 0
        while seen < count:
            seen += (await self._post("")).count("</message>")

    async def close(self) -> None:
        await self._post("", type="terminate")
        if self.outstanding is not None:
            await self.outstanding
        await self.http.close()


async def run(kind: type, server: Server, pairs: int, messages: int) -> float:
    assert server.host is not None
    clients = []
    for i in range(pairs):
        a, b = kind(), kind()
        name = kind.__name__.lower()
        for client, user in ((a, f"{name}a{i}"), (b, f"{name}b{i}")):
            await server.host.accounts.create(user, "pw")
            await client.login(server, user)
        clients.append((a, b, f"{name}b{i}@localhost/b"))
    started = time.perf_counter()

    async def pair(a: object, b: object, to: str) -> None:
        receiving = asyncio.create_task(b.received(messages))  # type: ignore[attr-defined]
        for n in range(messages):
            await a.send(message(to, n))  # type: ignore[attr-defined]
        await receiving

    async with asyncio.timeout(60):
        await asyncio.gather(*(pair(a, b, to) for a, b, to in clients))
    elapsed = time.perf_counter() - started
    for a, b, _ in clients:
        await a.close()
        await b.close()
    return pairs * messages / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("XMPPD_")}
        env.update({"XMPPD_SERVER_DATA_DIR": tmp, "XMPPD_C2S_PORT": "0",
                    "XMPPD_C2S_DIRECT_TLS_PORT": "0", "XMPPD_HTTP_PORT": "0",
                    "XMPPD_S2S_ENABLED": "false", "XMPPD_C2S_REQUIRE_TLS": "false",
                    "XMPPD_SERVER_LOG_LEVEL": "warning"})
        server = Server(load_config(None, env=env))
        await server.start()
        try:
            rates = {kind.__name__: await run(kind, server, args.pairs, args.messages)
                     for kind in (Tcp, WebSocket, Bosh)}
        finally:
            await server.stop()
    print(f"{'transport':<10} {'msg/s':>10} {'vs TCP':>8}")
    for name, rate in rates.items():
        print(f"{name:<10} {rate:>10.0f} {rate / rates['Tcp']:>8.2f}")


if __name__ == "__main__":
    asyncio.run(main())
