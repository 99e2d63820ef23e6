"""XEP-0388 SASL2 with XEP-0386 Bind 2, inline carbons and stream management, and XEP-0474.

A hand-made client (``Sasl2Client``) logs in over direct TLS as a modern client would, next to
slixmpp clients that use RFC 6120 SASL; both databases. FAST tokens: ``test_fast.py``.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from lxml import etree

from tests.scenarios.test_messages import send
from tests.support.clients import Client, connect
from tests.support.sasl2_client import SASL2, SM, STREAM, B, C, S, Sasl2Client, condition
from tests.support.scram_client import ScramClient
from xmpp_server.server import Server

A = "alice@localhost"
CARBONS = "urn:xmpp:carbons:2"
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
_SM = "{" + SM + "}"


def bind(*inline: str, tag: str = "Tester") -> str:
    return f"<bind xmlns='urn:xmpp:bind:0'><tag>{tag}</tag>{''.join(inline)}</bind>"


ENABLE_ALL = bind(f"<enable xmlns='{CARBONS}'/>", f"<enable xmlns='{SM}' resume='true'/>")


def jid_of(success: etree._Element) -> str:
    return str(success.findtext(S + "authorization-identifier"))


@pytest.fixture
async def server(servers: Any) -> Server:
    srv: Server = await servers.start(c2s={"sm_resume_timeout": 30})
    assert srv.host is not None
    await srv.host.accounts.create("alice", "secret")
    await srv.host.accounts.create("bob", "secret")
    return srv


async def login(server: Server, extra: str = ENABLE_ALL) -> tuple[Sasl2Client, etree._Element]:
    client = await Sasl2Client.connect(server)
    success = await client.scram(extra=extra)
    assert success.tag == S + "success", etree.tostring(success)
    return client, success


async def test_features_announce_what_is_enabled(server: Server) -> None:
    client = await Sasl2Client.connect(server)
    features = await client.open_stream()
    mechs, kinds, fast = client.advertised()
    sasl1 = [m.text for m in features.iter(f"{{{SASL}}}mechanism")]
    assert mechs == sasl1 and "SCRAM-SHA-256-PLUS" in mechs  # one list, two framings
    assert "tls-server-end-point" in kinds
    assert {"HT-SHA-256-NONE", "HT-SHA-256-ENDP"} <= set(fast)
    inline = features.find(f"{S}authentication/{S}inline")
    assert inline is not None and inline.find(_SM + "sm") is not None
    vars_ = {f.get("var") for f in inline.iterfind(f"{B}bind/{B}inline/{B}feature")}
    assert vars_ == {CARBONS, SM}
    await client.close()


async def test_only_loaded_features_are_offered_inline(servers: Any) -> None:
    server = await servers.start(modules={"enabled": ["ping"]})
    client = await Sasl2Client.connect(server)
    features = await client.open_stream()
    inline = features.find(f"{S}authentication/{S}inline")
    assert inline is not None and inline.find(_SM + "sm") is None
    assert inline.find(f"{B}bind/{B}inline/{B}feature") is None
    await client.close()


async def test_login_binds_and_enables_carbons_and_sm_without_restart(server: Server) -> None:
    bob = await connect(server, "bob", create=False)
    phone = await connect(server, "alice", create=False, resource="phone")
    raw, success = await login(server)
    try:
        full = jid_of(success)
        assert full.startswith(A + "/Tester/") and len(full) > len(A + "/Tester/")
        enabled = success.find(f"{B}bound/{_SM}enabled")
        assert enabled is not None and enabled.get("resume") == "true"
        features = await raw.next(lambda e: e.tag == STREAM + "features")
        assert features.find("{urn:ietf:params:xml:ns:xmpp-bind}bind") is None  # bound
        assert features.find(_SM + "sm") is None  # enabled inline already
        assert raw.headers == 1  # §2.6.1: the same stream all along
        await raw.send("<presence/><iq type='get' id='p' to='localhost'>"
                       "<ping xmlns='urn:xmpp:ping'/></iq>")
        await raw.next(lambda e: e.get("id") == "p")  # the presence before it was handled
        # Carbons (XEP-0280 §7, §8): this session gets copies of the phone's conversation.
        send(phone, "bob@localhost", "from the phone")
        sent = await raw.next(lambda e: e.find("{urn:xmpp:carbons:2}sent") is not None)
        assert sent.get("to") == full
        send(bob, A + "/phone", "to the phone")
        received = await raw.next(lambda e: e.find("{urn:xmpp:carbons:2}received") is not None)
        assert received.findtext(".//" + C + "body") == "to the phone"
        # Stream management counts from <enabled/>: our presence and ping were handled.
        await raw.send(f"<r xmlns='{SM}'/>")
        await raw.next(lambda e: e.tag == _SM + "a" and e.get("h") == "2")
        await raw.next(lambda e: e.tag == _SM + "r")  # the server wants the copies acked
        await raw.send(f"<a xmlns='{SM}' h='{len(raw.stanzas)}'/><r xmlns='{SM}'/>")
        await raw.next(lambda e: e.tag == _SM + "a")
        sessions = server.host.sessions.of_user("alice")  # type: ignore[union-attr]
        state: Any = next(s for s in sessions if str(s.jid) == full).sm
        assert state is not None and not state.queue  # everything acknowledged
    finally:
        await raw.close()
        await bob.close()
        await phone.close()


async def test_sm_is_offered_after_success_only_when_not_enabled_inline(server: Server) -> None:
    # XEP-0198 §3 enables once; offering <sm/> again made @xmpp/client try <resume/> on the
    # session it had just enabled (and <enable/> after that failed), as Prosody never does.
    raw, _ = await login(server, extra=bind())
    try:
        features = await raw.next(lambda e: e.tag == STREAM + "features")
        assert features.find(_SM + "sm") is not None  # not enabled inline: may be enabled now
        await raw.send(f"<enable xmlns='{SM}'/>")
        await raw.next(lambda e: e.tag == _SM + "enabled")
    finally:
        await raw.close()


async def test_plain_without_bind2_gives_the_bare_jid_then_rfc6120_bind(server: Server) -> None:
    client = await Sasl2Client.connect(server)
    await client.open_stream()
    success = await client.authenticate("PLAIN", b"\0alice\0secret")
    assert success.tag == S + "success" and jid_of(success) == A
    assert success.find(S + "additional-data") is None
    features = await client.next(lambda e: e.tag == STREAM + "features")
    assert features.find("{urn:ietf:params:xml:ns:xmpp-bind}bind") is not None
    await client.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                      "<resource>old</resource></bind></iq>")
    result = await client.next(lambda e: e.get("id") == "b")
    assert result.get("type") == "result" and client.headers == 1
    await client.close()


@pytest.mark.parametrize(("user", "password"), [("alice", "wrong"), ("nobody", "secret")],
                         ids=["wrong-password", "unknown-user"])
async def test_failures_look_alike(server: Server, user: str, password: str) -> None:
    client = await Sasl2Client.connect(server)
    failure = await client.scram(user, password)
    assert failure.tag == S + "failure" and condition(failure) == "not-authorized"
    failure = await client.authenticate("PLAIN", f"\0{user}\0{password}".encode())
    assert condition(failure) == "not-authorized"
    await client.close()


async def test_failed_logins_are_throttled_per_account(servers: Any) -> None:
    server = await servers.start(auth={"max_failures_per_account": 2,
                                       "max_failed_accounts_per_ip": 1000})
    await server.host.accounts.create("alice", "secret")

    async def attempt(password: str) -> str:
        client = await Sasl2Client.connect(server)
        try:
            reply = await client.scram(password=password)
            return "success" if reply.tag == S + "success" else condition(reply)
        finally:
            await client.close()

    assert [await attempt("guess") for _ in range(3)] == [
        "not-authorized", "not-authorized", "temporary-auth-failure"]
    assert await attempt("secret") == "temporary-auth-failure"  # the account is locked
    bob = await connect(server, "bob")  # others are not
    await bob.close()


async def test_abort_and_bad_requests(server: Server) -> None:
    client = await Sasl2Client.connect(server)
    await client.open_stream()
    assert condition(await client.authenticate("DIGEST-MD5", b"x")) == "invalid-mechanism"
    await client.send(f"<authenticate xmlns='{SASL2}' mechanism='PLAIN'>"
                      "<initial-response>!!</initial-response></authenticate>")
    failure = await client.next(lambda e: e.tag == S + "failure")
    assert condition(failure) == "incorrect-encoding"
    scram = ScramClient("SCRAM-SHA-256", "alice", "secret")
    assert (await client.authenticate("SCRAM-SHA-256", scram.first())).tag == S + "challenge"
    await client.send(f"<abort xmlns='{SASL2}'/>")
    assert condition(await client.next(lambda e: e.tag == S + "failure")) == "aborted"
    assert (await client.scram()).tag == S + "success"  # the stream is still good
    await client.close()


async def test_authenticate_after_success_is_a_stream_error(server: Server) -> None:
    client, _ = await login(server, extra="")
    plain = base64.b64encode(b"\0alice\0secret").decode()
    await client.send(f"<authenticate xmlns='{SASL2}' mechanism='PLAIN'><initial-response>"
                      f"{plain}</initial-response></authenticate>")
    error = await client.next(lambda e: e.tag == STREAM + "error")
    assert error[0].tag.endswith("}policy-violation")
    await client.until_closed()


async def test_scram_plus_binds_the_channel(server: Server) -> None:
    client = await Sasl2Client.connect(server)
    success = await client.scram(mechanism="SCRAM-SHA-256-PLUS", binding="tls-exporter",
                                 extra=bind())
    assert success.tag == S + "success" and jid_of(success).startswith(A + "/Tester/")
    await client.close()


async def test_sasl1_scram_carries_downgrade_protection(server: Server) -> None:
    """XEP-0474 in RFC 6120 SASL: 'h' covers the SASL1 list and the channel bindings."""
    client = await Sasl2Client.connect(server)
    features = await client.open_stream()
    mechs = [str(m.text) for m in features.iter(f"{{{SASL}}}mechanism")]
    _, kinds, _ = client.advertised()
    scram = ScramClient("SCRAM-SHA-1", "alice", "secret")
    await client.send(f"<auth xmlns='{SASL}' mechanism='SCRAM-SHA-1'>"
                      f"{base64.b64encode(scram.first()).decode()}</auth>")
    challenge = await client.next(lambda e: e.tag == f"{{{SASL}}}challenge")
    server_first = base64.b64decode(challenge.text or "")
    assert scram.downgrade_protected(server_first, mechs, kinds)
    assert not scram.downgrade_protected(server_first, mechs[:-1], kinds)  # a list tampered
    assert not scram.downgrade_protected(server_first, mechs, [])
    await client.send(f"<response xmlns='{SASL}'>"
                      f"{base64.b64encode(scram.final(server_first)).decode()}</response>")
    success = await client.next(lambda e: e.tag == f"{{{SASL}}}success")
    assert scram.verify(base64.b64decode(success.text or ""))
    await client.close()


async def test_sasl2_off_is_not_offered_and_sasl1_still_works(servers: Any) -> None:
    server = await servers.start(c2s={"sasl2": False})
    await server.host.accounts.create("alice", "secret")
    client = await Sasl2Client.connect(server)
    features = await client.open_stream()
    assert features.find(S + "authentication") is None
    await client.send(f"<authenticate xmlns='{SASL2}' mechanism='PLAIN'/>")
    error = await client.next(lambda e: e.tag == STREAM + "error")
    assert error[0].tag.endswith("}not-authorized")
    alice = await connect(server, "alice", create=False)
    await alice.close()


async def test_slixmpp_sasl1_clients_are_unchanged(server: Server) -> None:
    alice = await connect(server, "alice", create=False, resource="desk")
    assert str(alice.boundjid) == A + "/desk"
    await alice.close()


# -- stream management resumption inline (XEP-0198 §5 in XEP-0388 <authenticate/>) ------------

async def test_resumption_inside_authenticate(server: Server) -> None:
    bob = await connect(server, "bob", create=False)
    first, success = await login(server)
    full = jid_of(success)
    enabled = success.find(f"{B}bound/{_SM}enabled")
    assert enabled is not None
    previd = enabled.get("id")
    session = next(s for s in server.host.sessions.of_user("alice")  # type: ignore[union-attr]
                   if str(s.jid) == full)
    send(bob, full, "while you were away")
    await first.next(lambda e: e.tag == C + "message")  # received, never acknowledged
    first.abort()

    again = await Sasl2Client.connect(server)
    resumed = await again.scram(extra=f"<resume xmlns='{SM}' previd='{previd}' h='0'/>"
                                + bind(tag="Other"))
    assert resumed.tag == S + "success"
    assert jid_of(resumed) == full  # the old session, its resource kept
    assert resumed.find(f"{_SM}resumed[@previd='{previd}']") is not None
    assert resumed.find(B + "bound") is None  # XEP-0386 §3.2: no new binding
    await again.next(lambda e: e.tag == STREAM + "features")
    message = await again.next(lambda e: e.tag == C + "message")  # sent again
    assert message.findtext(C + "body") == "while you were away"
    assert server.host.sessions.of_user("alice") == [session]  # type: ignore[union-attr]
    await again.send("<message to='bob@localhost/test' type='chat'><body>back</body></message>")
    assert (await bob.next("message"))["body"] == "back"
    await again.close()
    await bob.close()


async def test_failed_resumption_binds_a_new_session(server: Server) -> None:
    client = await Sasl2Client.connect(server)
    success = await client.scram(extra=f"<resume xmlns='{SM}' previd='nope' h='0'/>" + bind())
    failed = success.find(_SM + "failed")
    assert failed is not None and failed[0].tag.endswith("}item-not-found")
    assert success.find(B + "bound") is not None and jid_of(success).startswith(A + "/Tester/")
    await client.close()


async def test_resumption_acking_more_than_was_sent_ends_the_stream(server: Server) -> None:
    first, success = await login(server)
    enabled = success.find(f"{B}bound/{_SM}enabled")
    assert enabled is not None
    first.abort()
    again = await Sasl2Client.connect(server)
    await again.open_stream()
    reply = await again.scram(extra=f"<resume xmlns='{SM}' previd='{enabled.get('id')}' "
                              "h='7'/>" + bind())
    assert reply.tag == STREAM + "error"  # XEP-0198 §4, and no <success/>
    assert reply.find(_SM + "handled-count-too-high") is not None
    await again.until_closed()
    assert not [e for e in again.items if e.tag == S + "success"]


async def test_a_new_login_of_the_same_client_replaces_its_old_session(server: Server) -> None:
    first, _ = await login(server, extra=bind())
    second = await Sasl2Client.connect(server)
    second.client_id = first.client_id  # the same installation, reconnecting
    assert (await second.scram(extra=bind())).tag == S + "success"
    error = await first.next(lambda e: e.tag == STREAM + "error")
    assert error[0].tag.endswith("}conflict")  # XEP-0386 §3.2
    other = await Sasl2Client.connect(server)  # another client of the account stays
    assert (await other.scram(extra=bind())).tag == S + "success"
    await second.nothing(lambda e: e.tag == STREAM + "error")
    for client in (first, second, other):
        await client.close()


async def test_bind_failure_keeps_the_stream_authenticated(servers: Any) -> None:
    server = await servers.start(limits={"max_resources_per_user": 1})
    await server.host.accounts.create("alice", "secret")
    first: Client = await connect(server, "alice", create=False)
    client = await Sasl2Client.connect(server)
    success = await client.scram(extra=bind())
    failed = success.find(B + "failed")
    assert failed is not None and jid_of(success) == A
    assert failed.find(".//{urn:ietf:params:xml:ns:xmpp-stanzas}resource-constraint") is not None
    await client.close()
    await first.close()
