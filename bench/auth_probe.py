"""What an attacker on loopback learns from the login path, and what a real client suffers.

Starts a server in-process (SQLite, a temporary data directory, default ``[auth]`` settings)
for each probe and talks SASL to it over direct TLS, as an attacker or an old client would:

spray      40 accounts, the last 10 with the weak password "123456"; one address guesses
           "123456" against each, first one after another, then (fresh server) all 40 SCRAM
           exchanges opened at once and the 40 proofs sent together. Prints passwords found.
aborts     SCRAM client-first then <abort/>, 5 times on one account: can its owner, from another
           address, still log in with the right password? Then the same against 200 account
           names from one address: at which abort is that address refused (never: "-")?
old-client the SASL sequence of slixmpp 1.8.3 over TLS 1.3 (SCRAM-SHA-256-PLUS and -SHA-1-PLUS
           with tls-unique, refused; SCRAM-SHA-256 and -SHA-1 with gs2 flag 'y', refused;
           PLAIN, right password), 8 logins in a row; prints how many succeed.
plain      PLAIN with a wrong password for an existing account vs an unknown account, N of
           each (every one from its own 127.0.1.x address, on its own account: no throttle;
           in turns, each kind first every other time); prints the medians, client side, from
           <auth/> to <failure/>.

    python3 bench/auth_probe.py            # every probe
    python3 bench/auth_probe.py plain -n 60

Loopback only, bounded loops; the numbers on the old and the new code are in bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import secrets
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.scram_client import ScramClient  # noqa: E402
from tests.support.server import env_for  # noqa: E402
from xmpp_server.config import load_config  # noqa: E402
from xmpp_server.server import Server  # noqa: E402

SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
WEAK = "123456"


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.buffer = reader, writer, b""

    @classmethod
    async def open(cls, server: Server, source: str = "127.0.0.1") -> Conn:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server.direct_tls_port, ssl=ctx, server_hostname="localhost",
            local_addr=(source, 0))
        conn = cls(reader, writer)
        await conn.send(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream="
                        b"'http://etherx.jabber.org/streams' to='localhost' version='1.0'>")
        await conn.until(rb"</stream:features>")
        return conn

    async def send(self, data: bytes) -> None:
        self.buffer = b""
        self.writer.write(data)
        await self.writer.drain()

    async def until(self, pattern: bytes) -> bytes:
        async with asyncio.timeout(30):
            while not re.search(pattern, self.buffer):
                chunk = await self.reader.read(65536)
                if not chunk:
                    raise ConnectionError(self.buffer)
                self.buffer += chunk
        return self.buffer

    async def sasl(self, tag: str, data: bytes | None, mechanism: str = "") -> bytes:
        """Send <auth/>, <response/> or <abort/>; the next challenge, success or failure."""
        payload = base64.b64encode(data).decode() if data is not None else ""
        attr = f" mechanism='{mechanism}'" if mechanism else ""
        await self.send(f"<{tag} xmlns='{SASL}'{attr}>{payload}</{tag}>".encode())
        return await self.until(rb"</(challenge|success|failure)>|<success[^>]*/>")

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


def _data(reply: bytes) -> bytes:
    match = re.search(rb"<challenge[^>]*>([^<]*)</challenge>", reply)
    assert match, reply
    return base64.b64decode(match.group(1))


async def start(data_dir: Path) -> Server:
    env = env_for(data_dir, f"sqlite+aiosqlite:///{data_dir / 'xmppd.db'}",
                  modules={"enabled": ["ping"]})
    base = {k: v for k, v in os.environ.items() if not k.startswith("XMPPD_")}
    server = Server(load_config(None, env={**base, **env}))
    await server.start()
    return server


async def spray(tmp: Path, concurrent: bool) -> int:
    server = await start(tmp / ("spray-c" if concurrent else "spray-s"))
    try:
        names = [f"user{i:02}" for i in range(40)]
        for i, name in enumerate(names):
            await server.host.accounts.create(name, WEAK if i >= 30 else secrets.token_hex(8))
        conns = [await Conn.open(server) for _ in names]
        clients = [ScramClient("SCRAM-SHA-256", name, WEAK) for name in names]

        async def first(i: int) -> bytes:
            return await conns[i].sasl("auth", clients[i].first(), "SCRAM-SHA-256")

        async def final(i: int, reply: bytes) -> bool:
            if b"<challenge" not in reply:
                return False
            reply = await conns[i].sasl("response", clients[i].final(_data(reply)))
            return b"<success" in reply

        if concurrent:
            firsts = await asyncio.gather(*(first(i) for i in range(40)))
            found = await asyncio.gather(*(final(i, firsts[i]) for i in range(40)))
        else:
            found = [await final(i, await first(i)) for i in range(40)]
        for conn in conns:
            await conn.close()
        return sum(found)
    finally:
        await server.stop()


async def scram_login(server: Server, user: str, password: str, source: str) -> bytes:
    conn = await Conn.open(server, source)
    try:
        client = ScramClient("SCRAM-SHA-256", user, password)
        reply = await conn.sasl("auth", client.first(), "SCRAM-SHA-256")
        if b"<challenge" in reply:
            reply = await conn.sasl("response", client.final(_data(reply)))
        return reply
    finally:
        await conn.close()


async def abort_once(server: Server, user: str, source: str) -> bool:
    """SCRAM client-first, then <abort/>; False if the server refused the exchange."""
    conn = await Conn.open(server, source)
    try:
        client = ScramClient("SCRAM-SHA-256", user, "x")
        if b"<challenge" not in await conn.sasl("auth", client.first(), "SCRAM-SHA-256"):
            return False
        await conn.sasl("abort", None)
        return True
    finally:
        await conn.close()


async def aborts(tmp: Path) -> tuple[str, str]:
    server = await start(tmp / "aborts")
    try:
        await server.host.accounts.create("victim", "correct horse")
        for _ in range(5):
            await abort_once(server, "victim", "127.0.0.9")
        owner = await scram_login(server, "victim", "correct horse", "127.0.0.1")
        outcome = "logs in" if b"<success" in owner else re.sub(
            rb".*<failure[^>]*><([a-z-]+)/>.*", rb"\1", owner, flags=re.S).decode()
        refused_at = "-"
        for i in range(1, 201):  # a new account name each time, from one more address
            if not await abort_once(server, f"name{i}", "127.0.0.10"):
                refused_at = str(i)
                break
        return outcome, refused_at
    finally:
        await server.stop()


async def old_client(tmp: Path, logins: int = 8) -> int:
    server = await start(tmp / "old-client")
    try:
        await server.host.accounts.create("poezio", "secret")
        ok = 0
        for _ in range(logins):
            conn = await Conn.open(server)
            try:
                for mech, flag in (("SCRAM-SHA-256-PLUS", "p=tls-unique"),
                                   ("SCRAM-SHA-1-PLUS", "p=tls-unique"),
                                   ("SCRAM-SHA-256", "y"), ("SCRAM-SHA-1", "y")):
                    client = ScramClient(mech, "poezio", "secret", flag=flag)
                    await conn.sasl("auth", client.first(), mech)
                reply = await conn.sasl("auth", b"\0poezio\0secret", "PLAIN")
                ok += b"<success" in reply
            finally:
                await conn.close()
        return ok
    finally:
        await server.stop()


async def plain(tmp: Path, n: int) -> tuple[float, float]:
    server = await start(tmp / "plain")
    try:
        for i in range(n):
            await server.host.accounts.create(f"real{i}", "the right one")
        times: dict[str, list[float]] = {"wrong": [], "unknown": []}
        for i in range(n):
            source = f"127.0.1.{i % 250 + 1}"
            pair = [("wrong", f"real{i}"), ("unknown", f"ghost{i}")]
            for kind, user in pair if i % 2 else pair[::-1]:  # neither always goes first
                conn = await Conn.open(server, source)
                try:
                    start_t = time.perf_counter()
                    reply = await conn.sasl("auth", f"\0{user}\0wrong guess".encode(), "PLAIN")
                    times[kind].append(time.perf_counter() - start_t)
                    assert b"<not-authorized/>" in reply, reply
                finally:
                    await conn.close()
        return statistics.median(times["wrong"]) * 1e3, statistics.median(times["unknown"]) * 1e3
    finally:
        await server.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("probes", nargs="*", default=["spray", "aborts", "old-client", "plain"])
    parser.add_argument("-n", type=int, default=40, help="PLAIN attempts of each kind")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        if "spray" in args.probes:
            print(f"spray: weak passwords found, one after another: {await spray(tmp, False)}/10,"
                  f" 40 exchanges at once: {await spray(tmp, True)}/10")
        if "aborts" in args.probes:
            owner, refused_at = await aborts(tmp)
            print(f"aborts: after 5 aborts on an account, its owner (another address): {owner};"
                  f" aborts on 200 names from one address refused at: {refused_at}")
        if "old-client" in args.probes:
            print(f"old-client: slixmpp 1.8.3 logins that succeed: {await old_client(tmp)}/8")
        if "plain" in args.probes:
            wrong, unknown = await plain(tmp, args.n)
            print(f"plain: median ms to <failure/>, wrong password {wrong:.2f}, "
                  f"unknown user {unknown:.2f} (n={args.n})")


if __name__ == "__main__":
    asyncio.run(main())
