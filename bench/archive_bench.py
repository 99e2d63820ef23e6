"""XEP-0313 archive benchmark: is a page of a 1,000,000-message archive still fast?

For each backend (SQLite file, PostgreSQL database created and dropped here) it

1. starts the server on an empty database and registers alice;
2. fills alice's archive with ``--rows`` messages (20 contacts, 10 ms apart) through
   ``storage.archive.append`` in large transactions, and times the fill;
3. times 50-message pages through the repository: the first page, pages after an id near the
   start and in the middle, the page before the last id, the last page (RSM <before/>), and a
   middle page of one contact (``with``) — median and 95th percentile of ``--repeat`` runs;
4. times the same middle page through the whole IQ path inside the server (routing, form and
   RSM parsing, the query, 50 result messages built and serialised), and as a round trip from
   a slixmpp client over TCP (its parsing of the 51 stanzas included);
5. measures the write side: the routing-path cost of archiving one message (the pre-message
   hook: checks, serialisation, queueing) and rows per second written one transaction per
   message versus in batches, which is why the module's writer batches.

    python bench/archive_bench.py                       # both backends, 1,000,000 rows
    python bench/archive_bench.py --rows 100000 --backends sqlite
    PG_ADMIN_DSN=postgresql://postgres@127.0.0.1:5432/postgres python bench/archive_bench.py

Not part of the test suite (tests/storage/test_archive.py checks the query plans on 2,000 rows).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from copy import deepcopy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import slixmpp
from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage.archive import ArchiveEntry
from xmpp_server.config import load_config
from xmpp_server.jid import JID
from xmpp_server.server import Server
from xmpp_server.stanza import KINDS, Stanza

PG_ADMIN_DSN = os.environ.get("PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
MAM = "urn:xmpp:mam:2"
BATCH = 20_000
CONTACTS = 20
T0 = datetime(2023, 1, 1, tzinfo=UTC)
STEP = timedelta(milliseconds=10)
_VARIANT = "89ab"


def uuid7(ms: int) -> str:
    r = secrets.token_hex(10)
    t = f"{ms:012x}"
    return f"{t[:8]}-{t[8:]}-7{r[:3]}-{_VARIANT[int(r[3], 16) & 3]}{r[4:7]}-{r[7:19]}"


def entries(count: int, start: int = 0) -> Iterator[ArchiveEntry]:
    t0_ms = int(T0.timestamp() * 1000)
    for i in range(start, start + count):
        contact = f"contact{i % CONTACTS}@localhost"
        out = i % 2 == 0
        me = "alice@localhost"
        frm, to = (f"{me}/phone", contact) if out else (f"{contact}/pc", me)
        xml = (f'<message xmlns="jabber:client" from="{frm}" to="{to}" type="chat" id="m{i}">'
               f"<body>Message number {i}: a line of ordinary chat, about this long.</body>"
               "</message>")
        yield ArchiveEntry(uuid7(t0_ms + i * 10), T0 + i * STEP, contact, "out" if out else "in",
                           xml, None if out else "pc")


async def timed(fn: Callable[[], Awaitable[Any]], repeat: int) -> tuple[float, float]:
    """Median and 95th percentile in milliseconds (after one warm-up call)."""
    await fn()
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.95))]


# -- the server and a client -----------------------------------------------------------------

async def start_server(url: str, data_dir: Path) -> Server:
    env = {
        "XMPPD_SERVER_DOMAIN": "localhost", "XMPPD_SERVER_DATA_DIR": str(data_dir),
        "XMPPD_SERVER_LOG_LEVEL": "warning", "XMPPD_STORAGE_URL": url, "XMPPD_C2S_PORT": "0",
        "XMPPD_C2S_DIRECT_TLS_PORT": "0", "XMPPD_HTTP_ENABLED": "false",
        "XMPPD_S2S_ENABLED": "false", "XMPPD_C2S_REQUIRE_TLS": "false",
    }
    server = Server(load_config(None, env=env))
    await server.start()
    return server


class BenchClient(slixmpp.ClientXMPP):
    def __init__(self) -> None:
        super().__init__("alice@localhost/bench", "secret")
        self.started: asyncio.Future[bool] = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", lambda _: self.started.set_result(True))
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.enable_direct_tls = False


class FakeSession:
    """A bound client as routing sees it: serialises what it is sent, sends nothing."""

    def __init__(self, jid: JID) -> None:
        self.jid = jid
        self.username = jid.local
        self.sent = 0
        self.available = True
        self.priority = 0
        self.closed = False
        self.filter = None
        self.data: dict[str, Any] = {}

    def send(self, el: etree._Element) -> None:
        etree.tostring(el)
        self.sent += 1

    def send_bytes(self, data: bytes) -> None:
        self.sent += 1


def mam_iq(after: str, max_: int = 50) -> etree._Element:
    return etree.fromstring(
        f"<iq xmlns='jabber:client' type='set' id='b1'><query xmlns='{MAM}' queryid='b'>"
        f"<set xmlns='http://jabber.org/protocol/rsm'><max>{max_}</max><after>{after}</after>"
        "</set></query></iq>"
    )


# -- one backend ------------------------------------------------------------------------------

async def run_backend(name: str, url: str, rows: int, repeat: int,
                      data_dir: Path) -> dict[str, Any]:
    server = await start_server(url, data_dir)
    out: dict[str, Any] = {"backend": name, "rows": rows}
    try:
        host = server.host
        assert host is not None
        await host.accounts.create("alice", "secret")
        archive = host.storage.archive
        t = time.perf_counter()
        for start in range(0, rows, BATCH):
            n = min(BATCH, rows - start)
            await archive.append([("alice", e) for e in entries(n, start)])
        out["fill_s"] = time.perf_counter() - t
        await archive.analyze()
        ids = await pick_ids(archive, rows)
        queries: dict[str, Callable[[], Awaitable[Any]]] = {
            "first page": lambda: archive.query("alice", limit=50),
            "after-id @1%": lambda: archive.query("alice", after=[ids["start"]], limit=50),
            "after-id @50%": lambda: archive.query("alice", after=[ids["middle"]], limit=50),
            "before-id @end": lambda: archive.query("alice", before=[ids["end"]], limit=50,
                                                    backwards=True),
            "last page": lambda: archive.query("alice", limit=50, backwards=True),
            "with, @50%": lambda: archive.query("alice", with_jid="contact3@localhost",
                                                after=[ids["middle"]], limit=50),
        }
        out["pages"] = {label: await timed(fn, repeat) for label, fn in queries.items()}
        check = await archive.query("alice", after=[ids["middle"]], limit=50)
        assert len(check.entries) == 50
        out["plan"] = await archive.plan("alice", analyze=True, after=[ids["middle"]], limit=50)
        out["iq_server"] = await timed(lambda: iq_in_server(server, ids["middle"]), repeat)
        out["iq_client"] = await iq_round_trip(server, ids["middle"], repeat)
        out["hook_us"] = hook_cost(server)
        out["routing_us"] = await routing_cost(server)
        out["writes"] = await write_rates(server)
    finally:
        await server.stop()
    return out


async def pick_ids(archive: Any, rows: int) -> dict[str, str]:
    ids = {}
    for label, backwards, index in (("start", False, rows // 100), ("middle", False, rows // 2)):
        page = await archive.query("alice", start=T0 + index * STEP, limit=1, backwards=backwards)
        ids[label] = page.entries[0].id
    ids["end"] = (await archive.query("alice", limit=1, backwards=True)).entries[0].id
    return ids


async def iq_in_server(server: Server, after: str) -> None:
    assert server.host is not None
    jid = JID.parse("alice@localhost/bench")
    session = FakeSession(jid)
    el = mam_iq(after)
    el.set("from", str(jid))
    await server.host.router.route(Stanza(el, KINDS[el.tag], jid, None, session))  # type: ignore[arg-type]
    assert session.sent == 51, session.sent  # 50 results and the <fin/>


async def iq_round_trip(server: Server, after: str, repeat: int) -> tuple[float, float]:
    client = BenchClient()
    client.connect("127.0.0.1", server.c2s_port)
    await asyncio.wait_for(client.started, 10)
    try:
        async def once() -> None:
            iq = client.make_iq_set()
            iq.xml.append(etree_to_et(mam_iq(after)[0]))
            await iq.send(timeout=30)
        return await timed(once, repeat)
    finally:
        client.disconnect()
        await asyncio.wait_for(client.disconnected, 10)


def etree_to_et(el: etree._Element) -> Any:
    from xml.etree import ElementTree as ET

    return ET.fromstring(etree.tostring(el))


def hook_cost(server: Server, n: int = 5_000, rounds: int = 5) -> float:
    """Microseconds the routing path spends archiving one outgoing message (best round)."""
    assert server.host is not None
    mam = server.host.modules["mam"]
    frm, to = JID.parse("alice@localhost/phone"), JID.parse("bob@example.net")
    el = etree.fromstring(
        "<message xmlns='jabber:client' from='alice@localhost/phone' to='bob@example.net' "
        "type='chat' id='x1'><body>Hello there, how are you doing today?</body>"
        "<origin-id xmlns='urn:xmpp:sid:0' id='5f1c'/></message>"
    )
    stanza = Stanza(el, "message", frm, to)
    writer = mam.writer  # type: ignore[attr-defined]
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(n):
            mam.outgoing(stanza)  # type: ignore[attr-defined]
            mam.unstamp(stanza)  # type: ignore[attr-defined]
        best = min(best, (time.perf_counter() - t) / n * 1e6)
        writer._queue.clear()  # measured, not meant to be stored
        writer._done = writer._queued
    return best


async def routing_cost(server: Server, n: int = 3000, rounds: int = 3) -> dict[str, float]:
    """Microseconds per chat message alice -> bob through the router (both local, bob's
    session bound), with the archive's hooks and without them (best of ``rounds``). With them,
    the writer task stores the rows meanwhile on the same event loop, as in production."""
    host = server.host
    assert host is not None
    mam = host.modules["mam"]
    messages = host.modules["messages"]
    await host.accounts.create("bob", "secret")
    sessions = {}
    for user in ("alice", "bob"):
        session = FakeSession(JID.parse(f"{user}@localhost/route"))
        session.jid = host.sessions.bind(session, user, "route")  # type: ignore[arg-type]
        sessions[user] = session
    template = etree.fromstring(
        "<message xmlns='jabber:client' to='bob@localhost' type='chat' id='r1'>"
        "<body>Hello there, how are you doing today?</body></message>"
    )
    alice = sessions["alice"]

    async def run() -> float:
        best = float("inf")
        for _ in range(rounds):
            t = time.perf_counter()
            for _ in range(n):
                el = deepcopy(template)
                el.set("from", str(alice.jid))
                stanza = Stanza(el, "message", alice.jid, JID.parse("bob@localhost"), alice)  # type: ignore[arg-type]
                await host.router.route(stanza, outbound=True)
            best = min(best, (time.perf_counter() - t) / n * 1e6)
            await mam.writer.flush()  # type: ignore[attr-defined]
        return best

    try:
        with_archive = await run()
        host.events.off("pre-message", mam.outgoing)  # type: ignore[attr-defined]
        host.events.off("pre-message", mam.unstamp)  # type: ignore[attr-defined]
        messages.accepted.remove(mam.incoming)  # type: ignore[attr-defined]
        without = await run()
    finally:
        for session in sessions.values():
            host.sessions.unbind(session.jid)
    assert sessions["bob"].sent == 2 * rounds * n
    return {"with archive": with_archive, "without": without}


async def write_rates(server: Server, n: int = 1000) -> dict[str, float]:
    """Rows per second: one transaction per message, and the writer's batches of 500."""
    assert server.host is not None
    archive = server.host.storage.archive
    await server.host.accounts.create("wbench", "secret")
    rates = {}
    fresh = (ArchiveEntry(secrets.token_hex(8), datetime.now(UTC), "x@localhost", "in",
                          "<message xmlns='jabber:client'><body>w</body></message>")
             for _ in range(10 * n))
    t = time.perf_counter()
    for _ in range(n):
        await archive.append([("wbench", next(fresh))])
    rates["per message"] = n / (time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(0, 4 * n, 500):
        await archive.append([("wbench", next(fresh)) for _ in range(500)])
    rates["batches of 500"] = 4 * n / (time.perf_counter() - t)
    return rates


# -- databases and the report ----------------------------------------------------------------

async def pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results = []
    with tempfile.TemporaryDirectory(prefix="archive-bench-") as tmp:
        for backend in args.backends.split(","):
            data_dir = Path(tmp) / backend
            if backend == "sqlite":
                url = f"sqlite+aiosqlite:///{data_dir / 'bench.db'}"
                results.append(await run_backend(backend, url, args.rows, args.repeat, data_dir))
                continue
            name = f"xmppd_archive_bench_{secrets.token_hex(4)}"
            await pg_admin(f'CREATE DATABASE "{name}"')
            try:
                base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://",
                                                             "postgresql+asyncpg://")
                results.append(await run_backend(backend, f"{base}/{name}", args.rows,
                                                 args.repeat, data_dir))
            finally:
                await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    report(results, args.repeat)


