"""``xmppd serve --workers N``: N server processes on one machine, one cluster.

The supervisor prepares what must happen once (the database schema, the self-signed
certificate), then starts N workers (``xmppd serve --worker I``). Each is a cluster node of its
own (``<cluster.node or host name>-I``) whose listeners share their ports with the others'
(SO_REUSEPORT: the kernel spreads new connections over the workers); they share sessions and
delivery through Redis and data through PostgreSQL, as nodes on several machines do.

SIGTERM or SIGINT stops every worker (each drains as a single server does) and then the
supervisor. A worker that dies is started again after a second; the others take over what it
left (``cluster/reaper.py``) meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from xmpp_server.config import Config

log = logging.getLogger(__name__)

RESTART_DELAY = 1.0


async def prepare(config: Config) -> None:
    """What the workers would otherwise race for: migrations, the certificate."""
    from storage import open_storage
    from xmpp_server.stream import certificates

    storage = await open_storage(config.storage.url, migrate=True)
    await storage.close()
    certificates.server_certificate(config)


async def supervise(config: Config, workers: int, config_path: str | None) -> int:
    await prepare(config)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    args = [sys.executable, "-m", "xmpp_server"]
    if config_path is not None:
        args += ["--config", config_path]
    processes: dict[int, asyncio.subprocess.Process] = {}

    async def run(index: int) -> None:
        while not stopping.is_set():
            process = await asyncio.create_subprocess_exec(*args, "serve", "--worker",
                                                           str(index))
            processes[index] = process
            log.info("worker %d started (pid %d)", index, process.pid)
            code = await process.wait()
            if stopping.is_set():
                return
            log.error("worker %d exited with status %d; starting it again", index, code)
            try:
                await asyncio.wait_for(stopping.wait(), RESTART_DELAY)
            except TimeoutError:
                pass

    tasks = [loop.create_task(run(i)) for i in range(workers)]
    await stopping.wait()
    for process in processes.values():
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
    await asyncio.gather(*tasks)
    codes = [p.returncode for p in processes.values()]
    return 0 if all(code == 0 for code in codes) else 1
