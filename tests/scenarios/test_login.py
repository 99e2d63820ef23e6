"""Logging in over STARTTLS and direct TLS with each SASL mechanism; failures and throttling."""

from __future__ import annotations

import pytest

from tests.support.clients import connect


async def test_login_starttls_and_ping(server):
    alice = await connect(server, "alice")
    try:
        assert str(alice.boundjid) == "alice@localhost/test"
        iq = alice.make_iq_get(ito="localhost")
        iq.enable("ping")
        result = await alice.query(iq)
        assert result["type"] == "result"
    finally:
        await alice.close()
