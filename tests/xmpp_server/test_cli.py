"""The xmppd command line, run as users run it: a subprocess with a config file and env."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def xmppd(*args: str, cwd: Path, env: dict[str, str] | None = None,
          stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("XMPPD_")}
    # This checkout's code, whichever copy of the package is installed.
    clean["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), clean.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "xmpp_server", *args],
        cwd=cwd, env={**clean, **(env or {})}, input=stdin, capture_output=True, text=True,
        timeout=60,
    )


@pytest.fixture
def conf(tmp_path: Path, db_url: str) -> Path:
    path = tmp_path / "xmppd.toml"
    path.write_text(
        f'[server]\ndomain = "example.test"\ndata_dir = "{tmp_path / "data"}"\n'
        f'[storage]\nurl = "{db_url}"\n'
    )
    return path


def test_user_lifecycle(conf: Path, tmp_path: Path) -> None:
    assert xmppd("user", "add", "alice", "--password", "s3cret", "-c", str(conf),
                 cwd=tmp_path).returncode == 0
    again = xmppd("user", "add", "alice@example.test", "--password", "x", "-c", str(conf),
                  cwd=tmp_path)
    assert again.returncode == 1 and "already taken" in again.stderr
    assert xmppd("user", "add", "bob", "-c", str(conf), cwd=tmp_path,
                 stdin="from-stdin\n").returncode == 0
    listed = xmppd("user", "list", "-c", str(conf), cwd=tmp_path)
    assert listed.stdout.split() == ["alice@example.test", "bob@example.test"]
    assert xmppd("user", "passwd", "bob", "--password", "new", "-c", str(conf),
                 cwd=tmp_path).returncode == 0
    assert xmppd("user", "del", "alice", "-c", str(conf), cwd=tmp_path).returncode == 0
    gone = xmppd("user", "del", "alice", "-c", str(conf), cwd=tmp_path)
    assert gone.returncode == 1 and "no such user" in gone.stderr
    assert xmppd("user", "list", "-c", str(conf), cwd=tmp_path).stdout.split() == [
        "bob@example.test"]


def test_user_on_other_domain_is_usage_error(conf: Path, tmp_path: Path) -> None:
    result = xmppd("user", "add", "alice@elsewhere.test", "--password", "x", "-c", str(conf),
                   cwd=tmp_path)
    assert result.returncode == 2
    assert "example.test" in result.stderr


def test_bad_username_is_usage_error(conf: Path, tmp_path: Path) -> None:
    result = xmppd("user", "add", "al ice", "--password", "x", "-c", str(conf), cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1


def test_migrate_and_check_config(conf: Path, tmp_path: Path) -> None:
    migrated = xmppd("migrate", "-c", str(conf), cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert "up to date" in migrated.stdout
    checked = xmppd("check-config", "-c", str(conf), cwd=tmp_path)
    assert checked.returncode == 0 and "example.test" in checked.stdout


@pytest.mark.parametrize(
    ("content", "env", "key"),
    [
        ("[c2s]\nport = 70000\n", {}, "c2s.port"),
        ("[c2s]\nprot = 1\n", {}, "c2s.prot"),
        ("", {"XMPPD_C2S_PORT": "many"}, "c2s.port"),
        ("", {"XMPPD_NOPE_KEY": "1"}, "nope.key"),
        ("[modules]\nenabled = [\"telepathy\"]\n", {}, "modules.enabled"),
        ("[server\n", {}, "xmppd.toml"),
        ("[server]\nevent_loop = \"trio\"\n", {}, "server.event_loop"),
    ],
    ids=["range", "unknown-key", "env-type", "env-unknown", "unknown-module", "bad-toml",
         "event-loop"],
)
def test_bad_config_exits_2_with_one_line_naming_the_key(
    tmp_path: Path, content: str, env: dict[str, str], key: str
) -> None:
    path = tmp_path / "xmppd.toml"
    path.write_text(content)
    result = xmppd("check-config", "-c", str(path), cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert key in result.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    result = xmppd("serve", "--config", str(tmp_path / "absent.toml"), cwd=tmp_path)
    assert result.returncode == 2 and "absent.toml" in result.stderr


def test_bad_usage_exits_2(tmp_path: Path) -> None:
    assert xmppd("frobnicate", cwd=tmp_path).returncode == 2
