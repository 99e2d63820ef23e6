"""XEP-0357 push notifications: a real app server (a XEP-0114 component) gets the publishes.

The app server (``AppServer``, a slixmpp ComponentXMPP at push.localhost) queues every publish
it receives and answers it with a result, or with an error when a test asks for one. Pushes
are unpaced (``push.min_interval = 0``) except where pacing is the subject.
"""

from __future__ import annotations

import asyncio
from typing import Any
from xml.etree import ElementTree as ET

import slixmpp
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from tests.federation.helpers import eventually, iq, iq_error
from tests.scenarios.test_messages import ping, send
from tests.scenarios.test_stream_mgmt import SM, SmRaw, message, sm
from tests.support.clients import TIMEOUT, Client, connect
from tests.support.server import ServerFactory
from xmpp_server.config import DEFAULT_MODULES
from xmpp_server.jid import JID
from xmpp_server.server import Server

PUSH = "urn:xmpp:push:0"
PUBSUB = "http://jabber.org/protocol/pubsub"
DATA = "jabber:x:data"
SUMMARY = "urn:xmpp:push:summary"
PUBLISH_OPTIONS = "http://jabber.org/protocol/pubsub#publish-options"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
SERVICE = "push.localhost"
SECRET = "s3cret"
A = "alice@localhost"


class AppServer(slixmpp.ComponentXMPP):
    """An XMPP Push Service (XEP-0357 §3): queues each publish and answers it with
    ``answer`` (None: a result; else the error's type and condition)."""

    def __init__(self) -> None:
        super().__init__(SERVICE, SECRET)
        self.publishes: asyncio.Queue[ET.Element] = asyncio.Queue()
        self.answer: tuple[str, str] | None = None
        self.started: asyncio.Future[bool] = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", lambda _: self.started.done()
                               or self.started.set_result(True))
        self.register_handler(Callback(
            "push-publish", MatchXPath(f"{{{self.default_ns}}}iq/{{{PUBSUB}}}pubsub"),
            self._publish))

    @classmethod
    async def connect_to(cls, server: Server) -> AppServer:
        app = cls()
        assert server.components is not None
        app.connect("127.0.0.1", server.components.port)
        await asyncio.wait_for(app.started, TIMEOUT)
        return app

    def _publish(self, stanza: Any) -> None:
        el = stanza.xml
        self.publishes.put_nowait(el)
        head = f"id='{el.get('id')}' from='{el.get('to')}' to='{el.get('from')}'"
        if self.answer is None:
            self.send_raw(f"<iq type='result' {head}/>")
        else:
            type_, condition = self.answer
            self.send_raw(f"<iq type='error' {head}><error type='{type_}'><{condition} "
                          "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")

    async def next(self, timeout: float = TIMEOUT) -> ET.Element:
        return await asyncio.wait_for(self.publishes.get(), timeout)

    async def nothing(self, wait: float = 0.5) -> None:
        try:
            el = await asyncio.wait_for(self.publishes.get(), wait)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected publish {ET.tostring(el)!r}")

    async def stop(self) -> None:
        self.disconnect()
        await asyncio.wait_for(self.disconnected, TIMEOUT)


# -- helpers ----------------------------------------------------------------------------------

async def start(servers: ServerFactory, **sections: dict[str, Any]) -> Server:
    push = {"min_interval": 0, **sections.pop("push", {})}
    c2s = {"require_tls": False, "sm_resume_timeout": 60, **sections.pop("c2s", {})}
    return await servers.start(c2s=c2s,
                               components={"port": 0, "secrets": f"{SERVICE}={SECRET}"},
                               push=push, **sections)


def enable_xml(node: str | None, jid: str | None = SERVICE,
               options: dict[str, str] | None = None, form_type: str = PUBLISH_OPTIONS) -> str:
    attrs = "".join(f" {k}='{v}'" for k, v in (("jid", jid), ("node", node)) if v is not None)
    form = ""
    if options is not None:
        fields = {"FORM_TYPE": form_type, **options}
        form = f"<x xmlns='{DATA}' type='submit'>" + "".join(
            f"<field var='{k}'><value>{v}</value></field>" for k, v in fields.items()) + "</x>"
    return f"<enable xmlns='{PUSH}'{attrs}>{form}</enable>"


async def enable(client: Client, node: str, **kw: Any) -> None:
    await iq(client, None, enable_xml(node, **kw), "set")


async def disable(client: Client, node: str | None = None) -> None:
    attrs = f" node='{node}'" if node is not None else ""
    await iq(client, None, f"<disable xmlns='{PUSH}' jid='{SERVICE}'{attrs}/>", "set")


async def gone(server: Server, client: Client, user: str = "alice") -> None:
    """Close the client and wait until the server has ended its session."""
    assert server.host is not None
    await client.close()
    await eventually(lambda: not server.host.sessions.of_user(user))  # type: ignore[union-attr]


