"""Login throttling (``xmpp_server/auth_throttle.py``): only wrong credentials count, concurrent
exchanges cannot slip past the limits, and a lockout never hits another account's password.

Clients come from several loopback addresses (127.0.0.x): the server tells them apart by address.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from storage.fast_tokens import NEW, FastToken
from tests.scenarios.test_auth import TlsRaw, _b64
from tests.support.sasl2_client import Sasl2Client, condition
from tests.support.scram_client import ScramClient
from xmpp_server.server import Server

MODULES = {"enabled": ["ping"]}
NAT = "127.0.0.2"  # an address shared by an attacker and other people


def outcome(reply: bytes) -> str:
    """"challenge", "success" or the SASL failure condition."""
    if b"<challenge" in reply:
        return "challenge"
    if b"<success" in reply:
        return "success"
    match = re.search(rb"<failure[^>]*><([a-z-]+)/>", reply)
    assert match, reply
    return match.group(1).decode()


class Exchange:
    """A SCRAM exchange opened (client-first sent), its proof still to send."""

    def __init__(self, raw: TlsRaw, client: ScramClient, reply: bytes) -> None:
        self.raw, self.client, self.reply = raw, client, reply

    @classmethod
    async def open(cls, server: Server, user: str, password: str, source: str = "127.0.0.1",
                   mechanism: str = "SCRAM-SHA-256", flag: str | None = None) -> Exchange:
        raw = await TlsRaw.open_tls(server, source)
        await raw.features()
        client = ScramClient(mechanism, user, password, flag=flag)
        return cls(raw, client, await raw.sasl(mechanism, client.first()))

    async def finish(self) -> str:
        try:
            if outcome(self.reply) != "challenge":
                return outcome(self.reply)
            return outcome(await self.raw.respond(self.client.final(_b64(self.reply,
                                                                         b"challenge"))))
        finally:
            await self.raw.close()


async def scram(server: Server, user: str, password: str, source: str = "127.0.0.1") -> str:
    return await (await Exchange.open(server, user, password, source)).finish()


async def plain(server: Server, user: str, password: str, source: str = "127.0.0.1") -> str:
    raw = await TlsRaw.open_tls(server, source)
    try:
        await raw.features()
        return outcome(await raw.sasl("PLAIN", f"\0{user}\0{password}".encode()))
    finally:
        await raw.close()


async def accounts(server: Server, count: int, password: str = "right") -> list[str]:
    assert server.host is not None
    names = [f"user{i}" for i in range(count)]
    for name in names:
        await server.host.accounts.create(name, password)
    return names


async def test_scram_proofs_sent_together_cannot_pass_the_address_limit(servers: Any) -> None:
    """Default limit: failures on 10 different accounts per address. 15 exchanges opened, then
    15 wrong proofs at once: 10 are checked, 5 refused unchecked."""
    server = await servers.start(modules=MODULES)
    names = await accounts(server, 15)
    opened = [await Exchange.open(server, name, "123456") for name in names]
    results = await asyncio.gather(*(e.finish() for e in opened))
    assert sorted(results) == ["not-authorized"] * 10 + ["temporary-auth-failure"] * 5


async def test_plain_guesses_sent_together_cannot_pass_the_address_limit(servers: Any) -> None:
    server = await servers.start(modules=MODULES)
    names = await accounts(server, 15)
    results = await asyncio.gather(*(plain(server, name, "123456") for name in names))
    assert sorted(results) == ["not-authorized"] * 10 + ["temporary-auth-failure"] * 5


async def test_sasl2_proofs_sent_together_cannot_pass_the_address_limit(servers: Any) -> None:
    server = await servers.start(modules=MODULES)
    names = await accounts(server, 13)

    async def guess(name: str) -> str:
        client = await Sasl2Client.connect(server)
        try:
            reply = await client.scram(name, "123456")
            return condition(reply)
        finally:
            await client.close()

    results = await asyncio.gather(*(guess(name) for name in names))
    assert sorted(results) == ["not-authorized"] * 10 + ["temporary-auth-failure"] * 3


async def test_fast_tokens_sent_together_cannot_pass_the_address_limit(servers: Any) -> None:
    server = await servers.start(modules=MODULES)
    names = await accounts(server, 13)

    async def guess(name: str) -> str:
        client = await Sasl2Client.connect(server)
        try:
            return condition(await client.fast("secret-token:fast-guessed", name))
        finally:
            await client.close()

    results = await asyncio.gather(*(guess(name) for name in names))
    assert sorted(results) == ["not-authorized"] * 10 + ["temporary-auth-failure"] * 3


async def test_the_limit_holds_at_the_proof_of_an_exchange_opened_before_it(
        servers: Any) -> None:
    """Weak passwords behind 10 wrong guesses are not found, however early their exchanges
    were opened."""
    server = await servers.start(modules=MODULES)
    names = await accounts(server, 10, "strong and long")
    weak = ["weak0", "weak1", "weak2"]
    for name in weak:
        await server.host.accounts.create(name, "123456")
    opened = [await Exchange.open(server, name, "123456") for name in names + weak]
    assert [outcome(e.reply) for e in opened] == ["challenge"] * 13
    assert [await e.finish() for e in opened[:10]] == ["not-authorized"] * 10
    assert [await e.finish() for e in opened[10:]] == ["temporary-auth-failure"] * 3


async def _abort(server: Server, user: str, source: str) -> str:
    exchange = await Exchange.open(server, user, "x", source)
    try:
        if outcome(exchange.reply) != "challenge":
            return outcome(exchange.reply)
        exchange.raw.buffer = b""
        await exchange.raw.send(b"<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
        return outcome(await exchange.raw._next_sasl())
    finally:
        await exchange.raw.close()


async def test_aborted_and_refused_exchanges_are_no_guesses(servers: Any) -> None:
    server = await servers.start(modules=MODULES)
    await server.host.accounts.create("alice", "wonderland")
    for _ in range(5):
        assert await _abort(server, "alice", NAT) == "aborted"
    for flag, mechanism in (("y", "SCRAM-SHA-256"), ("p=tls-unique", "SCRAM-SHA-256-PLUS"),
                            ("p=tls-exporter", "SCRAM-SHA-256")):  # refused before any proof
        for _ in range(2):
            refused = await Exchange.open(server, "alice", "wrong", NAT, mechanism, flag)
            assert outcome(refused.reply) == "not-authorized"
            await refused.raw.close()
    # None of it was a guess: alice logs in from an address she never used.
    assert await scram(server, "alice", "wonderland", "127.0.0.3") == "success"


async def test_unchecked_exchanges_are_limited_per_address(servers: Any) -> None:
    server = await servers.start(modules=MODULES, auth={"max_refused_per_ip": 4})
    await server.host.accounts.create("alice", "wonderland")
    await server.host.accounts.create("bob", "builder")
    assert await scram(server, "bob", "builder", NAT) == "success"  # bob is known there
    assert [await _abort(server, f"name{i}", NAT) for i in range(4)] == ["aborted"] * 4
    assert await _abort(server, "name4", NAT) == "temporary-auth-failure"
    assert await plain(server, "alice", "wonderland", NAT) == "temporary-auth-failure"
    assert await scram(server, "bob", "builder", NAT) == "success"
    assert await scram(server, "alice", "wonderland", "127.0.0.3") == "success"


async def test_an_old_client_trying_refused_mechanisms_first_is_not_locked_out(
        servers: Any) -> None:
    """slixmpp 1.8.3 over TLS 1.3: -PLUS with tls-unique (which TLS 1.3 lacks), SCRAM with
    'y' (refused while -PLUS is offered), then PLAIN; every login, many times."""
    server = await servers.start(modules=MODULES)
    await server.host.accounts.create("poezio", "secret")
    for _ in range(6):
        raw = await TlsRaw.open_tls(server)
        try:
            await raw.features()
            for mechanism, flag in (("SCRAM-SHA-256-PLUS", "p=tls-unique"),
                                    ("SCRAM-SHA-1-PLUS", "p=tls-unique"),
                                    ("SCRAM-SHA-256", "y"), ("SCRAM-SHA-1", "y")):
                client = ScramClient(mechanism, "poezio", "secret", flag=flag)
                assert outcome(await raw.sasl(mechanism, client.first())) == "not-authorized"
            assert outcome(await raw.sasl("PLAIN", b"\0poezio\0secret")) == "success"
        finally:
            await raw.close()


async def test_guesses_at_one_account_lock_out_nobody_else_behind_the_address(
        servers: Any) -> None:
    server = await servers.start(modules=MODULES)
    for name, password in (("alice", "wonderland"), ("bob", "builder")):
        await server.host.accounts.create(name, password)
    assert await scram(server, "alice", "wonderland", "127.0.0.1") == "success"  # her phone
    guesses = [await plain(server, "alice", f"guess{i}", NAT) for i in range(12)]
    assert guesses == ["not-authorized"] * 5 + ["temporary-auth-failure"] * 7
    # Bob, behind the same NAT, never logged in from it: his password still works.
    assert await plain(server, "bob", "builder", NAT) == "success"
    # Alice's guesses are slowed for addresses she never used, not for her own.
    assert await scram(server, "alice", "wonderland", "127.0.0.4") == "temporary-auth-failure"
    assert await scram(server, "alice", "wonderland", "127.0.0.1") == "success"


async def test_an_address_failing_on_many_accounts_keeps_only_its_known_ones(
        servers: Any) -> None:
    server = await servers.start(modules=MODULES)
    for name, password in (("carol", "c-pass"), ("dave", "d-pass")):
        await server.host.accounts.create(name, password)
    assert await scram(server, "carol", "c-pass", NAT) == "success"  # carol works behind it
    sprayed = [await scram(server, f"name{i}", "123456", NAT) for i in range(11)]
    assert sprayed == ["not-authorized"] * 10 + ["temporary-auth-failure"]
    assert await scram(server, "dave", "d-pass", NAT) == "temporary-auth-failure"
    assert await scram(server, "carol", "c-pass", NAT) == "success"
    assert await scram(server, "dave", "d-pass", "127.0.0.3") == "success"


async def test_an_account_is_slowed_not_locked(servers: Any) -> None:
    """Its failures leave the window one by one: guesses are held to so many per window, and
    an address refused a moment ago is answered again once the oldest failure has left."""
    server = await servers.start(modules=MODULES, auth={"max_failures_per_account": 2,
                                                        "failure_window": 1})
    await server.host.accounts.create("alice", "wonderland")
    guesses = [await plain(server, "alice", f"guess{i}", NAT) for i in range(3)]
    assert guesses == ["not-authorized", "not-authorized", "temporary-auth-failure"]
    assert await plain(server, "alice", "wonderland", "127.0.0.3") == "temporary-auth-failure"
    await asyncio.sleep(1.2)
    assert await plain(server, "alice", "wonderland", "127.0.0.3") == "success"


async def test_an_expired_fast_token_is_no_guess(servers: Any) -> None:
    """The right token, expired: the client falls back to its password, which must work."""
    server = await servers.start(modules=MODULES, auth={"max_failures_per_account": 1})
    assert server.host is not None and server.host.fast_key is not None
    await server.host.accounts.create("alice", "secret")
    token = "secret-token:fast-" + "x" * 64
    then = datetime.now(UTC) - timedelta(days=30)
    client = hashlib.sha256(b"old-phone").hexdigest()
    sealed = server.host.fast_key.seal("alice", client, NEW, hashlib.sha256(token.encode())
                                       .digest())
    await server.host.storage.fast_tokens.issue(FastToken(
        "alice", client, NEW, "HT-SHA-256-NONE", sealed, then, then + timedelta(days=14)))
    phone = await Sasl2Client.connect(server)
    try:
        assert condition(await phone.fast(token, client_id="old-phone")) == "credentials-expired"
    finally:
        await phone.close()
    assert await scram(server, "alice", "secret", "127.0.0.3") == "success"
