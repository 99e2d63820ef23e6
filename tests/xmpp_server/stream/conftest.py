"""Fixtures of the stream unit tests: a self-signed certificate pair for TLS."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.tls_pair import DOMAIN
from xmpp_server.config import TLSConfig
from xmpp_server.stream.certificates import ensure_certificate


@pytest.fixture
def cert_pair(tmp_path: Path) -> tuple[Path, Path]:
    return ensure_certificate(TLSConfig(), tmp_path, DOMAIN)