async def alice_offline(servers: ServerFactory,
                        **sections: dict[str, Any]) -> tuple[Server, AppServer]:
    """A server (``start``) and its app server; alice has enabled node 'n' and is gone."""
    server = await start(servers, **sections)
    app = await AppServer.connect_to(server)
    alice = await connect(server, "alice")
    await enable(alice, "n")
    await gone(server, alice)
    return server, app


def form(parent: ET.Element | None) -> dict[str, str]:
    assert parent is not None
    x = parent.find(f"{{{DATA}}}x")
    assert x is not None
    return {f.get("var", ""): f.findtext(f"{{{DATA}}}value", "")
            for f in x.iter(f"{{{DATA}}}field")}


def node_of(publish: ET.Element) -> str | None:
    el = publish.find(f"{{{PUBSUB}}}pubsub/{{{PUBSUB}}}publish")
    assert el is not None
    return el.get("node")


def summary(publish: ET.Element) -> dict[str, str]:
    return form(publish.find(f"{{{PUBSUB}}}pubsub/{{{PUBSUB}}}publish/{{{PUBSUB}}}item/"
                             f"{{{PUSH}}}notification"))


async def registrations(server: Server, user: str = "alice") -> list[tuple[str, str]]:
    assert server.host is not None
    return [(r.jid, r.node) for r in await server.host.storage.push.get(user)]


# -- discovery (§4) ---------------------------------------------------------------------------

async def test_account_and_server_advertise_push_only_with_the_module(servers: ServerFactory):
    for modules, expected in ((list(DEFAULT_MODULES), True),
                              ([m for m in DEFAULT_MODULES if m != "push"], False)):
        server = await start(servers, modules={"enabled": modules})
        alice = await connect(server, "alice")
        for target in (A, "localhost"):
            info = await iq(alice, target, f"<query xmlns='{DISCO_INFO}'/>")
            features = {f.get("var") for f in info.iter(f"{{{DISCO_INFO}}}feature")}
            assert (PUSH in features) is expected, (target, modules)
        await alice.close()
        await servers.stop(server)


# -- offline: the summary, the options, what is left out ------------------------------------

async def test_offline_message_is_pushed_with_count_and_options_but_no_body(
        servers: ServerFactory) -> None:
    server = await start(servers)
    app = await AppServer.connect_to(server)
    alice = await connect(server, "alice")
    await enable(alice, "node-1", options={"secret": "eruio234"})
    assert await registrations(server) == [(SERVICE, "node-1")]
    bob = await connect(server, "bob")
    # Alice is connected (without presence: bob's message is stored): her device is online.
    send(bob, A, "while unavailable")
    await ping(bob)
    await app.nothing()

    await gone(server, alice)
    send(bob, A, "wherefore art thou")
    publish = await app.next()
    assert publish.get("type") == "set" and publish.get("from") == "localhost"
    assert publish.get("to") == SERVICE and node_of(publish) == "node-1"
    # §7: message-count; no sender and no body unless configured (§10)
    assert summary(publish) == {"FORM_TYPE": SUMMARY, "message-count": "1"}
    assert form(publish.find(f"{{{PUBSUB}}}pubsub/{{{PUBSUB}}}publish-options")) == {
        "FORM_TYPE": PUBLISH_OPTIONS, "secret": "eruio234"}
    assert b"wherefore" not in ET.tostring(publish)
    send(bob, A, "again")
    assert summary(await app.next())["message-count"] == "2"

    # Back online: the stored messages arrive and the count starts over.
    alice = await connect(server, "alice", create=False)
    alice.send_presence()
    assert [(await alice.next("message"))["body"] for _ in range(3)] == [
        "while unavailable", "wherefore art thou", "again"]
    await gone(server, alice)
    send(bob, A, "once more")
    assert summary(await app.next())["message-count"] == "1"
    await bob.close()
    await app.stop()


async def test_sender_and_body_when_configured(servers: ServerFactory) -> None:
    server, app = await alice_offline(servers, push={"include_sender": True, "include_body": True})
    bob = await connect(server, "bob", resource="desk")
    send(bob, A, "hello there")
    assert summary(await app.next()) == {
        "FORM_TYPE": SUMMARY, "message-count": "1", "last-message-sender": "bob@localhost/desk",
        "last-message-body": "hello there"}
    await bob.close()
    await app.stop()