def report(results: list[dict[str, Any]], repeat: int) -> None:
    print(f"\nArchive of one user; 50-message pages; median / p95 of {repeat} runs, in ms.\n")
    labels = list(results[0]["pages"])
    width = 32
    print("".ljust(width) + "".join(r["backend"].rjust(18) for r in results))
    print("rows".ljust(width) + "".join(f"{r['rows']:>18,}" for r in results))
    print("fill (s)".ljust(width) + "".join(f"{r['fill_s']:>18.1f}" for r in results))
    print("fill (rows/s)".ljust(width)
          + "".join(f"{r['rows'] / r['fill_s']:>18,.0f}" for r in results))
    for label in labels:
        print(label.ljust(width) + "".join(f"{fmt(r['pages'][label]):>18}" for r in results))
    print("IQ @50%, in server".ljust(width)
          + "".join(f"{fmt(r['iq_server']):>18}" for r in results))
    print("IQ, client round trip".ljust(width)
          + "".join(f"{fmt(r['iq_client']):>18}" for r in results))
    print("\nWrite side")
    print("archive hook (us/msg)".ljust(width)
          + "".join(f"{r['hook_us']:>18.1f}" for r in results))
    for kind in results[0]["routing_us"]:
        print(f"routing us/msg, {kind}".ljust(width)
              + "".join(f"{r['routing_us'][kind]:>18.1f}" for r in results))
    for kind in results[0]["writes"]:
        print(f"rows/s, {kind}".ljust(width)
              + "".join(f"{r['writes'][kind]:>18,.0f}" for r in results))
    for r in results:
        print(f"\nPlan of the after-id @50% page, {r['backend']}:")
        print("  " + r["plan"].replace("\n", "\n  "))


def fmt(pair: tuple[float, float]) -> str:
    return f"{pair[0]:.2f} / {pair[1]:.2f}"


if __name__ == "__main__":
    asyncio.run(main())
