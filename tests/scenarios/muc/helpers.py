"""Talking to rooms as a client does: slixmpp clients, MUC stanzas built by hand.

Every client gets a ``stanza`` queue with every message it receives (the ``message`` queue of
``tests.support.clients`` only sees messages with a body); presence goes to ``presence``.

Tests do not close their clients: every client ``client()`` opens is registered with the
``owned_clients()`` scope that the ``servers`` fixture of this package's conftest holds open
for the test, and is closed when the test ends, passed or failed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from contextvars import ContextVar
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from slixmpp.exceptions import IqError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from tests.support.clients import Client, connect
from xmpp_server.server import Server

SERVICE = "conference.localhost"
MUC = "http://jabber.org/protocol/muc"
USER = MUC + "#user"
ADMIN = MUC + "#admin"
OWNER = MUC + "#owner"
DATA = "jabber:x:data"
SID = "urn:xmpp:sid:0"
OCCUPANT_ID = "urn:xmpp:occupant-id:0"
MAM = "urn:xmpp:mam:2"
RSM = "http://jabber.org/protocol/rsm"
DELAY = "urn:xmpp:delay"


def room_jid(name: str) -> str:
    return f"{name}@{SERVICE}"


# The clients opened in the current test; set only inside ``owned_clients()``.
_opened: ContextVar[list[Client]] = ContextVar("muc_test_clients")


@contextlib.asynccontextmanager
async def owned_clients() -> AsyncIterator[list[Client]]:
    """Every client ``client()`` opens inside is closed on the way out (also on failure)."""
    opened: list[Client] = []
    token = _opened.set(opened)
    try:
        yield opened
    finally:
        _opened.reset(token)
        await close(*opened)  # closing a client closed already is harmless


async def client(server: Server, user: str, resource: str = "test",
                 plugins: tuple[str, ...] = (), **kw: Any) -> Client:
    """A logged-in client of ``user`` (with disco and these slixmpp plugins), closed when the
    test ends (see ``owned_clients``)."""
    opened = _opened.get(None)
    assert opened is not None, "open MUC test clients inside owned_clients() (the fixture)"
    c = await connect(server, user, resource=resource, plugins=("xep_0030", *plugins), **kw)
    opened.append(c)
    c.auto_authorize = None
    queue: asyncio.Queue[Any] = asyncio.Queue()
    c.queues["stanza"] = queue
    c.register_handler(Callback("muc-test-all-messages", MatchXPath("{jabber:client}message"),
                                queue.put_nowait))
    return c


async def clients(server: Server, *users: str, **kw: Any) -> tuple[Client, ...]:
    """One client per user, opened in this order, all with the same options."""
    return tuple([await client(server, user, **kw) for user in users])


async def close(*clients: Client) -> None:
    """Close now, mid-test (each is closed at the end of the test anyway)."""
    for c in clients:
        await c.close()


# -- reading what arrives ---------------------------------------------------------------------

def x_user(stanza: Any) -> ET.Element | None:
    return stanza.xml.find(f"{{{USER}}}x")


def statuses(stanza: Any) -> set[str]:
    x = x_user(stanza)
    return set() if x is None else {s.get("code", "") for s in x.findall(f"{{{USER}}}status")}


def item(stanza: Any) -> dict[str, str]:
    x = x_user(stanza)
    el = None if x is None else x.find(f"{{{USER}}}item")
    return {} if el is None else dict(el.attrib)


def error_condition(stanza: Any) -> str:
    """The RFC 6120 condition, read from the XML (slixmpp knows only RFC 3920's list)."""
    error = stanza.xml.find("{jabber:client}error")
    assert error is not None, stanza
    for child in error:
        name = child.tag.partition("}")[2]
        if child.tag.startswith("{urn:ietf:params:xml:ns:xmpp-stanzas}") and name != "text":
            return name
    return ""


def frm(jid: str) -> Callable[[Any], bool]:
    return lambda s: str(s["from"]) == jid


def gone(jid: str) -> Callable[[Any], bool]:
    """Unavailable presence from this room JID."""
    return lambda s: str(s["from"]) == jid and s["type"] == "unavailable"


def body(text: str) -> Callable[[Any], bool]:
    return lambda m: m.xml.findtext("{jabber:client}body") == text


def is_self(jid: str) -> Callable[[Any], bool]:
    """Available self-presence (110) from this room JID, or an error from it."""
    return lambda p: str(p["from"]) == jid and (
        ("110" in statuses(p) and p["type"] != "unavailable") or p["type"] == "error")


def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k.rstrip("_"): v for k, v in attrs.items()})
    if text is not None:
        el.text = text
    return el