async def test_encrypted_messages_count_chat_states_do_not(servers: ServerFactory) -> None:
    server, app = await alice_offline(servers, push={"important_body": "New message"})
    bob = await connect(server, "bob")
    # Only a chat state: not stored, nothing to push. A headline: dropped (RFC 6121 §8.5.2).
    send(bob, A, None, extra=[ET.Element("{http://jabber.org/protocol/chatstates}active")])
    send(bob, A, "news", type_="headline")
    await ping(bob)
    await app.nothing()
    # OMEMO without a body, stored on its <store/> hint: the server cannot tell, it pushes.
    encrypted = ET.Element("{eu.siacs.conversations.axolotl}encrypted")
    ET.SubElement(encrypted, "{eu.siacs.conversations.axolotl}payload").text = "AAAA"
    send(bob, A, None, extra=[encrypted, ET.Element("{urn:xmpp:hints}store")])
    # the body is not sent: the configured stand-in is (Prosody's push_notification_important_body)
    assert summary(await app.next()) == {
        "FORM_TYPE": SUMMARY, "message-count": "1", "last-message-body": "New message"}
    await bob.close()
    await app.stop()


# -- stream management: detached sessions (XEP-0198) ------------------------------------------

async def phone(servers: ServerFactory,
                resume_timeout: int = 60) -> tuple[Server, AppServer, SmRaw]:
    """A server and its app server, and alice's phone on a raw stream: available, stream
    management with resumption, push enabled for 'phone-node'."""
    server = await start(servers, c2s={"sm_resume_timeout": resume_timeout})
    app = await AppServer.connect_to(server)
    assert server.host is not None
    if not await server.host.accounts.exists("alice"):
        await server.host.accounts.create("alice", "secret")
    raw = await SmRaw.login(server, resource="phone")
    await raw.enable()
    await raw.send("<presence/>"
                   f"<iq type='set' id='push'>{enable_xml('phone-node')}</iq>")
    await raw.next(lambda e: e.get("id") == "push" and e.get("type") == "result")
    return server, app, raw


async def ack_all(raw: SmRaw) -> None:
    await raw.send(f"<a xmlns='{SM}' h='{len(raw.stanzas)}'/><r xmlns='{SM}'/>")
    await raw.next(sm("a"))


def detached(server: Server, jid: str) -> bool:
    assert server.host is not None
    session = server.host.sessions.get(JID.parse(jid))
    return session is not None and session.detached


async def test_messages_for_a_detached_session_are_pushed(servers: ServerFactory) -> None:
    server, app, raw = await phone(servers)
    bob = await connect(server, "bob")
    send(bob, A, "while connected")
    await raw.next(message("while connected"))
    await ack_all(raw)
    await app.nothing()  # delivered to a connected session: no push

    raw.abort()  # the network goes away: no closing tag; the session waits for resumption
    await eventually(lambda: detached(server, A + "/phone"))
    await app.nothing()  # everything was acknowledged: nothing unseen
    send(bob, A, "while away")
    publish = await app.next()
    assert node_of(publish) == "phone-node" and summary(publish)["message-count"] == "1"
    send(bob, A + "/phone", "to the full JID")
    assert summary(await app.next())["message-count"] == "2"
    await bob.close()
    await app.stop()


async def test_unacknowledged_messages_are_pushed_when_the_connection_drops(
        servers: ServerFactory) -> None:
    server, app, raw = await phone(servers)
    await ack_all(raw)
    bob = await connect(server, "bob")
    send(bob, A, "written, never acknowledged")
    await raw.next(message("written, never acknowledged"))
    await app.nothing()
    raw.abort()
    publish = await app.next()
    assert node_of(publish) == "phone-node" and summary(publish)["message-count"] == "1"
    await bob.close()
    await app.stop()


async def test_an_expired_session_does_not_push_its_messages_twice(
        servers: ServerFactory) -> None:
    server, app, raw = await phone(servers, resume_timeout=1)
    await ack_all(raw)
    bob = await connect(server, "bob")
    send(bob, A, "unacknowledged")
    await raw.next(message("unacknowledged"))
    raw.abort()
    assert summary(await app.next())["message-count"] == "1"
    # The session expires: the message goes to offline storage without a second push.
    assert server.host is not None
    await eventually(lambda: not server.host.sessions.of_user("alice"))  # type: ignore[union-attr]
    async with asyncio.timeout(5):
        while await server.host.storage.offline.count("alice") != 1:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    await app.nothing()
    send(bob, A, "a new one")
    assert summary(await app.next())["message-count"] == "2"
    await bob.close()
    await app.stop()


async def test_only_the_detached_device_is_pushed_while_another_is_online(
        servers: ServerFactory) -> None:
    server, app, raw = await phone(servers)
    await ack_all(raw)
    desk = await connect(server, "alice", resource="desk", create=False)
    await enable(desk, "desk-node")
    desk.send_presence()
    await ping(desk)
    raw.abort()
    await eventually(lambda: detached(server, A + "/phone"))
    bob = await connect(server, "bob")
    send(bob, A, "to both")  # equal priorities: the desk and the detached phone get it
    assert (await desk.next("message"))["body"] == "to both"
    assert node_of(await app.next()) == "phone-node"
    await app.nothing()  # the desk is online: its registration gets nothing
    await desk.close()
    await bob.close()
    await app.stop()


