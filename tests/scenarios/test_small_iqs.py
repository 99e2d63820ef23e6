"""Small IQs of the server (XEP-0199, XEP-0092, XEP-0202, XEP-0012) and RFC 6120 IQ rules."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta

import pytest
from slixmpp import JID
from slixmpp.exceptions import IqError

from storage import RosterItem
from tests.support.clients import Client, connect
from tests.support.server import ServerFactory
from xmpp_server.server import Server

MODULES = ["disco", "ping", "version", "time", "last", "register"]
SERVER = JID("localhost")
PLUGINS = ("xep_0012", "xep_0092", "xep_0199", "xep_0202")


@pytest.fixture
async def server(servers: ServerFactory) -> Server:
    return await servers.start(modules={"enabled": MODULES})


async def _error(future: Awaitable[object]) -> str:
    with pytest.raises(IqError) as info:
        await future
    return str(info.value.iq["error"]["condition"])


async def _subscribe(server, contact: str, to_user: str) -> None:
    """``contact`` is subscribed to ``to_user``'s presence (RFC 6121 §2.1.2.5), both rosters.

    Set up in storage directly: the roster feature is not what these tests are about.
    """
    accounts = server.host.accounts
    for user in (contact, to_user):
        if not await accounts.exists(user):
            await accounts.create(user, "secret")
    roster = server.host.storage.roster
    await roster.put(to_user, RosterItem(jid=f"{contact}@localhost", subscription="from"))
    await roster.put(contact, RosterItem(jid=f"{to_user}@localhost", subscription="to"))


async def _logged_out(server, client: Client, status: str | None = None) -> None:
    """Close ``client`` (after an unavailable presence with ``status``) and wait until the
    last-activity feature has recorded the logout."""
    done = asyncio.Event()
    server.host.events.on("session-ended", lambda _s: done.set(), priority=-100)
    if status is not None:
        client.send_presence(ptype="unavailable", pstatus=status)
    await client.close()
    await asyncio.wait_for(done.wait(), 10)


async def test_ping_version_time(server):
    alice = await connect(server, "alice", plugins=PLUGINS)
    try:
        pong = await alice.plugin["xep_0199"].send_ping(SERVER)
        assert pong["type"] == "result"
        version = await alice.plugin["xep_0092"].get_version(SERVER)
        assert version["software_version"]["name"] == "xmppd"
        assert version["software_version"]["version"]
        reply = await alice.plugin["xep_0202"].get_entity_time(SERVER)
        # read the XML: slixmpp 1.17 fails to parse conforming <utc/> and <tzo/> values
        utc = reply.xml.findtext("{urn:xmpp:time}time/{urn:xmpp:time}utc")
        assert utc.endswith("Z")  # XEP-0202 §3: UTC, XEP-0082 format
        when = datetime.strptime(utc, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        assert abs(datetime.now(UTC) - when) < timedelta(seconds=30)
        assert reply.xml.findtext("{urn:xmpp:time}time/{urn:xmpp:time}tzo") == "+00:00"
    finally:
        await alice.close()


async def test_unknown_namespace_and_empty_iq(server):
    alice = await connect(server, "alice", plugins=PLUGINS)
    await server.host.accounts.create("bob", "secret")
    try:
        # RFC 6120 §8.4: an IQ nobody handles gets service-unavailable, to the server...
        iq = alice.make_iq_get(queryxmlns="urn:example:unknown", ito="localhost")
        assert await _error(iq.send()) == "service-unavailable"
        # ...to an account, which the server answers for (RFC 6121 §8.5.2.1.3),
        iq = alice.make_iq_get(queryxmlns="urn:example:unknown", ito="bob@localhost")
        assert await _error(iq.send()) == "service-unavailable"
        iq = alice.make_iq_get(queryxmlns="urn:example:unknown")  # the sender's own account
        assert await _error(iq.send()) == "service-unavailable"
        iq = alice.make_iq_set(ito="localhost")
        iq.enable("ping")  # ping is a get, not a set
        assert await _error(iq.send()) == "service-unavailable"
        # RFC 6120 §8.2.3: a get or set carries exactly one payload.
        iq = alice.make_iq_get(ito="localhost")
        assert await _error(iq.send()) == "bad-request"
        # the session lives on
        assert (await alice.plugin["xep_0199"].send_ping(SERVER))["type"] == "result"
    finally:
        await alice.close()


# -- XEP-0012 Last Activity -------------------------------------------------------------------


async def _last(client: Client, jid: str | None):
    iq = client.make_iq_get(queryxmlns="jabber:iq:last", ito=jid)
    return (await iq.send())["last_activity"]


async def test_last_activity_of_the_server_is_its_uptime(server):
    alice = await connect(server, "alice", plugins=PLUGINS)
    try:
        last = await _last(alice, "localhost")
        assert 0 <= last["seconds"] < 60
        assert not last["status"]
    finally:
        await alice.close()


async def test_last_logout_with_status_for_self_and_subscribers(server):
    await _subscribe(server, "bob", to_user="alice")
    alice = await connect(server, "alice", plugins=PLUGINS)
    await _logged_out(server, alice, status="gone fishing")
    stored = await server.host.storage.users.get_last_logout("alice")
    assert stored is not None and stored[1] == "gone fishing"

    bob = await connect(server, "bob", plugins=PLUGINS)
    alice = await connect(server, "alice", plugins=PLUGINS, resource="again")
    try:
        last = await _last(bob, "alice@localhost")
        assert 0 <= last["seconds"] < 30
        assert last["status"] == "gone fishing"
        # the user themself, with and without a 'to' (RFC 6120 §10.3.3)
        assert (await _last(alice, None))["status"] == "gone fishing"
        assert (await _last(alice, "alice@localhost"))["status"] == "gone fishing"
        # the seconds count from the recorded logout
        hour_ago = datetime.now(UTC) - timedelta(hours=1)
        await server.host.storage.users.set_last_logout("alice", hour_ago, None)
        last = await _last(bob, "alice@localhost")
        assert 3600 <= last["seconds"] < 3630
        assert not last["status"]
    finally:
        await bob.close()
        await alice.close()


async def test_last_activity_of_an_available_user_is_zero(server):
    await _subscribe(server, "bob", to_user="alice")
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    await server.host.storage.users.set_last_logout("alice", hour_ago, "old")
    alice = await connect(server, "alice", plugins=PLUGINS)
    bob = await connect(server, "bob", plugins=PLUGINS)
    try:
        # connected but not available (no initial presence): still the last logout
        assert (await _last(bob, "alice@localhost"))["seconds"] >= 3600
        # Initial presence makes a session available (RFC 6121 §4.2); that is the presence
        # feature's work, not enabled here (these tests stay about last activity alone).
        for session in server.host.sessions.of_user("alice"):
            session.available = True
        last = await _last(bob, "alice@localhost")
        assert last["seconds"] == 0  # XEP-0012 §4: online now
    finally:
        await alice.close()
        await bob.close()


async def test_last_activity_is_forbidden_to_others(server):
    await _subscribe(server, "bob", to_user="alice")  # bob sees alice; alice does not see bob
    alice = await connect(server, "alice", plugins=PLUGINS)
    carol = await connect(server, "carol", plugins=PLUGINS)
    try:
        # XEP-0012 §4: not subscribed to the user's presence -> forbidden
        assert await _error(_last(carol, "alice@localhost")) == "forbidden"
        assert await _error(_last(alice, "bob@localhost")) == "forbidden"
        # RFC 6121 §8.5.1: no such user -> service-unavailable
        assert await _error(_last(carol, "nobody@localhost")) == "service-unavailable"
        # a user with no logout yet and no available resource: nothing to tell
        assert await _error(_last(alice, None)) == "item-not-found"
    finally:
        await alice.close()
        await carol.close()
