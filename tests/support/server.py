"""Starting real servers for tests: ephemeral ports, a temporary data directory."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from xmpp_server.config import load_config
from xmpp_server.server import Server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def env_for(data_dir: Path, db_url: str, domain: str = "localhost",
            **sections: dict[str, Any]) -> dict[str, str]:
    """Environment overrides (XMPPD_*) for a test server; ``sections`` add or replace keys."""
    env = {
        "XMPPD_SERVER_DOMAIN": domain,
        "XMPPD_SERVER_DATA_DIR": str(data_dir),
        "XMPPD_STORAGE_URL": db_url,
        "XMPPD_C2S_PORT": "0",
        "XMPPD_C2S_DIRECT_TLS_PORT": str(free_port()),  # 0 would disable it
        "XMPPD_HTTP_PORT": "0",
        "XMPPD_S2S_ENABLED": "false",
    }
    for section, keys in sections.items():
        for key, value in keys.items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, list | tuple):
                value = ",".join(str(v) for v in value)
            env[f"XMPPD_{section.upper()}_{key.upper()}"] = str(value)
    return env


class ServerFactory:
    def __init__(self, tmp_path: Path, db_url: str) -> None:
        self.tmp_path = tmp_path
        self.db_url = db_url
        self.running: list[Server] = []

    async def start(self, domain: str = "localhost", **sections: dict[str, Any]) -> Server:
        data_dir = self.tmp_path / f"data-{len(self.running)}"
        env = env_for(data_dir, self.db_url, domain, **sections)
        config = load_config(None, env={**{k: v for k, v in os.environ.items()
                                            if not k.startswith("XMPPD_")}, **env})
        server = Server(config)
        await server.start()
        self.running.append(server)
        return server

    async def stop(self, server: Server) -> None:
        if server in self.running:
            self.running.remove(server)
            await server.stop()

    async def close(self) -> None:
        for server in reversed(self.running):
            await server.stop()
        self.running.clear()
