"""SASL (RFC 6120 §6): SCRAM with and without channel binding, PLAIN, failures, throttling."""

from __future__ import annotations

import asyncio
import base64
import re
import ssl

import pytest

from tests.support.clients import RawClient, connect
from tests.support.scram_client import ScramClient
from xmpp_server.stream.channel_binding import channel_binding

MODULES = {"enabled": ["ping"]}
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"


class TlsRaw(RawClient):
    """A RawClient over direct TLS (XEP-0368), able to compute channel bindings."""

    @property
    def ssl_object(self) -> ssl.SSLObject:
        obj = self.writer.get_extra_info("ssl_object")
        assert isinstance(obj, ssl.SSLObject)
        return obj

    async def features(self) -> bytes:
        self.buffer = b""
        await self.send(self.header())
        return await self.expect(b"</stream:features>")

    async def sasl(self, mechanism: str, initial: bytes | None) -> bytes:
        """Send <auth/>; returns the next SASL element (challenge, success or failure)."""
        self.buffer = b""
        payload = base64.b64encode(initial).decode() if initial is not None else ""
        await self.send(f"<auth xmlns='{SASL}' mechanism='{mechanism}'>{payload}</auth>".encode())
        return await self._next_sasl()

    async def respond(self, data: bytes) -> bytes:
        self.buffer = b""
        await self.send(f"<response xmlns='{SASL}'>{base64.b64encode(data).decode()}</response>"
                        .encode())
        return await self._next_sasl()

    async def _next_sasl(self) -> bytes:
        async with asyncio.timeout(10):
            while not re.search(rb"</(challenge|success|failure)>|<success[^>]*/>", self.buffer):
                chunk = await self.reader.read(65536)
                if not chunk:
                    raise ConnectionError(self.buffer)
                self.buffer += chunk
        return self.buffer


def _b64(element: bytes, tag: bytes) -> bytes:
    match = re.search(rb"<" + tag + rb"[^>]*>([^<]*)</" + tag + rb">", element)
    assert match, element
    return base64.b64decode(match.group(1))


async def _scram(raw: TlsRaw, mechanism: str, user: str, password: str,
                 binding: tuple[str, bytes] | None, flag: str | None = None) -> bytes:
    client = ScramClient(mechanism, user, password, binding, flag)
    reply = await raw.sasl(mechanism, client.first())
    if b"<failure" in reply:
        return reply
    reply = await raw.respond(client.final(_b64(reply, b"challenge")))
    if b"<success" in reply:
        assert client.verify(_b64(reply, b"success")), "the server proved it knows the keys"
    return reply


@pytest.fixture
async def alice_server(servers):  # type: ignore[no-untyped-def]
    server = await servers.start(modules=MODULES)
    await server.host.accounts.create("alice", "wonderland")
    return server


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-1", "SCRAM-SHA-256"])
async def test_scram_without_binding(alice_server, mechanism):
    raw = await TlsRaw.open_tls(alice_server)
    feats = await raw.features()
    assert f"<mechanism>{mechanism}</mechanism>".encode() in feats
    assert b"<mechanism>PLAIN</mechanism>" in feats  # encrypted stream
    reply = await _scram(raw, mechanism, "alice", "wonderland", None)
    assert b"<success" in reply
    await raw.close()


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"])
@pytest.mark.parametrize("kind", ["tls-server-end-point", "tls-exporter"])
async def test_scram_plus_with_channel_binding(alice_server, mechanism, kind):
    raw = await TlsRaw.open_tls(alice_server)
    feats = await raw.features()
    assert f"<channel-binding type=\"{kind}\"/>".encode() in feats  # XEP-0440
    data = channel_binding(raw.ssl_object, kind)  # client side: the peer's certificate
    assert data
    reply = await _scram(raw, mechanism, "alice", "wonderland", (kind, data))
    assert b"<success" in reply
    await raw.close()


async def test_scram_plus_with_wrong_binding_fails(alice_server):
    raw = await TlsRaw.open_tls(alice_server)
    await raw.features()
    reply = await _scram(raw, "SCRAM-SHA-256-PLUS", "alice", "wonderland",
                         ("tls-server-end-point", b"\0" * 32))
    assert b"<not-authorized/>" in reply
    await raw.close()


async def test_scram_downgrade_is_detected(alice_server):
    """gs2 flag 'y' (client could bind but thinks we cannot) while we offer -PLUS: refused."""
    raw = await TlsRaw.open_tls(alice_server)
    await raw.features()
    reply = await _scram(raw, "SCRAM-SHA-256", "alice", "wonderland", None, flag="y")
    assert b"<not-authorized/>" in reply
    await raw.close()


async def test_plain_over_tls(alice_server):
    raw = await TlsRaw.open_tls(alice_server)
    await raw.features()
    assert b"<success" in await raw.sasl("PLAIN", b"\0alice\0wonderland")
    await raw.close()


async def test_plain_not_offered_on_plain_tcp_when_tls_required(alice_server):
    raw = await RawClient.open(alice_server)
    await raw.send(raw.header())
    feats = await raw.expect(b"</stream:features>")
    assert b"PLAIN" not in feats
    await raw.send(f"<auth xmlns='{SASL}' mechanism='PLAIN'>AGFsaWNlAHdvbmRlcmxhbmQ=</auth>"
                   .encode())
    assert b"<encryption-required/>" in await raw.expect(b"</failure>")
    await raw.close()


