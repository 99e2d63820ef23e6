"""A database that cannot be opened: every command that opens it ends with one line naming
``storage.url`` without its password and saying what to do, and exit status 2."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.support.databases import ADMIN_DSN, unavailable
from tests.support.loops import TEST_LOOP
from tests.support.server import free_port

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "pw-" + secrets.token_hex(4)  # must never be printed


def xmppd(*args: str, cwd: Path, url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XMPPD_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update({
        "XMPPD_STORAGE_URL": url,
        "XMPPD_SERVER_DATA_DIR": str(cwd / "data"),
        "XMPPD_SERVER_LOG_LEVEL": "warning",
        "XMPPD_SERVER_EVENT_LOOP": TEST_LOOP,
        # nothing listens before the database is open; free ports all the same
        "XMPPD_C2S_PORT": str(free_port()), "XMPPD_C2S_DIRECT_TLS_PORT": "0",
        "XMPPD_S2S_ENABLED": "false", "XMPPD_HTTP_PORT": str(free_port()),
    })
    return subprocess.run([sys.executable, "-m", "xmpp_server", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("xmppd: "), result.stderr
    assert PASSWORD not in result.stderr + result.stdout
    return result.stderr


@pytest.fixture(scope="module")
def postgres() -> str:
    """The test PostgreSQL server as an asyncpg URL (trust authentication on 127.0.0.1)."""
    async def ping() -> None:
        conn = await asyncpg.connect(ADMIN_DSN, timeout=5)
        await conn.close()

    try:
        asyncio.run(ping())
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        unavailable("PostgreSQL", repr(exc))
    return make_url(ADMIN_DSN).set(drivername="postgresql+asyncpg").render_as_string(
        hide_password=False)


@pytest.mark.postgres
def test_database_that_does_not_exist(tmp_path: Path, postgres: str) -> None:
    name = f"xmppd_missing_{secrets.token_hex(6)}"
    url = make_url(postgres).set(database=name, password=PASSWORD)
    result = xmppd("serve", cwd=tmp_path, url=url.render_as_string(hide_password=False))
    line = one_line(result)
    shown = url.render_as_string(hide_password=True)
    assert line.startswith(f"xmppd: storage.url {shown}: database \"{name}\" does not exist; "
                           "create it: createdb "), line
    assert line.rstrip().endswith(f" {name}") and "***" in line, line


@pytest.mark.postgres
def test_login_refused(tmp_path: Path, postgres: str) -> None:
    role = f"nobody_{secrets.token_hex(6)}"
    url = make_url(postgres).set(username=role, password=PASSWORD)
    line = one_line(xmppd("user", "list", cwd=tmp_path,
                          url=url.render_as_string(hide_password=False)))
    assert f"storage.url {url.render_as_string(hide_password=True)}: " in line
    assert f"PostgreSQL refused the login of {role}: role \"{role}\" does not exist; " \
           "check the user and password in storage.url" in line, line


def test_server_not_running(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql+asyncpg://xmppd:{PASSWORD}@127.0.0.1:{port}/xmppd"
    line = one_line(xmppd("migrate", cwd=tmp_path, url=url))
    assert line == (f"xmppd: storage.url postgresql+asyncpg://xmppd:***@127.0.0.1:{port}/xmppd: "
                    f"cannot connect to 127.0.0.1:{port}: connection refused; check that "
                    "PostgreSQL runs and listens on TCP there (listen_addresses, port)\n")


def test_sqlite_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database, but a long enough text file " * 40)
    line = one_line(xmppd("serve", cwd=tmp_path, url=f"sqlite+aiosqlite:///{path}"))
    assert f"{path} is not an SQLite database" in line, line
    assert path.read_text().startswith("not a database")  # left as it was