# -- entering, leaving, speaking --------------------------------------------------------------

def send_join(c: Client, room: str, nick: str, *, password: str | None = None,
              history: dict[str, str] | None = None, muc: bool = True) -> None:
    pres = c.make_presence(pto=f"{room}/{nick}")
    if muc:
        x = sub(pres.xml, f"{{{MUC}}}x")
        if password is not None:
            sub(x, f"{{{MUC}}}password", password)
        if history is not None:
            sub(x, f"{{{MUC}}}history", **history)
    pres.send()


async def join(c: Client, room: str, nick: str, **kw: Any) -> Any:
    """Enter a room; returns the self-presence (or the error presence)."""
    send_join(c, room, nick, **kw)
    return await c.next("presence", is_self(f"{room}/{nick}"))


async def join_error(c: Client, room: str, nick: str, **kw: Any) -> str:
    pres = await join(c, room, nick, **kw)
    assert pres["type"] == "error", pres
    return error_condition(pres)


async def entered(c: Client, room: str, nick: str, **kw: Any) -> Any:
    pres = await join(c, room, nick, **kw)
    assert pres["type"] != "error", pres
    await c.next("stanza", lambda m: str(m["from"]).startswith(room)
                 and m.xml.find("{jabber:client}subject") is not None)
    return pres


async def create(c: Client, name: str, nick: str, **config: str) -> str:
    """A new room, configured (an instant room if no fields are given)."""
    room = room_jid(name)
    pres = await join(c, room, nick)
    assert "201" in statuses(pres), pres
    await c.next("stanza", lambda m: m.xml.find("{jabber:client}subject") is not None)
    await configure(c, room, **config)
    return room


async def configure(c: Client, room: str, **fields: str) -> Any:
    iq = c.make_iq_set(ito=room)
    query = sub(iq.xml, f"{{{OWNER}}}query")
    x = sub(query, f"{{{DATA}}}x", type="submit")
    if fields:
        ft = sub(x, f"{{{DATA}}}field", var="FORM_TYPE")
        sub(ft, f"{{{DATA}}}value", MUC + "#roomconfig")
    for var, value in fields.items():
        name = var if var.startswith("muc#") else f"muc#roomconfig_{var}"
        f = sub(x, f"{{{DATA}}}field", var=name)
        sub(f, f"{{{DATA}}}value", value)
    return await c.query(iq)


def say(c: Client, room: str, text: str) -> None:
    c.send_message(mto=room, mbody=text, mtype="groupchat")


def leave(c: Client, room: str, nick: str) -> None:
    c.send_presence(pto=f"{room}/{nick}", ptype="unavailable")


async def groupchat(c: Client, text: str) -> Any:
    return await c.next("stanza", lambda m: m["type"] == "groupchat" and body(text)(m))


async def message_error(c: Client) -> str:
    msg = await c.next("stanza", lambda m: m["type"] == "error")
    return error_condition(msg)


# -- IQs --------------------------------------------------------------------------------------

async def iq_error(future: Any) -> str:
    with pytest.raises(IqError) as info:
        await future
    return str(info.value.iq["error"]["condition"])


def admin_iq(c: Client, room: str, items: Iterable[dict[str, str]], type_: str = "set") -> Any:
    iq = c.make_iq_set(ito=room) if type_ == "set" else c.make_iq_get(ito=room)
    query = sub(iq.xml, f"{{{ADMIN}}}query")
    for attrs in items:
        reason = attrs.pop("reason", None)
        el = sub(query, f"{{{ADMIN}}}item", **attrs)
        if reason is not None:
            sub(el, f"{{{ADMIN}}}reason", reason)
    return c.query(iq)


async def admin_list(c: Client, room: str, **attrs: str) -> list[dict[str, str]]:
    result = await admin_iq(c, room, [attrs], type_="get")
    query = result.xml.find(f"{{{ADMIN}}}query")
    return [dict(el.attrib) for el in query.findall(f"{{{ADMIN}}}item")]


def disco_info_iq(c: Client, jid: str) -> Any:
    iq = c.make_iq_get(ito=jid)
    sub(iq.xml, "{http://jabber.org/protocol/disco#info}query")
    return c.query(iq)


def disco_items_iq(c: Client, jid: str) -> Any:
    iq = c.make_iq_get(ito=jid)
    sub(iq.xml, "{http://jabber.org/protocol/disco#items}query")
    return c.query(iq)


async def round_trip(c: Client) -> None:
    """Everything this client sent before has been handled by the server."""
    iq = c.make_iq_get(ito="localhost")
    iq.enable("ping")
    await c.query(iq)
