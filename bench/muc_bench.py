#!/usr/bin/env python3
"""MUC benchmark (XEP-0045): xmppd beside Prosody, on one room.

Two measurements, per server, with a lean raw-socket client (asyncio + uvloop if installed,
pre-built byte strings, substring matching instead of XML parsing, as
../shared/bench/load/xmpp_load.py does):

- join: N clients (default 400) enter one room, ``--window`` joins in flight. A join is done
  when the client has its self-presence (status 110) and the subject, which the room sends
  after the presence of every other occupant: the cost of a join grows with the room, so the
  total is quadratic. Reported: wall time, joins/s, p50/p99 join latency, server CPU.
- fan-out: F occupants (default 100) of another room all speak, closed loop: each keeps
  ``--inflight`` messages in flight and sends the next when the room reflects its own back.
  Reported: occupant deliveries per second (every <body/> any occupant receives) over
  ``--duration`` seconds after ``--warmup``, messages/s, p50/p99 reflection latency.

Servers are started here on loopback, pinned to CPU 1 (the generator to CPU 0):
xmppd with plain TCP, SQLite, no per-room rate limit (``XMPPD_MUC_RATE=0``); Prosody (Debian)
from bench/prosody_muc.cfg.lua.in — the shared bench template plus a MUC component — started
as ../shared/bench/servers/start_prosody.sh does. Accounts u1..uN (password pwK) are created
by XEP-0077 in-band registration on both. xmppd's fan-out room has its archive off, like
Prosody's (no mod_muc_mam); ``--archive`` measures xmppd with it on as well.

    python3 bench/muc_bench.py                       # both servers, 400 joins, 100-fan-out
    python3 bench/muc_bench.py --servers xmppd --join-users 200 --duration 5

Prints one JSON line per server and measurement, then a table with the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import sys
from collections import deque

from muc_support import MUC, Meter, Prosody, Server, Xmppd, ms, now, pct, round3, table

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None


# -- the client ---------------------------------------------------------------------------------

class Conn(asyncio.Protocol):
    """One client connection: waits for tokens, or (fan-out) counts what it receives."""

    def __init__(self, bench: Bench, idx: int) -> None:
        self.bench = bench
        self.idx = idx
        self.buf = b""
        self.scan = 0
        self.waiter: asyncio.Future[bytes] | None = None
        self.tokens: tuple[bytes, ...] = ()
        self.tr: asyncio.Transport | None = None
        self.counting = False
        self.buffering = True  # keep what arrives (else it is dropped: others' presence)
        self.marker = b""
        self.carry_body = b""
        self.carry_mine = b""
        self.inflight = 0
        self.seq = 0
        self.prefix = b""
        self.sent_at: deque[float] = deque()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.tr = transport  # type: ignore[assignment]

    def write(self, data: bytes) -> None:
        assert self.tr is not None
        self.tr.write(data)

    def data_received(self, data: bytes) -> None:
        if self.counting:
            self.bench.on_fanout_data(self, data)
            return
        if not self.buffering:
            return
        self.buf += data
        if self.waiter is not None and not self.waiter.done():
            self._check()

    def _check(self) -> None:
        buf = self.buf
        for tok in self.tokens:
            i = buf.find(tok, max(0, self.scan - len(tok)))
            if i >= 0:
                self.buf = buf[i + len(tok):]
                self.scan = 0
                assert self.waiter is not None
                self.waiter.set_result(tok)
                return
        self.scan = len(buf)

    async def expect(self, *tokens: bytes, timeout: float = 60) -> bytes:
        self.tokens = tokens
        self.waiter = asyncio.get_running_loop().create_future()
        self.scan = 0
        self._check()
        try:
            return await asyncio.wait_for(self.waiter, timeout)
        finally:
            self.waiter = None  # what came after the token stays for the next expect

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("closed by the server"))


def both(token: str) -> tuple[bytes, bytes]:
    """A token with single and with double quotes (Prosody writes ', xmppd writes ")."""
    return token.encode(), token.replace("'", '"').encode()


class Bench:
    def __init__(self, args: argparse.Namespace, server: Server) -> None:
        self.a = args
        self.server = server
        self.loop = asyncio.get_running_loop()
        d = args.domain
        self.service = f"conference.{d}"
        self.header = (f"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                       f"xmlns:stream='http://etherx.jabber.org/streams' to='{d}' "
                       f"version='1.0'>").encode()
        self.deliveries = 0
        self.lat: list[float] = []
        self.sending = False
        self.measure = False

    def user(self, i: int) -> str:
        return f"u{i + 1}"

    async def open(self, i: int) -> Conn:
        conn = Conn(self, i)
        await self.loop.create_connection(lambda: conn, "127.0.0.1", self.server.port)
        return conn

    async def gather(self, fn, items, window: int) -> list:  # type: ignore[no-untyped-def]
        sem = asyncio.Semaphore(window)

        async def one(i):  # type: ignore[no-untyped-def]
            async with sem:
                return await fn(i)

        return await asyncio.gather(*(one(i) for i in items))

    # -- accounts and logins ------------------------------------------------------------------

    async def register(self, i: int) -> None:
        c = await self.open(i)
        try:
            c.write(self.header)
            await c.expect(b"</stream:features>")
            u = self.user(i)
            c.write(f"<iq type='set' id='reg'><query xmlns='jabber:iq:register'><username>{u}"
                    f"</username><password>pw{i + 1}</password></query></iq>".encode())
            tok = await c.expect(*both("type='result'"), b"<conflict", *both("type='error'"))
            if b"error" in tok:
                raise RuntimeError(f"registration of {u} failed")
        finally:
            if c.tr is not None:
                c.tr.close()

    async def login(self, i: int) -> Conn:
        c = await self.open(i)
        c.write(self.header)
        await c.expect(b"</stream:features>")
        cred = base64.b64encode(f"\0{self.user(i)}\0pw{i + 1}".encode())
        c.write(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + cred
                + b"</auth>")
        if await c.expect(b"<success", b"<failure") != b"<success":
            raise RuntimeError(f"login of {self.user(i)} failed")
        c.write(self.header)
        await c.expect(b"</stream:features>")
        c.write(b"<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                b"<resource>bench</resource></bind></iq>")
        await c.expect(b"</bind>")
        c.buffering = False
        c.buf = b""
        return c

    # -- rooms --------------------------------------------------------------------------------

    def join_stanza(self, room: str, c: Conn) -> bytes:
        return (f"<presence to='{room}@{self.service}/{self.user(c.idx)}'>"
                f"<x xmlns='{MUC}'/></presence>").encode()

    async def create_room(self, room: str, c: Conn, archive: bool) -> None:
        c.buffering = True
        c.write(self.join_stanza(room, c))
        await c.expect(*both("code='201'"))
        fields = ""
        if isinstance(self.server, Xmppd):
            fields = ("<field var='muc#roomconfig_enablearchiving'><value>"
                      f"{1 if archive else 0}</value></field>")
        c.write(f"<iq type='set' id='cfg' to='{room}@{self.service}'><query xmlns='{MUC}#owner'>"
                f"<x xmlns='jabber:x:data' type='submit'>{fields}</x></query></iq>".encode())
        await c.expect(*both("id='cfg'"))
        c.buffering = False
        c.buf = b""

    async def join(self, room: str, c: Conn) -> float:
        t = now()
        c.buffering = True
        c.write(self.join_stanza(room, c))
        await c.expect(*both("code='110'"))
        await c.expect(b"<subject")
        c.buffering = False
        c.buf = b""
        return now() - t

    # -- fan-out ------------------------------------------------------------------------------

    def send(self, c: Conn) -> None:
        c.inflight += 1
        c.seq += 1
        c.sent_at.append(now())
        c.write(c.prefix + b"%d</body></message>" % c.seq)

    def on_fanout_data(self, c: Conn, data: bytes) -> None:
        chunk = c.carry_body + data
        n = chunk.count(b"</body>")
        c.carry_body = chunk[-6:]
        if self.measure:
            self.deliveries += n
        chunk = c.carry_mine + data
        mine = chunk.count(c.marker)
        c.carry_mine = chunk[-(len(c.marker) - 1):]
        t = now()
        for _ in range(mine):
            c.inflight -= 1
            if c.sent_at:
                sent = c.sent_at.popleft()
                if self.measure:
                    self.lat.append(t - sent)
            if self.sending:
                self.send(c)


async def run_server(args: argparse.Namespace, server: Server) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    bench = Bench(args, server)
    n = max(args.join_users, args.fanout_users)
    t = now()
    await bench.gather(bench.register, range(n), 50)
    print(f"# {server.label}: registered {n} in {now() - t:.1f}s", file=sys.stderr)
    clients = await bench.gather(bench.login, range(n), 50)

    # join: client 0 creates and configures the room, the others enter, `window` at a time
    owner = clients[0]
    await bench.create_room("join", owner, archive=False)
    meter = Meter(server.pid)
    lat = await bench.gather(lambda c: bench.join("join", c), clients[1:args.join_users],
                             args.window)
    m = meter.done()
    wall = m["wall"] or 0.0
    joined = len(lat) + 1
    presences = joined * (joined - 1) // 2 * 2 + joined  # each sees the others, and itself
    out.append({"server": server.label, "test": "join", "occupants": joined,
                "window": args.window, "wall_s": round(wall, 3),
                "joins_per_s": round(len(lat) / wall, 1),
                "join_ms_p50": ms(pct(lat, 50)), "join_ms_p99": ms(pct(lat, 99)),
                "presences_delivered": presences, "server_cpu_pct": m["server_cpu_pct"],
                "server_cpu_s": round3(m["server_cpu_s"]), "gen_cpu_pct": m["gen_cpu_pct"],
                "other_cpu_pct": m["other_cpu_pct"], "loadavg": os.getloadavg()[0]})
    print(json.dumps(out[-1]), flush=True)

    archives = (False, True) if args.archive and isinstance(server, Xmppd) else (False,)
    for archive in archives:
        room = "fanout-archived" if archive else "fanout"
        members = clients[:args.fanout_users]
        await bench.create_room(room, members[0], archive=archive)
        for c in members[1:]:
            await bench.join(room, c)
        for c in members:
            c.marker = f"<body>s{c.idx} ".encode()
            c.prefix = (f"<message to='{room}@{bench.service}' type='groupchat'>"
                        f"<body>s{c.idx} ").encode()
            c.carry_body = c.carry_mine = b""
            c.sent_at.clear()
            c.inflight = 0
            c.counting = True
        senders = members[:args.senders]
        bench.deliveries = 0
        bench.lat = []
        bench.sending = True
        for c in senders:
            for _ in range(args.inflight):
                bench.send(c)
        await asyncio.sleep(args.warmup)
        bench.measure = True
        meter = Meter(server.pid)
        await asyncio.sleep(args.duration)
        bench.measure = False
        m = meter.done()
        wall = m["wall"] or 1.0
        delivered = bench.deliveries
        srv_s = m["server_cpu_s"]
        bench.sending = False
        deadline = now() + 10
        while any(c.inflight for c in senders) and now() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        for c in members:
            c.counting = False
        out.append({"server": server.label, "test": "fanout", "archive": archive,
                    "occupants": len(members), "senders": len(senders),
                    "inflight_per_sender": args.inflight, "duration_s": round(wall, 2),
                    "deliveries_per_s": round(delivered / wall),
                    "messages_per_s": round(delivered / wall / len(members), 1),
                    "reflect_ms_p50": ms(pct(bench.lat, 50)),
                    "reflect_ms_p99": ms(pct(bench.lat, 99)),
                    "unanswered_after_drain": sum(c.inflight for c in senders),
                    "server_cpu_pct": m["server_cpu_pct"],
                    "deliveries_per_server_cpu_s": round(delivered / srv_s) if srv_s else None,
                    "gen_cpu_pct": m["gen_cpu_pct"], "other_cpu_pct": m["other_cpu_pct"],
                    "loadavg": os.getloadavg()[0]})
        print(json.dumps(out[-1]), flush=True)
    for c in clients:
        if c.tr is not None:
            c.tr.write(b"</stream:stream>")
            c.tr.close()
    await asyncio.sleep(0.5)
    return out


async def main(args: argparse.Namespace) -> int:
    try:
        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass
    if args.gen_cpus and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {int(c) for c in args.gen_cpus.split(",")})
    results: list[dict[str, object]] = []
    for name in args.servers.split(","):
        server: Server = {"xmppd": Xmppd, "prosody": Prosody}[name.strip()](args)
        server.start()
        try:
            results += await run_server(args, server)
        finally:
            server.stop()
    print(table(results))
    return 0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--servers", default="xmppd,prosody")
    p.add_argument("--domain", default="bench.test")
    p.add_argument("--join-users", type=int, default=400)
    p.add_argument("--fanout-users", type=int, default=100)
    p.add_argument("--window", type=int, default=10, help="joins in flight")
    p.add_argument("--senders", type=int, default=100, help="fan-out occupants that speak")
    p.add_argument("--inflight", type=int, default=1, help="messages in flight per sender")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--archive", action="store_true", help="also fan-out with xmppd's archive on")
    p.add_argument("--xmppd-port", type=int, default=25322)
    p.add_argument("--prosody-port", type=int, default=26222)
    p.add_argument("--prosody-auth", default=os.environ.get("PROSODY_AUTH", "internal_plain"))
    p.add_argument("--prosody-nagle", default=os.environ.get("PROSODY_NAGLE", "true"))
    p.add_argument("--server-cpus", default=os.environ.get("SERVER_CPUS", "1"))
    p.add_argument("--gen-cpus", default=os.environ.get("GEN_CPUS", "0"))
    return p.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    if uvloop is not None:
        uvloop.install()
    sys.exit(asyncio.run(main(arguments)))
