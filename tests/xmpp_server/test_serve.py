"""``xmppd serve`` as a process, on the event loop under test (``TEST_EVENT_LOOP``): it stops
cleanly within a bound on SIGTERM and SIGINT while clients are connected, each of them told
with a system-shutdown stream error (RFC 6120 §4.9.3.17)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.support.clients import RawClient, StreamClient
from tests.support.loops import TEST_LOOP
from tests.support.server import free_port

ROOT = Path(__file__).resolve().parents[2]  # this checkout's code, whatever is installed
STOP_WITHIN = 15.0  # seconds from the signal to the process's exit
STREAMS = "{http://etherx.jabber.org/streams}"


def config(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "xmppd.toml"
    path.write_text(
        f'[server]\ndomain = "localhost"\ndata_dir = "{tmp_path / "data"}"\n'
        f'event_loop = "{TEST_LOOP}"\n'
        f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path / "xmppd.db"}"\n'
        f'[c2s]\nport = {port}\ndirect_tls_port = 0\nrequire_tls = false\n'
        f'[s2s]\nenabled = false\n[http]\nport = {free_port()}\n')
    return path


class Shim:
    """What RawClient/StreamClient need of a Server: the c2s port."""

    def __init__(self, port: int) -> None:
        self.c2s_port = port


async def started(process: asyncio.subprocess.Process, port: int) -> None:
    async with asyncio.timeout(60):
        while True:
            if process.returncode is not None:
                raise AssertionError(f"xmppd serve exited with {process.returncode}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            writer.close()
            return


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_serve_stops_cleanly_on_signal_with_clients_connected(
        tmp_path: Path, sig: signal.Signals) -> None:
    port = free_port()
    log = tmp_path / "xmppd.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("XMPPD_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    migrated = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "xmpp_server", "user", "add", "alice", "--password", "secret",
        "-c", str(config(tmp_path, port)), cwd=tmp_path, env=env)
    assert await migrated.wait() == 0
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "xmpp_server", "serve", "-c", str(tmp_path / "xmppd.toml"),
            cwd=tmp_path, env=env, stdout=out, stderr=out)
    clients: list[RawClient] = []
    try:
        await started(process, port)
        shim = Shim(port)
        bound = await StreamClient.open(shim)  # type: ignore[arg-type]
        clients.append(bound)
        await bound.login("alice", "secret")
        negotiating = await StreamClient.open(shim)  # type: ignore[arg-type]
        clients.append(negotiating)
        await negotiating.open_stream()
        silent = await RawClient.open(shim)  # type: ignore[arg-type]
        clients.append(silent)
        await asyncio.sleep(0.2)  # the silent one is accepted

        process.send_signal(sig)
        try:
            code = await asyncio.wait_for(process.wait(), STOP_WITHIN)
        except TimeoutError:
            raise AssertionError(f"still running {STOP_WITHIN}s after {sig.name}:\n"
                                 + log.read_text()[-3000:]) from None
        assert code == 0, log.read_text()[-3000:]
        for client in (bound, negotiating):
            data = await client.read_until_closed()
            assert b"system-shutdown" in data, data
        await silent.read_until_closed()  # closed, whatever it got
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        for client in clients:
            await client.close()
    text = log.read_text()
    expected = "uvloop" if TEST_LOOP == "uvloop" else "asyncio"
    assert f"event loop: {expected}." in text, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
