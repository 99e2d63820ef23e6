"""A port already taken: ``xmppd serve`` ends with one line naming the address, the listener
and the setting, and exit status 2; in the process, whatever had started is stopped again."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.loops import TEST_LOOP
from tests.support.server import env_for, free_port
from xmpp_server.config import load_config
from xmpp_server.listening import ListenError
from xmpp_server.server import Server

ROOT = Path(__file__).resolve().parents[2]  # this checkout's code, whatever is installed

# listener name in the message, its port setting, as XMPPD_* names it
LISTENERS = [
    ("c2s", "c2s.port"),
    ("c2s direct TLS", "c2s.direct_tls_port"),
    ("s2s", "s2s.port"),
    ("s2s direct TLS", "s2s.direct_tls_port"),
    ("components", "components.port"),
    ("http", "http.port"),
]


def env_var(key: str) -> str:
    section, _, name = key.partition(".")
    return f"XMPPD_{section.upper()}_{name.upper()}"


@pytest.fixture
def occupied() -> Iterator[int]:
    """A port on 127.0.0.1 some other program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def serve(tmp_path: Path, taken: str, port: int,
          log_level: str) -> subprocess.CompletedProcess[str]:
    """``xmppd serve`` with every listener on (components too), ``taken`` on ``port``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("XMPPD_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update({env_var(key): str(free_port()) for _, key in LISTENERS})
    env.update({
        env_var(taken): str(port),
        "XMPPD_SERVER_DATA_DIR": str(tmp_path / "data"),
        "XMPPD_SERVER_LOG_LEVEL": log_level,
        "XMPPD_SERVER_EVENT_LOOP": TEST_LOOP,
        "XMPPD_COMPONENTS_SECRETS": "bot.localhost=secret",
    })
    return subprocess.run([sys.executable, "-m", "xmpp_server", "serve"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("name", "key"), LISTENERS, ids=[key for _, key in LISTENERS])
def test_port_taken_is_one_line_and_exit_2(tmp_path: Path, occupied: int,
                                           name: str, key: str) -> None:
    result = serve(tmp_path, key, occupied, "warning")
    assert result.returncode == 2, result.stderr
    assert result.stderr == (f"xmppd: cannot listen on 127.0.0.1:{occupied} ({name}): "
                             f"address already in use; change {key} or stop the program "
                             "using it\n")


def test_port_taken_at_the_default_log_level_ends_with_that_line(
        tmp_path: Path, occupied: int) -> None:
    """The listeners opened before say so in the log; then the one line, no traceback."""
    result = serve(tmp_path, "s2s.port", occupied, "info")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.splitlines()[-1].startswith(
        f"xmppd: cannot listen on 127.0.0.1:{occupied} (s2s): address already in use"), \
        result.stderr


async def test_a_failed_start_stops_what_it_started(tmp_path: Path, occupied: int) -> None:
    """HTTP starts last: the client, server and component listeners opened before it are
    closed again and their tasks ended, and the database is closed."""
    ports = {"c2s": free_port(), "direct": free_port(), "s2s": free_port(),
             "s2s_direct": free_port(), "components": free_port()}
    env = env_for(tmp_path / "data", f"sqlite+aiosqlite:///{tmp_path / 'xmppd.db'}",
                  c2s={"port": ports["c2s"], "direct_tls_port": ports["direct"]},
                  s2s={"enabled": True, "port": ports["s2s"],
                       "direct_tls_port": ports["s2s_direct"]},
                  components={"port": ports["components"], "secrets": "bot.localhost=secret"},
                  http={"port": occupied})
    config = load_config(None, env={**{k: v for k, v in os.environ.items()
                                        if not k.startswith("XMPPD_")}, **env})
    before = asyncio.all_tasks()
    server = Server(config)
    with pytest.raises(ListenError, match=f"127.0.0.1:{occupied} \\(http\\)"):
        await server.start()
    await asyncio.sleep(0)
    left = {t for t in asyncio.all_tasks() - before if not t.done()}
    assert not left, left
    assert server.storage is None and server.federation is None and server.http is None
    for port in ports.values():
        with socket.socket() as sock:  # free again: nothing listens there any more
            sock.bind(("127.0.0.1", port))
            sock.listen()