# -- disabling (§6) and who may enable --------------------------------------------------------

async def test_disable_one_node_then_all_of_the_service(servers: ServerFactory) -> None:
    server = await start(servers)
    app = await AppServer.connect_to(server)
    alice = await connect(server, "alice")
    for node in ("n1", "n2"):
        await enable(alice, node)
    await enable(alice, "n1", options={"secret": "new"})  # the same pair again: replaced
    assert sorted(await registrations(server)) == [(SERVICE, "n1"), (SERVICE, "n2")]
    await disable(alice, "n1")
    assert await registrations(server) == [(SERVICE, "n2")]
    await gone(server, alice)
    bob = await connect(server, "bob")
    send(bob, A, "one")
    assert node_of(await app.next()) == "n2"
    await app.nothing()

    alice = await connect(server, "alice", create=False)
    await disable(alice, "no-such-node")  # nothing to remove: still a result
    await disable(alice)  # every node of the service
    assert await registrations(server) == []
    await gone(server, alice)
    send(bob, A, "two")
    await ping(bob)
    await app.nothing()
    await bob.close()
    await app.stop()


async def test_refused_enables(servers: ServerFactory) -> None:
    server = await start(servers, push={"max_registrations": 2})
    alice = await connect(server, "alice")
    bob = await connect(server, "bob")
    # Only the account's own clients (§5 is an IQ to one's own account).
    assert await iq_error(bob, A, enable_xml("n"), "set") == "not-allowed"
    assert await iq_error(bob, A, f"<disable xmlns='{PUSH}' jid='{SERVICE}'/>", "set") \
        == "not-allowed"
    for payload, condition in (
            (enable_xml("n", jid=None), "bad-request"),  # no service
            (enable_xml(None), "bad-request"),  # no node
            (enable_xml("n", jid="a@b@c"), "jid-malformed"),
            (enable_xml("n", jid=A + "/other"), "bad-request"),  # the account itself
            (enable_xml("n" * 300), "not-acceptable"),
            (enable_xml("n", options={"secret": "x"}, form_type="urn:other"), "bad-request")):
        assert await iq_error(alice, None, payload, "set") == condition, payload
    assert await registrations(server) == []
    await enable(alice, "n1")
    await enable(alice, "n2")
    assert await iq_error(alice, None, enable_xml("n3"), "set") == "not-allowed"
    await enable(alice, "n2", options={"secret": "x"})  # an update is no new registration
    assert sorted(await registrations(server)) == [(SERVICE, "n1"), (SERVICE, "n2")]
    assert await registrations(server, "bob") == []
    await alice.close()
    await bob.close()


# -- durability and the app server's errors (§7.1) --------------------------------------------

async def test_registrations_survive_a_restart(servers: ServerFactory) -> None:
    server = await start(servers)
    alice = await connect(server, "alice")
    await enable(alice, "kept", options={"secret": "s"})
    await alice.close()
    await servers.stop(server)

    server = await start(servers)
    app = await AppServer.connect_to(server)
    bob = await connect(server, "bob")
    send(bob, A, "after the restart")
    publish = await app.next()
    assert node_of(publish) == "kept" and summary(publish)["message-count"] == "1"
    assert form(publish.find(f"{{{PUBSUB}}}pubsub/{{{PUBSUB}}}publish-options"))["secret"] == "s"
    await bob.close()
    await app.stop()


async def test_app_server_errors(servers: ServerFactory) -> None:
    server, app = await alice_offline(servers)
    bob = await connect(server, "bob")
    app.answer = ("wait", "resource-constraint")  # transient: kept
    send(bob, A, "one")
    await app.next()
    app.answer = ("cancel", "item-not-found")  # the node is gone: so is the registration
    send(bob, A, "two")
    await app.next()  # the second push proves the first error kept it
    async with asyncio.timeout(TIMEOUT):
        while await registrations(server):  # noqa: ASYNC110 (removal is reported to no one)
            await asyncio.sleep(0.02)
    send(bob, A, "three")
    await ping(bob)
    await app.nothing()
    await bob.close()
    await app.stop()


async def test_pushes_to_one_app_server_are_paced(servers: ServerFactory) -> None:
    server, app = await alice_offline(servers, push={"min_interval": 3})
    bob = await connect(server, "bob")
    for body in ("one", "two", "three"):
        send(bob, A, body)
    # the first at once (with what arrived in the same burst); the rest within the interval
    # together, when it ends
    first = int(summary(await app.next())["message-count"])
    assert 1 <= first < 3
    assert summary(await app.next())["message-count"] == "3"
    await bob.close()
    await app.stop()
