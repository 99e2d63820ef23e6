"""The MUC scenarios' clients are owned by the test: all are closed when it ends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.scenarios.muc.helpers import owned_clients
from tests.support.server import ServerFactory


@pytest.fixture
async def servers(servers: ServerFactory) -> AsyncIterator[ServerFactory]:
    """The shared ``servers`` fixture, plus: every ``helpers.client()`` opened during the test
    is closed at teardown (passed or failed), before the servers stop."""
    async with owned_clients():
        yield servers
