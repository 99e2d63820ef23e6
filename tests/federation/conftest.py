"""Two of our servers on loopback addresses with their own domains and databases.

``a.test`` listens on 127.0.0.2 and ``b.test`` on 127.0.0.3; each finds the other (and its
``conference.``/``bot.`` subdomains) through ``s2s.hosts``. Both use the backend of the
test's parameter, each with its own database.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.federation.dnsserver import DNSServer
from tests.federation.pki import TestCA
from tests.support.databases import postgres_database, reset_postgres
from tests.support.server import env_for
from xmpp_server.config import load_config
from xmpp_server.server import Server

ADDRESSES = {"a.test": "127.0.0.2", "b.test": "127.0.0.3",
             # for Prosody: libunbound answers NXDOMAIN for .test itself (RFC 6761 zones)
             "a.example": "127.0.0.2"}
SUBDOMAINS = ("conference", "bot", "upload")


def free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        port: int = sock.getsockname()[1]
        return port


class Peer:
    """One server of the pair: its settings survive restarts (same ports, data, database)."""

    def __init__(self, domain: str, data_dir: Path, db_url: str) -> None:
        self.domain = domain
        self.address = ADDRESSES[domain]
        self.port = free_port(self.address)
        self.data_dir = data_dir
        self.db_url = db_url
        self.sections: dict[str, dict[str, Any]] = {}
        self.server: Server | None = None

    def env(self) -> dict[str, str]:
        env = env_for(self.data_dir, self.db_url, self.domain, **self.sections)
        env["XMPPD_S2S_ENABLED"] = "true"
        return env

    async def start(self) -> Server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("XMPPD_")}
        server = Server(load_config(None, env={**env, **self.env()}))
        await server.start()
        self.server = server
        return server

    async def stop(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            await server.stop()


class Federation:
    def __init__(self, tmp_path: Path, db_a: str, db_b: str, dns: DNSServer,
                 domain_a: str = "a.test") -> None:
        self.tmp_path = tmp_path
        self.dns = dns  # both servers ask it: unknown domains are NXDOMAIN at once
        self.a = Peer(domain_a, tmp_path / "data-a", db_a)
        self.b = Peer("b.test", tmp_path / "data-b", db_b)
        self._ca: TestCA | None = None

    @property
    def ca(self) -> TestCA:
        if self._ca is None:
            self._ca = TestCA(self.tmp_path / "ca")
        return self._ca

    def configure(self, peer: Peer, other: Peer, certs: bool,
                  sections: dict[str, dict[str, Any]]) -> None:
        target = f"{other.address}:{other.port}"
        hosts = [f"{other.domain}={target}"]
        hosts += [f"{sub}.{other.domain}={target}" for sub in SUBDOMAINS]
        s2s: dict[str, Any] = {"bind": peer.address, "port": peer.port,
                               "direct_tls_port": 0, "hosts": ",".join(hosts),
                               "idle_timeout": 60, "connect_timeout": 10,
                               "nameservers": f"127.0.0.1:{self.dns.port}"}
        if certs:
            cert, key = self.ca.issue(peer.domain)
            sections.setdefault("tls", {}).update(cert=str(cert), key=str(key))
            s2s["ca_file"] = str(self.ca.path)
        s2s.update(sections.pop("s2s", {}))
        peer.sections = {"s2s": s2s, **sections}

    async def start(self, certs: bool = False, a: dict[str, dict[str, Any]] | None = None,
                    b: dict[str, dict[str, Any]] | None = None) -> tuple[Server, Server]:
        """Start both: with ``certs`` each has a certificate from a shared test CA (XEP-0178),
        else self-signed ones (dialback); ``a``/``b``: config sections for one side."""
        self.configure(self.a, self.b, certs, dict(a or {}))
        self.configure(self.b, self.a, certs, dict(b or {}))
        return await self.a.start(), await self.b.start()

    async def close(self) -> None:
        await self.a.stop()
        await self.b.stop()


@pytest.fixture(scope="session")
def postgres_url_b() -> Iterator[str]:
    yield from postgres_database("xmppd_fed")


@pytest.fixture
async def db_url_b(backend_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend_url.startswith("postgresql"):
        url: str = request.getfixturevalue("postgres_url_b")
        await reset_postgres(url)
        return url
    return f"sqlite+aiosqlite:///{tmp_path / 'db-b' / 'xmppd.db'}"


@pytest.fixture
async def dns_server() -> AsyncIterator[DNSServer]:
    server = DNSServer()
    await server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
async def federation(tmp_path: Path, db_url: str, db_url_b: str,
                     dns_server: DNSServer) -> AsyncIterator[Federation]:
    fed = Federation(tmp_path, db_url, db_url_b, dns_server)
    try:
        yield fed
    finally:
        await fed.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test item (fixtures print logs when a test failed)."""
    report = yield
    setattr(item, "rep_" + report.when, report)
    return report
