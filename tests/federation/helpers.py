"""Clients of federated servers: slixmpp with a queue of every message, IQs built by hand."""

from __future__ import annotations

import asyncio
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from slixmpp.exceptions import IqError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from tests.support.clients import Client, connect
from xmpp_server.server import Server


async def user(server: Server, name: str, resource: str = "test", presence: bool = True,
               plugins: tuple[str, ...] = ("xep_0030",), **kw: Any) -> Client:
    """A logged-in client that answers no subscription by itself, with every message in
    its ``all`` queue (the ``message`` queue sees only messages with a body)."""
    c = await connect(server, name, resource=resource, plugins=plugins, **kw)
    c.auto_authorize = None
    c.auto_subscribe = False
    queue: asyncio.Queue[Any] = asyncio.Queue()
    c.queues["all"] = queue
    c.register_handler(Callback("fed-all-messages", MatchXPath("{jabber:client}message"),
                                queue.put_nowait))
    if presence:
        c.send_presence()
    return c


async def close(*clients: Client) -> None:
    for c in clients:
        await c.close()


async def iq(client: Client, to: str | None, payload: str, type_: str = "get") -> ET.Element:
    """Send an IQ with a payload (XML text); returns the result's element."""
    stanza = client.make_iq_get(ito=to) if type_ == "get" else client.make_iq_set(ito=to)
    stanza.xml.append(ET.fromstring(payload))
    reply = await client.query(stanza)
    return reply.xml


async def iq_error(client: Client, to: str | None, payload: str, type_: str = "get") -> str:
    with pytest.raises(IqError) as info:
        await iq(client, to, payload, type_)
    return str(info.value.iq["error"]["condition"])


def body(text: str) -> Any:
    return lambda m: m.xml.findtext("{jabber:client}body") == text


def frm(jid: str) -> Any:
    return lambda s: str(s["from"]) == jid


def chat(client: Client, to: str, text: str, type_: str = "chat") -> None:
    client.send_message(mto=to, mbody=text, mtype=type_)  # type: ignore[arg-type]


async def eventually(condition: Any, timeout: float = 5.0) -> None:
    """Wait until ``condition()`` holds: for server state no client event reports."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 (server state has no event to wait on)
            await asyncio.sleep(0.01)
