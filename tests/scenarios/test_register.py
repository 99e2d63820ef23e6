"""XEP-0077 in-band registration: register and log in, limits, password change, cancellation."""

from __future__ import annotations

import asyncio
import base64
import re

import pytest
from lxml import etree
from slixmpp.exceptions import IqError

from tests.support.clients import TIMEOUT, Client, RawClient, connect
from tests.support.server import ServerFactory
from xmpp_server.server import Server

MODULES = {"enabled": ["disco", "ping", "register"]}
REGISTER = "jabber:iq:register"
PLUGINS = ("xep_0004", "xep_0066", "xep_0077")


class Raw(RawClient):
    """A raw client on plain TCP (``c2s.require_tls = false``): registration IQs and PLAIN."""

    @classmethod
    async def connect(cls, server: Server) -> Raw:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.c2s_port)
        return cls(reader, writer)

    async def features(self) -> bytes:
        self.buffer = b""
        await self.send(self.header())
        return await self.expect(b"</stream:features>")

    async def iq(self, type_: str, payload: str, id_: str = "r1") -> etree._Element:
        """Send an IQ and return the reply with the same id, parsed."""
        self.buffer = b""
        await self.send(f"<iq type='{type_}' id='{id_}'>{payload}</iq>".encode())
        pattern = re.compile(rb"<iq [^>]*id=[\"']" + id_.encode() + rb"[\"'][^>]*?(/>|>.*?</iq>)",
                             re.S)
        async with asyncio.timeout(TIMEOUT):
            while (match := pattern.search(self.buffer)) is None:
                chunk = await self.reader.read(65536)
                if not chunk:
                    raise ConnectionError(self.buffer)
                self.buffer += chunk
        return etree.fromstring(match.group(0))

    async def register(self, username: str, password: str) -> etree._Element:
        return await self.iq("set", f"<query xmlns='{REGISTER}'><username>{username}</username>"
                                    f"<password>{password}</password></query>")

    async def plain(self, username: str, password: str) -> bytes:
        """SASL PLAIN (RFC 4616); the reply (success or failure)."""
        self.buffer = b""
        token = base64.b64encode(f"\0{username}\0{password}".encode()).decode()
        await self.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                        f"{token}</auth>".encode())
        async with asyncio.timeout(TIMEOUT):
            while not re.search(rb"<success|</failure>", self.buffer):
                chunk = await self.reader.read(65536)
                if not chunk:
                    raise ConnectionError(self.buffer)
                self.buffer += chunk
        return self.buffer

    async def login(self, username: str, password: str, resource: str) -> None:
        await self.features()
        assert b"<success" in await self.plain(username, password)
        await self.features()
        bind = await self.iq("set", "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                                    f"<resource>{resource}</resource></bind>", "b1")
        assert bind.get("type") == "result"


def _condition(reply: etree._Element) -> str | None:
    """The stanza error condition of an IQ reply, None for a result."""
    if reply.get("type") == "result":
        return None
    error = reply.find("{jabber:client}error")
    assert error is not None, etree.tostring(reply)
    return etree.QName(error[0]).localname


class Registrant(Client):
    """slixmpp registering its account in-band, then logging in on the same stream."""

    def __init__(self, jid: str, password: str) -> None:
        super().__init__(jid, password, PLUGINS)
        self.outcome: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self.add_event_handler("register", self._register)

    async def _register(self, _form: object) -> None:
        iq = self.Iq()
        iq["type"] = "set"
        iq["register"]["username"] = self.boundjid.user
        iq["register"]["password"] = self.password
        try:
            await iq.send()
            self.outcome.set_result(None)
        except IqError as exc:
            self.outcome.set_result(str(exc.iq["error"]["condition"]))
            self.disconnect()


async def _register_with_slixmpp(server, user: str, password: str) -> Registrant:
    client = Registrant(f"{user}@localhost/reg", password)
    client.connect("127.0.0.1", server.c2s_port)
    await asyncio.wait_for(client.outcome, TIMEOUT)
    return client


@pytest.fixture
async def server(servers: ServerFactory) -> Server:
    return await servers.start(modules=MODULES)


@pytest.fixture
async def plain(servers: ServerFactory) -> Server:
    return await servers.start(modules=MODULES, c2s={"require_tls": False})


async def _raw(server) -> Raw:
    raw = await Raw.connect(server)
    await raw.features()
    return raw


# -- registration before login ------------------------------------------------------------------


async def test_register_then_log_in_with_scram(server):
    client = await _register_with_slixmpp(server, "romeo", "wherefore")
    try:
        assert client.outcome.result() is None
        await asyncio.wait_for(client.started, TIMEOUT)  # SASL (SCRAM) with the new account
        assert str(client.boundjid) == "romeo@localhost/reg"
    finally:
        await client.close()
    again = await connect(server, "romeo", "wherefore", create=False)
    await again.close()


async def test_register_then_log_in_with_plain(plain):
    raw = await Raw.connect(plain)
    try:
        features = await raw.features()
        assert b"<register xmlns=\"http://jabber.org/features/iq-register\"/>" in features
        form = await raw.iq("get", f"<query xmlns='{REGISTER}'/>")
        query = form.find(f"{{{REGISTER}}}query")
        assert query is not None
        fields = {etree.QName(child).localname for child in query}
        assert fields == {"instructions", "username", "password"}
        assert _condition(await raw.register("Juliet", "balcony")) is None
        # the name was prepared (RFC 7622 §3.3: localparts are case-mapped)
        assert b"<success" in await raw.plain("juliet", "balcony")
        features = await raw.features()
        assert b"iq-register" not in features  # authenticated: nothing to register
    finally:
        await raw.close()


async def test_duplicate_username_conflicts(server):
    await server.host.accounts.create("romeo", "first")
    client = await _register_with_slixmpp(server, "romeo", "second")
    await client.close()
    assert client.outcome.result() == "conflict"
    assert await server.host.accounts.verify_password("romeo", "first")


async def test_concurrent_registrations_of_one_name_one_wins(plain):
    raws = [await _raw(plain) for _ in range(2)]
    try:
        replies = await asyncio.gather(*(raw.register("mercutio", f"pw{i}")
                                         for i, raw in enumerate(raws)))
    finally:
        for raw in raws:
            await raw.close()
    assert sorted(map(str, map(_condition, replies))) == ["None", "conflict"]
    winner = next(i for i, reply in enumerate(replies) if _condition(reply) is None)
    assert await plain.host.accounts.verify_password("mercutio", f"pw{winner}")


async def test_bad_requests(plain):
    raw = await _raw(plain)
    try:
        # XEP-0077 §3.1: missing or empty fields -> not-acceptable
        assert _condition(await raw.register("tybalt", "")) == "not-acceptable"
        missing = await raw.iq("set", f"<query xmlns='{REGISTER}'><username>tybalt</username>"
                                      "</query>")
        assert _condition(missing) == "not-acceptable"
        # no valid localpart (RFC 7622 §3.3.1)
        assert _condition(await raw.register("ty@balt", "pw")) == "not-acceptable"
        assert _condition(await raw.register("ty balt", "pw")) == "not-acceptable"
        # cancelling before logging in: there is no account yet
        remove = await raw.iq("set", f"<query xmlns='{REGISTER}'><remove/></query>")
        assert _condition(remove) == "registration-required"
        # the error does not echo the request (it holds a password)
        reply = await raw.register("ty@balt", "s3cret")
        assert b"s3cret" not in etree.tostring(reply)
        assert not await plain.host.accounts.exists("tybalt")
        # the stream is still usable
        assert _condition(await raw.register("tybalt", "pw")) is None
    finally:
        await raw.close()


async def test_registration_disabled(servers):
    server = await servers.start(modules=MODULES, c2s={"require_tls": False},
                                 registration={"enabled": False})
    raw = await Raw.connect(server)
    try:
        assert b"iq-register" not in await raw.features()
        # XEP-0077 §3.1: a host without in-band registration answers service-unavailable
        form = await raw.iq("get", f"<query xmlns='{REGISTER}'/>")
        assert _condition(form) == "service-unavailable"
        assert _condition(await raw.register("paris", "pw")) == "not-allowed"
    finally:
        await raw.close()
    assert not await server.host.accounts.exists("paris")


async def test_registration_needs_tls_when_required(server):
    raw = await Raw.connect(server)
    try:
        features = await raw.features()
        assert b"<starttls" in features and b"iq-register" not in features
        assert _condition(await raw.register("paris", "pw")) == "not-authorized"
    finally:
        await raw.close()
    assert not await server.host.accounts.exists("paris")


async def test_rate_limit_per_address(servers):
    server = await servers.start(modules=MODULES, c2s={"require_tls": False},
                                 registration={"exempt": [], "rate_limit": 2})
    raws = [await _raw(server) for _ in range(2)]
    try:
        assert _condition(await raws[0].register("one", "pw")) is None
        assert _condition(await raws[1].register("two", "pw")) is None
        over = await raws[1].register("three", "pw")
        assert _condition(over) == "policy-violation"
        assert over.find("{jabber:client}error").get("type") == "wait"
    finally:
        for raw in raws:
            await raw.close()
    assert not await server.host.accounts.exists("three")


async def test_loopback_is_exempt_by_default(servers):
    server = await servers.start(modules=MODULES, c2s={"require_tls": False},
                                 registration={"rate_limit": 1})
    raw = await _raw(server)
    try:
        for name in ("one", "two", "three"):
            assert _condition(await raw.register(name, "pw")) is None
    finally:
        await raw.close()


# -- after login ---------------------------------------------------------------------------------


async def test_registered_and_password_change(server):
    alice = await connect(server, "alice", "old-password", plugins=PLUGINS)
    try:
        info = await alice.plugin["xep_0077"].get_registration()
        assert info["register"]["registered"]
        assert info["register"]["username"] == "alice"
        # XEP-0077 §3.3: the username must be the user's own
        iq = alice.Iq(stype="set")
        iq["register"]["username"] = "bob"
        iq["register"]["password"] = "stolen"
        with pytest.raises(IqError) as info_err:
            await iq.send()
        assert info_err.value.iq["error"]["condition"] == "bad-request"
        assert "stolen" not in str(info_err.value.iq)
        await alice.plugin["xep_0077"].change_password("new-password")
    finally:
        await alice.close()
    with pytest.raises(ConnectionError):
        await connect(server, "alice", "old-password", create=False)
    again = await connect(server, "alice", "new-password", create=False)
    await again.close()


async def test_cancel_account_ends_every_session(plain):
    deleted: list[str] = []
    plain.host.events.on("user-deleted", deleted.append)
    alice = await connect(plain, "alice", plugins=PLUGINS)
    other = await Raw.connect(plain)
    await other.login("alice", "secret", "other")
    try:
        await alice.plugin["xep_0077"].cancel_registration()  # the result arrives first
        await asyncio.wait_for(alice.disconnected, TIMEOUT)
        # XEP-0077 §3.2: the other session gets a not-authorized stream error
        data = await other.read_until_closed()
        assert b"<not-authorized" in data and b"stream:error" in data
    finally:
        await alice.close()
        await other.close()
    assert deleted == ["alice"]
    assert not await plain.host.accounts.exists("alice")
    with pytest.raises(ConnectionError):
        await connect(plain, "alice", create=False)
