"""The local admin endpoint (``web_bridge/admin_socket.py``): a Unix socket only the server's
own user reaches, made safely, given back at stop, never taken from another running server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from web_bridge.admin_socket import Unreachable, ask
from xmpp_server.server import Server

# A client as another local user would write it (the system's Python: any user may run it).
_OTHER_USER_CLIENT = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as exc:
    print(type(exc).__name__)
    sys.exit()
s.sendall(b"GET /rooms HTTP/1.1\\r\\nHost: xmppd\\r\\nConnection: close\\r\\n\\r\\n")
print(s.recv(200).split(b"\\r\\n")[0].decode())
"""


def _socket_of(server: Server) -> Path:
    return server.config.server.data_dir / "admin.sock"


async def test_only_this_user_reaches_it(server: Server) -> None:
    path = _socket_of(server)
    assert stat.S_ISSOCK(path.stat().st_mode)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    answer = await ask(path, "/rooms")
    assert answer == {"domain": "localhost", "rooms": []}


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every user may pass through (pytest's own are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="xmppd-admin-"))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def test_other_users_are_refused(servers, shared_dir: Path) -> None:
    """Even with the file mode loosened, another user's connection is refused (SO_PEERCRED)."""
    python = shutil.which("python3", path="/usr/bin")
    if os.getuid() != 0 or python is None:
        pytest.skip("needs root (to run a client as another user) and /usr/bin/python3")
    path = shared_dir / "admin.sock"
    await servers.start(server={"admin_socket": str(path)})

    def as_nobody() -> str:
        done = subprocess.run([python, "-c", _OTHER_USER_CLIENT, str(path)], user=65534,
                              group=65534, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert await asyncio.to_thread(as_nobody) == "PermissionError"  # mode 0600
    path.chmod(0o666)
    assert await asyncio.to_thread(as_nobody) == "HTTP/1.1 403 Forbidden"
    assert "rooms" in await ask(path, "/rooms")  # its own user still gets in


async def test_stale_socket_is_replaced(servers, tmp_path: Path) -> None:
    """A server that died left its socket file behind: the next one takes the path over."""
    data_dir = tmp_path / "data-0"
    data_dir.mkdir()
    with contextlib.closing(socket.socket(socket.AF_UNIX)) as dead:
        dead.bind(str(data_dir / "admin.sock"))
    with pytest.raises(Unreachable, match="no server is running"):
        await ask(data_dir / "admin.sock", "/rooms")
    server = await servers.start()
    assert _socket_of(server) == data_dir / "admin.sock"
    assert (await ask(_socket_of(server), "/rooms"))["rooms"] == []


async def test_another_running_server_keeps_its_socket(servers, caplog) -> None:
    first = await servers.start()
    path = _socket_of(first)
    second = await servers.start(server={"admin_socket": str(path)})
    assert "another server answers there" in caplog.text
    await servers.stop(second)
    assert path.is_socket()  # the second did not take it, nor remove it
    assert (await ask(path, "/rooms"))["domain"] == "localhost"


async def test_runs_without_it_when_it_cannot_be_made(servers, tmp_path: Path, caplog) -> None:
    too_long = tmp_path / ("x" * 120) / "admin.sock"  # beyond what a Unix socket path holds
    server = await servers.start(server={"admin_socket": str(too_long)})
    assert "xmppd commands will read the database only" in caplog.text
    assert server.admin is not None and not too_long.exists()
    with pytest.raises(Unreachable):
        await ask(too_long, "/rooms")
