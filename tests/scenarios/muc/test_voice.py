"""XEP-0045 §7.13, §8.6: a visitor asks for voice, the moderator approves with the form."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

from tests.scenarios.muc.helpers import (
    DATA,
    MUC,
    clients,
    create,
    entered,
    groupchat,
    item,
    message_error,
    say,
    sub,
)
from tests.support.clients import Client

REQUEST = MUC + "#request"


def send_form(c: Client, room: str, **fields: str) -> None:
    msg = c.make_message(mto=room)
    x = sub(msg.xml, f"{{{DATA}}}x", type="submit")
    for var, value in {"FORM_TYPE": REQUEST, **fields}.items():
        sub(sub(x, f"{{{DATA}}}field", var=var), f"{{{DATA}}}value", value)
    msg.send()


def form_fields(msg: Any) -> dict[str, str]:
    x = msg.xml.find(f"{{{DATA}}}x")
    assert x is not None, msg
    fields: dict[str, str] = {}
    for field in x.iter(f"{{{DATA}}}field"):
        value: ET.Element | None = field.find(f"{{{DATA}}}value")
        fields[field.get("var", "")] = "" if value is None else (value.text or "")
    return fields


def is_request(msg: Any) -> bool:
    x = msg.xml.find(f"{{{DATA}}}x")
    return x is not None and x.get("type") == "form"


async def test_voice_request_and_approval(server):
    alice, bob = await clients(server, "alice", "bob")
    room = await create(alice, "stage", "Alice", moderatedroom="1")
    await entered(bob, room, "Bob")
    say(bob, room, "hello?")
    assert await message_error(bob) == "forbidden"

    send_form(bob, room, **{"muc#role": "participant"})
    request = await alice.next("stanza", is_request)
    fields = form_fields(request)
    assert str(request["from"]) == room
    assert fields["FORM_TYPE"] == REQUEST
    assert fields["muc#roomnick"] == "Bob"
    assert fields["muc#jid"] == "bob@localhost/test"
    assert fields["muc#request_allow"] == "false"

    # A visitor cannot approve anything; a refusal changes nothing.
    send_form(bob, room, **{"muc#roomnick": "Bob", "muc#request_allow": "true"})
    assert await message_error(bob) == "forbidden"
    send_form(alice, room, **{"muc#roomnick": "Bob", "muc#request_allow": "false"})
    send_form(alice, room, **{"muc#roomnick": "Bob", "muc#request_allow": "true"})
    voiced = await bob.next("presence", lambda p: item(p).get("role") == "participant")
    assert item(voiced)["role"] == "participant"
    say(bob, room, "thanks")
    await groupchat(alice, "thanks")

    # Someone who already has voice asking again reaches nobody.
    send_form(bob, room, **{"muc#role": "participant"})
    say(bob, room, "after")
    seen = []
    while not seen or seen[-1]["body"] != "after":
        seen.append(await alice.next("stanza"))
    assert not any(is_request(m) for m in seen)


async def test_voice_request_needs_an_occupant(server):
    alice, carol = await clients(server, "alice", "carol")
    room = await create(alice, "stage2", "Alice", moderatedroom="1")
    send_form(carol, room, **{"muc#role": "participant"})
    assert await message_error(carol) == "not-acceptable"
    send_form(carol, room, **{"muc#role": "moderator"})
    assert await message_error(carol) == "not-acceptable"

