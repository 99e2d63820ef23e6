"""The event loop the tests run on: ``TEST_EVENT_LOOP=asyncio`` (the default) or ``uvloop``.

(Not an ``XMPPD_`` name: those are configuration keys, and the servers the tests start read
the environment.)

tests/conftest.py gives pytest-asyncio uvloop's policy when it is selected, so every test,
its servers and its clients run on that loop; ``xmppd serve`` subprocesses started by tests
get the same loop through ``server.event_loop``.
"""

from __future__ import annotations

import os

VARIABLE = "TEST_EVENT_LOOP"
CHOICES = ("asyncio", "uvloop")
TEST_LOOP = os.environ.get(VARIABLE, "asyncio").strip().lower() or "asyncio"
