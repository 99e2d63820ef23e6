"""Stanza routing with generated stanzas: a raw client (alice) sends message, presence and iq
stanzas with random 'to', 'type', 'id' and payloads to a running server, while another
client (bob) is connected too.

Every stanza gets nothing or well-formed replies: an iq get/set that the server answers on
someone's behalf gets exactly one result or error with its id (RFC 6120 §8.2.3), an error
carries a defined condition (§8.3), an error stanza is never answered with an error (§8.3.1),
and nothing is an internal-server-error or an error in the server's log. Alice's session stays
up (an unknown top-level element is the only thing that ends it, with unsupported-stanza-type,
§4.9.3.23), and bob's session is unaffected.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from lxml import etree

from tests.fuzz.conftest import SHARED_SERVER, scaled
from tests.fuzz.strategies import children, xml_text
from tests.support.clients import StreamClient
from xmpp_server.server import Server

C = "{jabber:client}"
STANZAS_NS = "{urn:ietf:params:xml:ns:xmpp-stanzas}"
STREAM_ERROR = "{http://etherx.jabber.org/streams}error"
STREAMS_NS = "{urn:ietf:params:xml:ns:xmpp-streams}"
ALICE_FULL, BOB_FULL = "alice@localhost/raw", "bob@localhost/raw"

# Addresses whose iq get/set the server answers (itself, an account, a component, an error).
ANSWERED = ["localhost", "alice@localhost", "bob@localhost", "nobody@localhost",
            "nobody@localhost/x", "bob@localhost/gone", "conference.localhost",
            "upload.localhost", "room@conference.localhost", "room@conference.localhost/nick",
            "remote.example", "user@remote.example/r", "@@", "a@b@c", "", "localhost/",
            "\u2163@localhost", "[::1", "x" * 1100 + "@localhost", "LOCALHOST.",
            "Alice@LocalHost"]
TARGETS = st.one_of(st.none(), st.sampled_from([*ANSWERED, ALICE_FULL, BOB_FULL]), xml_text)
TYPES = {
    "message": ["chat", "normal", "groupchat", "headline", "error"],
    "presence": ["subscribe", "subscribed", "unsubscribe", "unsubscribed", "unavailable",
                 "probe", "error"],
    "iq": ["get", "set", "result", "error"],
}
# (No in-band account removal, XEP-0077 <remove/>: it ends the stream by design.)
PAYLOADS = [
    "<query xmlns='jabber:iq:roster'/>",
    "<query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='b'/></query>",
    "<query xmlns='jabber:iq:roster'><item jid='@@' subscription='remove'/></query>",
    "<query xmlns='http://jabber.org/protocol/disco#info'/>",
    "<query xmlns='http://jabber.org/protocol/disco#items' node='x'/>",
    "<query xmlns='jabber:iq:version'/>", "<ping xmlns='urn:xmpp:ping'/>",
    "<vCard xmlns='vcard-temp'><FN>x</FN></vCard>", "<time xmlns='urn:xmpp:time'/>",
    "<query xmlns='jabber:iq:private'><x xmlns='urn:example'/></query>",
    "<query xmlns='jabber:iq:private'/>", "<query xmlns='jabber:iq:last'/>",
    "<query xmlns='urn:xmpp:mam:2' queryid='q'/>",
    "<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'><field var='with'>"
    "<value>@@</value></field><field var='start'><value>yesterday</value></field></x>"
    "<set xmlns='http://jabber.org/protocol/rsm'><max>-1</max><before>zz</before></set>"
    "</query>",
    "<prefs xmlns='urn:xmpp:mam:2' default='sometimes'/>",
    "<enable xmlns='urn:xmpp:carbons:2'/>", "<blocklist xmlns='urn:xmpp:blocking'/>",
    "<block xmlns='urn:xmpp:blocking'><item jid='\u2163@@'/></block>",
    "<unblock xmlns='urn:xmpp:blocking'/>",
    "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node=''/></pubsub>",
    "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'><item id='1'>"
    "<entry xmlns='urn:example'/></item></publish></pubsub>",
    "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'/></pubsub>",
    "<request xmlns='urn:xmpp:http:upload:0' filename='a' size='x'/>",
    "<request xmlns='urn:xmpp:http:upload:0' filename='' size='-1' content-type=''/>",
    "<query xmlns='http://jabber.org/protocol/muc#owner'/>",
    "<x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='z'/></x>",
    "<x xmlns='http://jabber.org/protocol/muc#user'><invite to='@@'/></x>",
    "<body>hi</body>", "<body/><body xml:lang='fr'>salut</body>", "<subject>s</subject>",
    "<thread parent='p'>t</thread>", "<priority>abc</priority>", "<priority>999</priority>",
    "<show>nonsense</show>", "<status/>", "<delay xmlns='urn:xmpp:delay' stamp='never'/>",
    "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
    "<register xmlns='urn:xmpp:push:0'/>", "<query xmlns='jabber:iq:register'/>",
    "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind>",
    "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>",
    "<active xmlns='urn:xmpp:csi:0'/>", "<enable xmlns='urn:xmpp:sm:3'/>",
]
payloads = st.lists(st.one_of(st.sampled_from(PAYLOADS),
                              children().map(lambda e: etree.tostring(e).decode())),
                    max_size=3)
_serial = itertools.count()


@dataclass
class Sent:
    kind: str
    to: str | None
    type: str | None
    id: str | None
    payload: list[str]
    top_level: bool = True  # False: an unknown top-level element instead of a stanza

    def xml(self) -> str:
        if not self.top_level:
            return "<unknown xmlns='jabber:client'/>"
        attrs = "".join(f" {name}={quoteattr(value)}"
                        for name, value in (("to", self.to), ("type", self.type), ("id", self.id))
                        if value is not None)
        return f"<{self.kind}{attrs}>{''.join(self.payload)}</{self.kind}>"


@st.composite
def stanzas(draw: st.DrawFn) -> Sent:
    kind = draw(st.sampled_from(["message", "presence", "iq"]))
    type_ = draw(st.one_of(st.none(), st.sampled_from(TYPES[kind]), xml_text))
    id_ = draw(st.one_of(st.none(), xml_text))
    return Sent(kind, draw(TARGETS), type_, id_, draw(payloads),
                top_level=draw(st.integers(0, 30)) != 0)


async def login(server: Server, user: str) -> StreamClient:
    assert server.host is not None
    if not await server.host.accounts.exists(user):
        await server.host.accounts.create(user, "secret")
    client = await StreamClient.open(server)
    await client.open_stream()
    token = base64.b64encode(f"\0{user}\0secret".encode()).decode()
    await client.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                      f"{token}</auth>")
    await client.next(lambda e: e.tag.endswith("success"))
    client.restart()
    await client.open_stream()
    await client.send("<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                      "<resource>raw</resource></bind></iq>")
    await client.next(lambda e: e.get("id") == "bind")
    await client.send("<presence/>")
    return client


async def alive(client: StreamClient) -> list[etree._Element]:
    """Ping the server; returns what arrived before the answer (the answer must come)."""
    ping = f"ping-{next(_serial)}"
    await client.send(f"<iq type='get' id='{ping}' to='localhost'><ping xmlns='urn:xmpp:ping'/>"
                      "</iq>")
    await client.next(lambda e: e.get("id") == ping and e.get("type") == "result")
    before, client.items[:] = list(client.items), []
    return before


def check_well_formed_reply(el: etree._Element, sent: Sent) -> None:
    assert el.tag in (C + "message", C + "presence", C + "iq"), el.tag
    if el.get("from") == ALICE_FULL:
        return  # alice's own stanza, sent to herself: relayed as she wrote it
    if el.get("type") == "error":
        error = el.find(C + "error")
        assert error is not None, etree.tostring(el)
        conditions = [c.tag for c in error if c.tag.startswith(STANZAS_NS)]
        assert conditions, etree.tostring(el)
        assert STANZAS_NS + "internal-server-error" not in conditions, etree.tostring(el)
        if sent.id is not None and el.get("id") == sent.id and sent.to != ALICE_FULL:
            assert sent.type != "error", f"an error answered with an error: {sent.xml()}"


class People:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.alice: StreamClient | None = None
        self.bob: StreamClient | None = None

    async def start(self) -> None:
        self.alice = await login(self.server, "alice")
        self.bob = await login(self.server, "bob")

    async def close(self) -> None:
        for client in (self.alice, self.bob):
            if client is not None:
                await client.close()


@pytest.fixture
async def people(fuzz_server: Server) -> People:
    people = People(fuzz_server)
    await people.start()
    yield people  # type: ignore[misc]
    await people.close()


@settings(suppress_health_check=SHARED_SERVER, max_examples=scaled(60))
@given(st.lists(stanzas(), min_size=1, max_size=4))
@example([Sent("iq", "localhost", "get", "a", ["<query xmlns='jabber:iq:version'/>"])])
@example([Sent("iq", "@@", "get", "b", [])])
@example([Sent("message", "bob@localhost", "error", "c", ["<body>x</body>"])])
@example([Sent("iq", None, "set", "d", [], top_level=False)])
@example([Sent("iq", ALICE_FULL, "error", None, [])])
async def test_generated_stanzas_get_well_formed_replies(
        people: People, server_errors: list[logging.LogRecord], batch: list[Sent]) -> None:
    alice, bob = people.alice, people.bob
    assert alice is not None and bob is not None
    for sent in batch:
        if sent.kind == "iq" and sent.type in ("get", "set") and sent.id is None:
            sent.id = f"gen-{next(_serial)}"  # RFC 6120 §8.2.3: requests carry an id
        await alice.send(sent.xml())
        if not sent.top_level:
            error = await alice.next(lambda e: e.tag == STREAM_ERROR)
            assert error.find(STREAMS_NS + "unsupported-stanza-type") is not None, \
                etree.tostring(error)
            await alice.until_closed()
            await alice.close()
            people.alice = alice = await login(people.server, "alice")
            continue
        if (sent.kind == "iq" and sent.type in ("get", "set")
                and sent.to not in (ALICE_FULL, BOB_FULL)):
            reply = await alice.next(lambda e, i=sent.id: e.get("id") == i  # type: ignore
                                     and e.tag == C + "iq")
            assert reply.get("type") in ("result", "error"), etree.tostring(reply)
            check_well_formed_reply(reply, sent)
        for el in await alive(alice):
            check_well_formed_reply(el, sent)
            if sent.kind == "iq" and sent.type in ("get", "set") and sent.to != ALICE_FULL:
                assert el.get("id") != sent.id, f"two replies to {sent.xml()}"
    for el in await alive(bob):  # bob got what was addressed to him, and nothing broke
        assert el.tag in (C + "message", C + "presence", C + "iq"), el.tag
    await asyncio.sleep(0)


@pytest.mark.parametrize(("to", "kind", "payload"), [
    ("upload.localhost", "get", "<request xmlns='urn:xmpp:http:upload:0' filename='a.txt' "
                         "size='\u00b2' content-type='text/plain'/>"),
    (None, "set", "<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'>"
           "<max>\u00b2</max></set></query>"),
])
async def test_non_ascii_digits_are_a_bad_request(people: People, to: str | None, kind: str,
                                                  payload: str) -> None:
    alice = people.alice
    assert alice is not None
    target = f" to='{to}'" if to else ""
    await alice.send(f"<iq type='{kind}' id='n'{target}>{payload}</iq>")
    reply = await alice.next(lambda e: e.get("id") == "n")
    assert reply.get("type") == "error"
    assert reply.find(f"{C}error/{STANZAS_NS}bad-request") is not None, etree.tostring(reply)
