"""Resource limits against hostile clients, measured on a server in a subprocess (loopback only).

Three figures, each bounded in time and connections:

* ``fd``: the server runs with RLIMIT_NOFILE = ``--nofile``; ``--conns`` connections are opened
  (the later ones fail or hang) and held for ``--hold`` seconds; reported: bytes the server
  logged meanwhile, and whether it answers a new stream once they are closed.
* ``flood``: a client logs in and stops reading while another sends it ``--flood-mb`` MB of
  messages (modules without the archive); reported: the server's peak RSS growth and whether
  the reader was disconnected.
* ``trickle``: a connection sends one byte of its stream header every ``--trickle-every``
  seconds; reported: how long the server keeps it (capped at ``--trickle-cap`` seconds).

    python bench/limits_bench.py fd flood trickle
    python bench/limits_bench.py --asyncio fd            # asyncio's own loop instead of uvloop
    python bench/limits_bench.py --code /tmp/old fd      # the server from another source tree
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEADER = (b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
          b"xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``xmppd serve`` (uvloop, as in production) in a subprocess; its log goes to a file."""

    code: Path | None = None  # source tree of the server (None: this one)
    uvloop = True

    def __init__(self, tmp: Path, nofile: int | None = None, **env: str) -> None:
        self.port = free_port()
        self.log = tmp / "server.log"
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("XMPPD_")},
                    "XMPPD_SERVER_DATA_DIR": str(tmp / "data"),
                    "XMPPD_C2S_PORT": str(self.port), "XMPPD_C2S_DIRECT_TLS_PORT": "0",
                    "XMPPD_C2S_REQUIRE_TLS": "false", "XMPPD_HTTP_ENABLED": "false",
                    "XMPPD_S2S_ENABLED": "false", **env}
        self.nofile = nofile
        # without uvloop: the server falls back to asyncio's own loop when it cannot import it
        self.argv = [sys.executable, "-m", "xmpp_server", "serve"] if self.uvloop else [
            sys.executable, "-c", "import sys; sys.modules['uvloop'] = None; "
            "from xmpp_server.cli import main; sys.exit(main(['serve']))"]
        self.proc: subprocess.Popen[bytes] | None = None

    def _limit(self) -> None:
        if self.nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

    async def __aenter__(self) -> ServerProcess:
        self.proc = subprocess.Popen(
            self.argv, env=self.env, cwd=self.code or Path(__file__).parent.parent,
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT, preexec_fn=self._limit)
        for _ in range(200):
            if b"serving" in self.log.read_bytes():
                return self
            await asyncio.sleep(0.05)
        raise RuntimeError(self.log.read_text()[-2000:])

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(10)

    def rss_kb(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def user(self, name: str) -> None:
        subprocess.run([sys.executable, "-m", "xmpp_server", "user", "add", f"{name}@localhost",
                        "--password", "pw"], env=self.env, check=True, capture_output=True,
                       cwd=self.code or Path(__file__).parent.parent)


async def features(port: int, timeout: float = 5.0) -> bool:
    """Whether a new stream on ``port`` gets its features."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(HEADER)
            buf = b""
            while b"</stream:features>" not in buf:
                chunk = await reader.read(65536)
                if not chunk:
                    return False
                buf += chunk
            writer.close()
            return True
    except (TimeoutError, OSError):
        return False


async def login(port: int, user: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
    """A bound stream of ``user``: its reader, writer and full JID."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def until(token: bytes) -> bytes:
        buf = b""
        while token not in buf:
            chunk = await reader.read(65536)
            if not chunk:
                raise ConnectionError(buf)
            buf += chunk
        return buf

    writer.write(HEADER)
    await until(b"</stream:features>")
    cred = base64.b64encode(f"\0{user}\0pw".encode()).decode()
    writer.write(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{cred}"
                 f"</auth>".encode())
    await until(b"<success")
    writer.write(HEADER)
    await until(b"</stream:features>")
    writer.write(b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
    bound = await until(b"</iq>")
    return reader, writer, bound.split(b"<jid>")[1].split(b"</jid>")[0].decode()


async def bench_fd(args: argparse.Namespace, tmp: Path) -> None:
    async with ServerProcess(tmp, nofile=args.nofile) as server:
        before = server.log.stat().st_size
        held: list[socket.socket] = []
        for _ in range(args.conns):
            sock = socket.socket()
            sock.setblocking(False)
            try:
                sock.connect(("127.0.0.1", server.port))
            except BlockingIOError:
                pass
            held.append(sock)
        await asyncio.sleep(args.hold)
        logged = server.log.stat().st_size - before
        for sock in held:
            sock.close()
        await asyncio.sleep(1.5)
        serves = await features(server.port)
        print(f"fd: RLIMIT_NOFILE {args.nofile}, {args.conns} connections held {args.hold} s: "
              f"{logged:,} bytes logged; serves again after they close: {serves}")


async def bench_flood(args: argparse.Namespace, tmp: Path) -> None:
    # No archive (its writes, not the buffering, would set the pace), as in bench/run.sh.
    async with ServerProcess(tmp, XMPPD_MODULES_ENABLED="ping,roster,presence,messages") as server:
        server.user("reader")
        server.user("flooder")
        _r, reader_w, jid = await login(server.port, "reader")  # never reads again
        _f, f_writer, _ = await login(server.port, "flooder")
        base = server.rss_kb()
        body = "x" * 1000
        stanza = f"<message to='{jid}' type='chat'><body>{body}</body></message>".encode()
        total, peak = 0, base
        while total < args.flood_mb * 1_000_000:
            f_writer.write(stanza * 100)
            total += len(stanza) * 100
            try:
                await asyncio.wait_for(f_writer.drain(), 30)
            except TimeoutError:
                break
            peak = max(peak, server.rss_kb())
        await asyncio.sleep(1)
        peak = max(peak, server.rss_kb())
        # Has the server closed the non-reading client? (its socket reads EOF after the data)
        closed = b"policy-violation" in (server.log.read_bytes())
        print(f"flood: {total / 1e6:.1f} MB sent to a client that does not read: server RSS "
              f"+{(peak - base) / 1024:.1f} MB (base {base / 1024:.0f} MB); "
              f"closed with policy-violation: {closed}")
        reader_w.close()
        f_writer.close()


async def bench_trickle(args: argparse.Namespace, tmp: Path) -> None:
    async with ServerProcess(tmp, XMPPD_C2S_PING_INTERVAL=str(args.trickle_ping)) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        start = time.monotonic()
        alive = True
        i = 0
        while time.monotonic() - start < args.trickle_cap:
            try:
                writer.write(HEADER[i % len(HEADER):i % len(HEADER) + 1])
                await writer.drain()
                data = await asyncio.wait_for(reader.read(65536), args.trickle_every)
                if not data:
                    alive = False
                    break
            except TimeoutError:
                pass
            except OSError:
                alive = False
                break
            i += 1
        lived = time.monotonic() - start
        print(f"trickle: one byte every {args.trickle_every} s (ping_interval "
              f"{args.trickle_ping} s): {'still open after' if alive else 'closed after'} "
              f"{lived:.0f} s")
        writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", nargs="+", choices=("fd", "flood", "trickle"))
    parser.add_argument("--nofile", type=int, default=128)
    parser.add_argument("--conns", type=int, default=300)
    parser.add_argument("--hold", type=float, default=15.0)
    parser.add_argument("--flood-mb", type=float, default=20.0)
    parser.add_argument("--trickle-every", type=float, default=2.0)
    parser.add_argument("--trickle-ping", type=int, default=5)
    parser.add_argument("--trickle-cap", type=float, default=120.0)
    parser.add_argument("--code", type=Path, help="run the server from this source tree")
    parser.add_argument("--asyncio", action="store_true", help="asyncio's loop, not uvloop")
    args = parser.parse_args()
    ServerProcess.code = args.code
    ServerProcess.uvloop = not args.asyncio
    for what in args.what:
        with tempfile.TemporaryDirectory() as tmp:
            await {"fd": bench_fd, "flood": bench_flood, "trickle": bench_trickle}[what](
                args, Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
