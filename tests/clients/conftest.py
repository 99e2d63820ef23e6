"""The real-client matrix: clients people use, each against a server the test starts.

``client_server`` is a server on the embedded defaults (domain localhost, SQLite, the
self-signed certificate, the web bridge with WebSocket and BOSH, MUC and HTTP upload).
``require_program(path)`` and ``require_node_modules()`` skip a test whose client is not
installed (and fail it in CI, where REQUIRE_TEST_SERVICES=1: .ci/run installs them all).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.databases import unavailable
from tests.support.server import ServerFactory
from xmpp_server.server import Server

NODE_MODULES = Path(__file__).parent / "node_modules"


def require_program(name: str) -> str:
    """The path of an installed program (``node``, ``go-sendxmpp``, ``/usr/bin/python3``)."""
    path = shutil.which(name)
    if path is None:
        unavailable(name, "not installed")
    assert path is not None
    return path


def require_node_modules(package: str) -> Path:
    """The installed npm package (``npm ci --prefix tests/clients`` installs them)."""
    path = NODE_MODULES / package
    if not path.exists():
        unavailable(f"npm package {package}", f"{path} missing: npm ci --prefix tests/clients")
    return path


@pytest.fixture
async def client_server(tmp_path: Path) -> AsyncIterator[Server]:
    factory = ServerFactory(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'db' / 'xmppd.db'}")
    try:
        yield await factory.start()
    finally:
        await factory.close()
