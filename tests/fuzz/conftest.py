"""Hypothesis profiles for the property-based tests in this directory.

``ci`` (the default) keeps the whole directory to well under a minute; ``long`` is the
thorough run, selected with ``TEST_FUZZ_PROFILE=long`` (see docs/testing.md). Deadlines are
off in both: the server-backed properties do network round trips whose time says nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.support.server import ServerFactory
from xmpp_server.server import Server

PROFILE_VARIABLE = "TEST_FUZZ_PROFILE"

# TEST_FUZZ_EXAMPLES=N sets the number of examples of either profile.
_EXAMPLES = os.environ.get("TEST_FUZZ_EXAMPLES", "")
settings.register_profile("ci", max_examples=int(_EXAMPLES or 60), deadline=None,
                          print_blob=True)
settings.register_profile(
    "long",
    max_examples=int(_EXAMPLES or 5000),
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get(PROFILE_VARIABLE, "ci"))


def scaled(n: int) -> int:
    """``n`` examples under ``ci``, proportionally more under the loaded profile: for the
    properties whose examples are network round trips, which get a smaller budget."""
    return max(1, n * settings().max_examples // 60)


# -- a server for the properties that talk to one -----------------------------------------------
# One server per test (not per example): examples run one after the other against it, as
# clients would. Hypothesis is told that sharing this function-scoped fixture is intended.

SHARED_SERVER = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


@pytest.fixture
async def fuzz_server(tmp_path: Path) -> AsyncIterator[Server]:
    """A server on SQLite with plain-text SASL allowed (raw clients log in with PLAIN)."""
    factory = ServerFactory(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'db' / 'xmppd.db'}")
    try:
        yield await factory.start(c2s={"require_tls": False},
                                  auth={"max_failures_per_account": 1000000,
                                        "max_failed_accounts_per_ip": 1000000,
                                        "max_refused_per_ip": 1000000})
    finally:
        await factory.close()


@pytest.fixture
def server_errors(caplog: pytest.LogCaptureFixture) -> Iterator[list[logging.LogRecord]]:
    """Fails the test if the server logged an error (an exception it did not expect)."""
    caplog.set_level(logging.WARNING)
    errors: list[logging.LogRecord] = []
    yield errors
    errors.extend(r for r in caplog.records if r.levelno >= logging.ERROR)
    assert not errors, "\n".join(caplog.text.splitlines()[-60:])
