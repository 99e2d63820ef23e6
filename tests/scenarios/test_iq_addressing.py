"""IQs the server answers for an account, however the client addresses them (RFC 6120 §10.3.3).

Every IQ the server handles itself must work with no ``to``, with ``to`` the sender's own bare
JID, and, where the specification addresses the server (RFC 3921 session, XEP-0199 ping,
XEP-0030 disco, XEP-0092 version, XEP-0202 time, XEP-0012 uptime, XEP-0077), with ``to`` the
domain. Clients differ: Strophe.js sends the session IQ with no ``to``, profanity pings the
domain, slixmpp sends carbons and blocking with none. Each case runs in all its forms on one
raw connection, so a failure names the IQ and the form.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from lxml import etree

from tests.support.clients import C, StreamClient
from tests.support.server import ServerFactory

NONE, OWN, DOMAIN = "no to", "own bare JID", "the domain"
ALL = (NONE, OWN, DOMAIN)
ACCOUNT = (NONE, OWN)


@dataclass(frozen=True)
class Case:
    name: str
    type: str
    payload: str
    forms: tuple[str, ...]
    expect: str = ""  # a child tag the result must carry ({ns}name), if any


PUBSUB = "http://jabber.org/protocol/pubsub"
CASES = (
    Case("session", "set", "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>", ALL),
    Case("ping", "get", "<ping xmlns='urn:xmpp:ping'/>", ALL),
    Case("disco#info", "get", "<query xmlns='http://jabber.org/protocol/disco#info'/>", ALL,
         "{http://jabber.org/protocol/disco#info}query"),
    Case("disco#items", "get", "<query xmlns='http://jabber.org/protocol/disco#items'/>", ALL,
         "{http://jabber.org/protocol/disco#items}query"),
    Case("version", "get", "<query xmlns='jabber:iq:version'/>", ALL,
         "{jabber:iq:version}query"),
    Case("time", "get", "<time xmlns='urn:xmpp:time'/>", ALL, "{urn:xmpp:time}time"),
    Case("last", "get", "<query xmlns='jabber:iq:last'/>", ALL, "{jabber:iq:last}query"),
    Case("register", "get", "<query xmlns='jabber:iq:register'/>", ALL,
         "{jabber:iq:register}query"),
    Case("vcard set", "set",
         "<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>", ACCOUNT),
    Case("vcard get", "get", "<vCard xmlns='vcard-temp'/>", ACCOUNT, "{vcard-temp}vCard"),
    Case("private set", "set",
         "<query xmlns='jabber:iq:private'><prefs xmlns='example:prefs'>1</prefs></query>",
         ACCOUNT),
    Case("private get", "get",
         "<query xmlns='jabber:iq:private'><prefs xmlns='example:prefs'/></query>", ACCOUNT,
         "{jabber:iq:private}query"),
    Case("roster get", "get", "<query xmlns='jabber:iq:roster'/>", ACCOUNT,
         "{jabber:iq:roster}query"),
    Case("roster set", "set",
         "<query xmlns='jabber:iq:roster'><item jid='bob@localhost'/></query>", ACCOUNT),
    Case("block", "set",
         "<block xmlns='urn:xmpp:blocking'><item jid='spam@example.org'/></block>", ACCOUNT),
    Case("blocklist", "get", "<blocklist xmlns='urn:xmpp:blocking'/>", ACCOUNT,
         "{urn:xmpp:blocking}blocklist"),
    Case("unblock", "set",
         "<unblock xmlns='urn:xmpp:blocking'><item jid='spam@example.org'/></unblock>",
         ACCOUNT),
    Case("carbons enable", "set", "<enable xmlns='urn:xmpp:carbons:2'/>", ACCOUNT),
    Case("carbons disable", "set", "<disable xmlns='urn:xmpp:carbons:2'/>", ACCOUNT),
    Case("mam form", "get", "<query xmlns='urn:xmpp:mam:2'/>", ACCOUNT),
    Case("mam query", "set", "<query xmlns='urn:xmpp:mam:2'/>", ACCOUNT,
         "{urn:xmpp:mam:2}fin"),
    Case("mam prefs", "get", "<prefs xmlns='urn:xmpp:mam:2'/>", ACCOUNT,
         "{urn:xmpp:mam:2}prefs"),
    Case("pep publish", "set",
         f"<pubsub xmlns='{PUBSUB}'><publish node='urn:example:mood'>"
         "<item id='current'><mood xmlns='urn:example:mood'>calm</mood></item>"
         "</publish></pubsub>", ACCOUNT),
    Case("pep items", "get",
         f"<pubsub xmlns='{PUBSUB}'><items node='urn:example:mood'/></pubsub>", ACCOUNT,
         f"{{{PUBSUB}}}pubsub"),
    Case("bookmark publish", "set",
         f"<pubsub xmlns='{PUBSUB}'><publish node='urn:xmpp:bookmarks:1'>"
         "<item id='room@conference.localhost'>"
         "<conference xmlns='urn:xmpp:bookmarks:1' autojoin='true'/></item></publish>"
         f"<publish-options><x xmlns='jabber:x:data' type='submit'>"
         "<field var='FORM_TYPE' type='hidden'>"
         "<value>http://jabber.org/protocol/pubsub#publish-options</value></field>"
         "<field var='pubsub#persist_items'><value>true</value></field>"
         "<field var='pubsub#access_model'><value>whitelist</value></field>"
         "</x></publish-options></pubsub>", ACCOUNT),
    Case("bookmarks", "get",
         f"<pubsub xmlns='{PUBSUB}'><items node='urn:xmpp:bookmarks:1'/></pubsub>", ACCOUNT,
         f"{{{PUBSUB}}}pubsub"),
    Case("push enable", "set",
         "<enable xmlns='urn:xmpp:push:0' jid='push.example.org' node='device-1'/>", ACCOUNT),
    Case("push disable", "set",
         "<disable xmlns='urn:xmpp:push:0' jid='push.example.org' node='device-1'/>", ACCOUNT),
)

_ids = itertools.count()


async def _ask(raw: StreamClient, case: Case, form: str) -> str | None:
    """Send one form of ``case``; None when answered as it should be, else what went wrong."""
    iq_id = f"q{next(_ids)}"
    to = {NONE: "", OWN: " to='alice@localhost'", DOMAIN: " to='localhost'"}[form]
    await raw.send(f"<iq type='{case.type}' id='{iq_id}'{to}>{case.payload}</iq>")
    reply = await raw.next(lambda e: e.tag == C + "iq" and e.get("id") == iq_id)
    if reply.get("type") != "result":
        return etree.tostring(reply).decode()
    if case.expect and reply.find(case.expect) is None:
        return f"no {case.expect} in {etree.tostring(reply).decode()}"
    frm = reply.get("from")
    allowed = {NONE: (None, "alice@localhost"), OWN: ("alice@localhost",),
               DOMAIN: ("localhost",)}[form]
    if frm not in allowed:  # RFC 6120 §8.1.2.1: from whom the client asked
        return f"answered from {frm!r}"
    return None


@pytest.fixture
async def alice(servers: ServerFactory) -> AsyncIterator[StreamClient]:
    """alice@localhost/strophe logged in over a raw stream (bob exists too)."""
    server = await servers.start(c2s={"require_tls": False})
    assert server.host is not None
    await server.host.accounts.create("alice", "secret")
    await server.host.accounts.create("bob", "secret")
    raw = await StreamClient.open(server)
    try:
        await raw.login("alice", "secret", resource="strophe")
        yield raw
    finally:
        await raw.close()


async def test_every_form_of_every_iq(alice: StreamClient) -> None:
    await alice.send("<presence/>")
    failures = []
    for case in CASES:
        for form in case.forms:
            problem = await _ask(alice, case, form)
            if problem is not None:
                failures.append(f"{case.name} ({form}): {problem}")
    assert not failures, "\n".join(failures)


async def test_the_session_iq_of_another_account_is_refused(alice: StreamClient) -> None:
    """Only the account itself is answered for: a session IQ to bob is bob's to refuse."""
    await alice.send("<iq type='set' id='s1' to='bob@localhost'>"
                     "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>"
                     "<iq type='get' id='p1' to='bob@localhost'>"
                     "<ping xmlns='urn:xmpp:ping'/></iq>")
    for iq_id in ("s1", "p1"):
        reply = await alice.next(lambda e, i=iq_id: e.get("id") == i)  # type: ignore[misc]
        assert reply.get("type") == "error"
        assert reply.find("{jabber:client}error/"
                          "{urn:ietf:params:xml:ns:xmpp-stanzas}service-unavailable") is not None