@pytest.mark.parametrize(
    ("user", "password"), [("alice", "wrong"), ("nobody", "wonderland")],
    ids=["wrong-password", "unknown-user"],
)
async def test_failures_look_alike(alice_server, user, password):
    raw = await TlsRaw.open_tls(alice_server)
    await raw.features()
    reply = await _scram(raw, "SCRAM-SHA-256", user, password, None)
    assert b"<failure xmlns=\"" + SASL.encode() in reply or b"<failure xmlns='" in reply
    assert b"<not-authorized/>" in reply
    reply = await raw.sasl("PLAIN", f"\0{user}\0{password}".encode())
    assert b"<not-authorized/>" in reply
    await raw.close()


async def test_bad_requests_get_sasl_errors(alice_server):
    raw = await TlsRaw.open_tls(alice_server)
    await raw.features()
    assert b"<invalid-mechanism/>" in await raw.sasl("DIGEST-MD5", None)
    raw.buffer = b""
    await raw.send(f"<auth xmlns='{SASL}' mechanism='PLAIN'>!!notbase64!!</auth>".encode())
    assert b"<incorrect-encoding/>" in await raw._next_sasl()
    raw.buffer = b""
    await raw.send(f"<abort xmlns='{SASL}'/>".encode())
    assert b"<aborted/>" in await raw._next_sasl()
    await raw.close()


async def test_login_flood_is_throttled_and_others_keep_working(servers):
    server = await servers.start(modules=MODULES, auth={"max_failures_per_account": 3,
                                                         "max_failed_accounts_per_ip": 1000})
    await server.host.accounts.create("alice", "wonderland")
    bob = await connect(server, "bob")

    async def attempt(password: str) -> bytes:
        raw = await TlsRaw.open_tls(server)
        try:
            await raw.features()
            return await raw.sasl("PLAIN", f"\0alice\0{password}".encode())
        finally:
            await raw.close()

    replies = await asyncio.gather(*(attempt("guess") for _ in range(20)))
    assert all(b"<failure" in r for r in replies)
    assert any(b"<temporary-auth-failure/>" in r for r in replies)
    # Now even the right password is refused for a while: the account is locked, not the server.
    assert b"<temporary-auth-failure/>" in await attempt("wonderland")
    iq = bob.make_iq_get(ito="localhost")
    iq.enable("ping")
    assert (await bob.query(iq))["type"] == "result"
    await bob.close()


async def test_too_many_attempts_on_one_stream_close_it(alice_server):
    raw = await TlsRaw.open_tls(alice_server)
    await raw.features()
    for _ in range(5):
        raw.buffer = b""
        await raw.send(f"<auth xmlns='{SASL}' mechanism='NOPE'/>".encode())
        try:
            await raw._next_sasl()
        except ConnectionError:
            break
    data = await raw.read_until_closed()
    assert b"policy-violation" in data


async def test_slixmpp_login_and_bind_conflict_gets_new_resource(alice_server):
    first = await connect(alice_server, "alice", "wonderland", create=False, resource="phone")
    second = await connect(alice_server, "alice", "wonderland", create=False, resource="phone")
    assert str(first.boundjid) == "alice@localhost/phone"
    assert second.boundjid.resource.startswith("phone.")
    assert first.is_connected()
    await first.close()
    await second.close()


async def _server_first(server, user, mechanism):  # type: ignore[no-untyped-def]
    """The attributes of the server-first-message SCRAM answers for ``user``."""
    raw = await TlsRaw.open_tls(server)
    try:
        await raw.features()
        reply = await raw.sasl(mechanism, ScramClient(mechanism, user, "x").first())
        return dict(part.split("=", 1) for part in _b64(reply, b"challenge").decode().split(","))
    finally:
        await raw.close()


async def test_unknown_accounts_get_salts_like_real_ones(servers):
    """Made-up salts: stable across a restart, one per mechanism, the configured iterations,
    as a real account's are; so a probe cannot tell which accounts exist."""
    server = await servers.start(modules=MODULES, auth={"scram_iterations": 5000})
    await server.host.accounts.create("alice", "wonderland")
    mechs = ("SCRAM-SHA-1", "SCRAM-SHA-256")
    before = {m: await _server_first(server, "nobody", m) for m in mechs}
    real = {m: await _server_first(server, "alice", m) for m in mechs}
    await servers.stop(server)
    server = await servers.start(modules=MODULES, auth={"scram_iterations": 5000})
    after = {m: await _server_first(server, "nobody", m) for m in mechs}
    again = {m: await _server_first(server, "alice", m) for m in mechs}
    for mechanism in mechs:
        assert after[mechanism]["s"] == before[mechanism]["s"]  # the secret is in the data dir
        assert again[mechanism]["s"] == real[mechanism]["s"]
        assert before[mechanism]["i"] == real[mechanism]["i"] == "5000"
        assert len(base64.b64decode(before[mechanism]["s"])) == len(
            base64.b64decode(real[mechanism]["s"]))
    assert before["SCRAM-SHA-1"]["s"] != before["SCRAM-SHA-256"]["s"]
    assert real["SCRAM-SHA-1"]["s"] != real["SCRAM-SHA-256"]["s"]
    assert before["SCRAM-SHA-256"]["s"] != (await _server_first(server, "nobody2",
                                                                "SCRAM-SHA-256"))["s"]


@pytest.mark.parametrize(("user", "password"), [("alice", "wrong"), ("nobody", "wonderland")],
                         ids=["wrong-password", "unknown-user"])
async def test_plain_failures_cost_one_key_derivation(alice_server, user, password):
    accounts = alice_server.host.accounts
    before = accounts.derivations
    raw = await TlsRaw.open_tls(alice_server)
    await raw.features()
    assert b"<not-authorized/>" in await raw.sasl("PLAIN", f"\0{user}\0{password}".encode())
    await raw.close()
    assert accounts.derivations == before + 1
