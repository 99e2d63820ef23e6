"""XEP-0484 FAST: a token asked for in one SASL2 login logs the same client in at once later.

The HT-* mechanisms (draft-schmaus-kitten-sasl-ht) with and without channel binding, replay
counters, rotation, invalidation by the client, by a password change and by account removal;
the stored secrets sealed by the key file of the data directory.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from lxml import etree

from storage.fast_tokens import CURRENT, NEW, FastToken
from tests.support.sasl2_client import (
    SASL2,
    STREAM,
    B,
    C,
    F,
    S,
    Sasl2Client,
    agent,
    condition,
    ht_hash,
    token_of,
)
from xmpp_server.server import Server
from xmpp_server.stream.fast_key import key_path

A = "alice@localhost"
BIND = "<bind xmlns='urn:xmpp:bind:0'><tag>Web</tag></bind>"


def request(mechanism: str = "HT-SHA-256-NONE") -> str:
    return f"<request-token xmlns='urn:xmpp:fast:0' mechanism='{mechanism}'/>"


@pytest.fixture
async def server(servers: Any) -> Server:
    srv: Server = await servers.start()
    assert srv.host is not None
    await srv.host.accounts.create("alice", "secret")
    return srv


async def obtain(server: Server, mechanism: str = "HT-SHA-256-NONE") -> tuple[str, str]:
    """A password login that asks for a token: (the client's id, the token)."""
    client = await Sasl2Client.connect(server)
    success = await client.scram(extra=BIND + request(mechanism))
    assert success.tag == S + "success", etree.tostring(success)
    token_el = success.find(F + "token")
    assert token_el is not None
    expiry = datetime.fromisoformat(str(token_el.get("expiry")).replace("Z", "+00:00"))
    assert timedelta(days=13) < expiry - datetime.now(UTC) <= timedelta(days=14)
    await client.close()
    return client.client_id, str(token_el.get("token"))


async def fast(server: Server, client_id: str, token: str, **kw: Any) -> etree._Element:
    client = await Sasl2Client.connect(server)
    try:
        return await client.fast(token, client_id=client_id, **kw)
    finally:
        await client.close()


async def test_a_token_logs_the_client_in_with_bind2(server: Server) -> None:
    client_id, token = await obtain(server)
    client = await Sasl2Client.connect(server)
    success = await client.fast(token, client_id=client_id, count=1, extra=BIND)
    assert success.tag == S + "success"  # the responder hash was checked by the client
    assert str(success.findtext(S + "authorization-identifier")).startswith(A + "/Web/")
    assert success.find(B + "bound") is not None
    assert token_of(success) is None  # not due for rotation
    await client.next(lambda e: e.tag == STREAM + "features")
    await client.send("<iq type='get' id='v' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert (await client.next(lambda e: e.get("id") == "v")).get("type") == "result"
    await client.close()


async def test_the_stored_secret_is_sealed(server: Server) -> None:
    """Neither the token nor its hash (which would log in as well) is in the database."""
    client_id, token = await obtain(server)
    assert server.host is not None and server.host.fast_key is not None
    client_key = hashlib.sha256(client_id.encode()).hexdigest()
    (stored,) = await server.host.storage.fast_tokens.find("alice", client_key)
    digest = hashlib.sha256(token.encode()).digest()
    assert digest not in stored.secret and token.encode() not in stored.secret
    assert client_id not in stored.client
    assert server.host.fast_key.open(stored) == digest  # with the key file, and only so
    key_file = server.config.server.data_dir / "fast.key"
    assert key_path(server.config) == key_file
    assert len(key_file.read_bytes()) == 32 and key_file.stat().st_mode & 0o777 == 0o600
    # bound to its row: copied to another account, client or slot it does not open
    for moved in ({"username": "bob"}, {"client": "0" * 64}, {"slot": CURRENT}):
        assert server.host.fast_key.open(dataclasses.replace(stored, **moved)) is None


async def test_tokens_survive_a_restart(servers: Any, server: Server) -> None:
    client_id, token = await obtain(server)
    assert (await fast(server, client_id, token, count=1)).tag == S + "success"  # now current
    data_dir = server.config.server.data_dir
    await servers.stop(server)
    again = await servers.start()
    assert again.config.server.data_dir == data_dir  # the same key file
    assert (await fast(again, client_id, token, count=2)).tag == S + "success"


async def test_a_replaced_key_file_refuses_tokens_not_passwords(servers: Any,
                                                                server: Server) -> None:
    client_id, token = await obtain(server)
    await servers.stop(server)
    key_file = key_path(server.config)
    key_file.write_bytes(secrets.token_bytes(32))
    os.chmod(key_file, 0o600)
    again = await servers.start()
    failure = await fast(again, client_id, token)
    assert failure.tag == S + "failure" and condition(failure) == "not-authorized"
    client = await Sasl2Client.connect(again)  # the client falls back to its password...
    client.client_id = client_id
    success = await client.scram(extra=BIND + request())
    assert success.tag == S + "success"
    await client.close()
    fresh = token_of(success)  # ...and gets a token sealed with the new key
    assert fresh and fresh != token
    assert (await fast(again, client_id, fresh)).tag == S + "success"


async def test_a_count_is_accepted_once(server: Server) -> None:
    client_id, token = await obtain(server)
    assert (await fast(server, client_id, token, count=5)).tag == S + "success"
    replay = await fast(server, client_id, token, count=5)
    assert replay.tag == S + "failure" and condition(replay) == "not-authorized"
    assert condition(await fast(server, client_id, token, count=4)) == "not-authorized"
    assert (await fast(server, client_id, token, count=6)).tag == S + "success"


async def test_a_token_is_bound_to_its_client_and_mechanism(server: Server) -> None:
    client_id, token = await obtain(server)
    other = await fast(server, "another-installation", token)
    assert condition(other) == "not-authorized"
    endp = await fast(server, client_id, token, mechanism="HT-SHA-256-ENDP",
                      binding="tls-server-end-point")
    assert condition(endp) == "not-authorized"  # XEP-0484 §4.4: asked for NONE
    assert (await fast(server, client_id, token)).tag == S + "success"


@pytest.mark.parametrize(("mechanism", "kind"), [("HT-SHA-256-ENDP", "tls-server-end-point"),
                                                 ("HT-SHA-256-EXPR", "tls-exporter")])
async def test_channel_bound_tokens(server: Server, mechanism: str, kind: str) -> None:
    client_id, token = await obtain(server, mechanism)
    success = await fast(server, client_id, token, mechanism=mechanism, binding=kind)
    assert success.tag == S + "success"  # the responder hash covers the binding
    client = await Sasl2Client.connect(server)  # a proof made for another channel
    await client.open_stream()
    proof = ht_hash(token, b"Initiator", b"\0" * 32)
    failure = await client.authenticate(mechanism, b"alice\0" + proof,
                                        "<fast xmlns='urn:xmpp:fast:0'/>", client_id)
    assert condition(failure) == "not-authorized"
    await client.close()


async def test_tokens_rotate(servers: Any) -> None:
    server = await servers.start(c2s={"fast_token_rotation": 0})  # due at every login
    await server.host.accounts.create("alice", "secret")
    client_id, first = await obtain(server)
    success = await fast(server, client_id, first)
    second = token_of(success)
    assert second and second != first
    # Until the client uses its new token, the old one still works (XEP-0484 §6)...
    third = token_of(await fast(server, client_id, first))
    assert third and third not in (first, second)
    assert condition(await fast(server, client_id, second)) == "not-authorized"  # replaced
    assert (await fast(server, client_id, third)).tag == S + "success"
    # ...and once it has, the older one is gone.
    assert condition(await fast(server, client_id, first)) == "not-authorized"


async def test_the_client_can_invalidate_its_token(server: Server) -> None:
    client_id, token = await obtain(server)
    success = await fast(server, client_id, token, invalidate=True)
    assert success.tag == S + "success" and token_of(success) is None  # logged out
    assert condition(await fast(server, client_id, token)) == "not-authorized"


async def test_a_password_change_revokes_tokens(server: Server) -> None:
    client_id, token = await obtain(server)
    client = await Sasl2Client.connect(server)
    assert (await client.scram(extra=BIND)).tag == S + "success"
    await client.send("<iq type='set' id='pw'><query xmlns='jabber:iq:register'>"
                      "<username>alice</username><password>new secret</password></query></iq>")
    assert (await client.next(lambda e: e.get("id") == "pw")).get("type") == "result"
    await client.close()
    assert condition(await fast(server, client_id, token)) == "not-authorized"


async def test_removing_the_account_removes_its_tokens(server: Server) -> None:
    client_id, token = await obtain(server)
    client = await Sasl2Client.connect(server)
    assert (await client.fast(token, client_id=client_id, extra=BIND)).tag == S + "success"
    await client.send("<iq type='set' id='rm'><query xmlns='jabber:iq:register'><remove/>"
                      "</query></iq>")
    assert (await client.next(lambda e: e.get("id") == "rm")).get("type") == "result"
    await client.close()
    assert server.host is not None
    key = hashlib.sha256(client_id.encode()).hexdigest()
    assert await server.host.storage.fast_tokens.find("alice", key) == []


async def test_an_expired_token_fails_with_credentials_expired(server: Server) -> None:
    assert server.host is not None
    token = "secret-token:fast-" + "x" * 64
    then = datetime.now(UTC) - timedelta(days=30)
    client_key = hashlib.sha256(b"old-phone").hexdigest()
    assert server.host.fast_key is not None
    sealed = server.host.fast_key.seal("alice", client_key, NEW,
                                       hashlib.sha256(token.encode()).digest())
    await server.host.storage.fast_tokens.issue(FastToken(
        "alice", client_key, NEW, "HT-SHA-256-NONE", sealed, then, then + timedelta(days=14)))
    failure = await fast(server, "old-phone", token)
    assert condition(failure) == "credentials-expired"


async def test_fast_needs_a_user_agent_id(server: Server) -> None:
    client = await Sasl2Client.connect(server)
    await client.open_stream()
    await client.send(f"<authenticate xmlns='{SASL2}' mechanism='PLAIN'><initial-response>"
                      "AGFsaWNlAHNlY3JldA==</initial-response>" + request() + "</authenticate>")
    failure = await client.next(lambda e: e.tag == S + "failure")
    assert condition(failure) == "malformed-request"
    # with one, a PLAIN login may ask for a token too
    success = await client.authenticate("PLAIN", b"\0alice\0secret", request())
    assert token_of(success)
    await client.close()


async def test_fast_is_offered_on_encrypted_streams_only(servers: Any) -> None:
    server = await servers.start(c2s={"require_tls": False})
    await server.host.accounts.create("alice", "secret")
    client = await Sasl2Client.connect(server, secure=False)
    await client.open_stream()
    assert client.advertised()[2] == []
    failure = await client.authenticate("PLAIN", b"\0alice\0secret", request())
    assert condition(failure) == "malformed-request"
    await client.close()


async def test_fast_off(servers: Any) -> None:
    server = await servers.start(c2s={"fast_token_ttl": 0})
    client = await Sasl2Client.connect(server)
    features = await client.open_stream()
    assert features.find(f"{S}authentication/{S}inline/{F}fast") is None
    assert features.find(f"{S}authentication") is not None
    await client.close()


async def test_one_round_trip_to_a_ready_session(server: Server) -> None:
    """The point of it all: header, login, binding and a first stanza sent at once."""
    client_id, token = await obtain(server)
    client = await Sasl2Client.connect(server)
    initial = base64.b64encode(b"alice\0" + ht_hash(token, b"Initiator")).decode()
    await client.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                      "xmlns:stream='http://etherx.jabber.org/streams' to='localhost' "
                      "from='alice@localhost' version='1.0'>"
                      f"<authenticate xmlns='{SASL2}' mechanism='HT-SHA-256-NONE'>"
                      f"<initial-response>{initial}</initial-response>{agent(client_id)}"
                      f"<fast xmlns='urn:xmpp:fast:0' count='1'/>{BIND}</authenticate>"
                      "<iq type='get' id='early' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    first = await client.next(lambda e: e.tag in (S + "success", C + "iq"))
    assert first.tag == S + "success" and first.find(B + "bound") is not None
    result = await client.next(lambda e: e.get("id") == "early")
    assert result.get("type") == "result" and result.get("to") == first.findtext(
        S + "authorization-identifier")
    await client.close()
