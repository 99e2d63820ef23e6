"""Running out of file descriptors: the limit is raised at start, accept failures are logged
once per interval (not once per attempt), and the server serves again once connections close.

The server runs in a subprocess with a low RLIMIT_NOFILE, on asyncio's own event loop (whose
accept loop reports every failure; uvloop refuses such connections silently).
"""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import subprocess
import sys
from pathlib import Path

from tests.support.server import free_port

HEADER = (b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
          b" to='localhost' version='1.0'>")
SERVE = ("import sys; sys.modules['uvloop'] = None; "  # asyncio's loop, not uvloop
         "from xmpp_server.cli import main; sys.exit(main(['serve']))")


async def _features(port: int) -> bool:
    try:
        async with asyncio.timeout(10):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(HEADER)
            data = b""
            while b"</stream:features>" not in data:
                chunk = await reader.read(65536)
                if not chunk:
                    return False
                data += chunk
            writer.close()
            return True
    except (TimeoutError, OSError):
        return False


async def test_out_of_file_descriptors(tmp_path: Path) -> None:
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("XMPPD_")},
           "XMPPD_SERVER_DATA_DIR": str(tmp_path / "data"), "XMPPD_C2S_PORT": str(port),
           "XMPPD_C2S_DIRECT_TLS_PORT": "0", "XMPPD_C2S_REQUIRE_TLS": "false",
           "XMPPD_HTTP_ENABLED": "false", "XMPPD_S2S_ENABLED": "false"}
    log_path = tmp_path / "server.log"

    def low_limit() -> None:  # the soft limit below the hard one, which is low too
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 128))

    with log_path.open("wb") as log_file:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", SERVE, env=env, stdout=log_file, stderr=subprocess.STDOUT,
            preexec_fn=low_limit)
    held: list[socket.socket] = []
    try:
        for _ in range(200):
            if b"serving localhost" in log_path.read_bytes():
                break
            await asyncio.sleep(0.05)
        limit_logged = b"open file limit (RLIMIT_NOFILE): 128 " in log_path.read_bytes()
        started = log_path.stat().st_size
        for _ in range(300):  # more than the server has descriptors for
            sock = socket.socket()
            sock.setblocking(False)
            try:
                sock.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            held.append(sock)
        await asyncio.sleep(3)
        log = log_path.read_bytes()[started:]
        assert b"cannot accept connections: Too many open files" in log
        assert len(log) < 2000, f"{len(log):,} bytes logged"
        for sock in held:
            sock.close()
        held.clear()
        await asyncio.sleep(1.5)  # asyncio retries accepting after a second
        assert await _features(port)
        assert limit_logged  # the soft limit was raised to the hard one
    finally:
        for sock in held:
            sock.close()
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
