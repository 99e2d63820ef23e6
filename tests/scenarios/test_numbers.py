"""Numbers in stanzas are ASCII digits in range; anything else is a bad-request, not a crash.

'²' passes ``str.isdigit()`` and then fails ``int()`` (an internal error); ARABIC-INDIC
DIGIT ONE and '1_0' are read by ``int()`` as 1 and 10. None of them is an XML Schema integer.
"""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

import pytest
from slixmpp.exceptions import IqError

from tests.support.clients import Client, connect
from xmpp_server.server import Server

BAD = ("\u00b2", "\u0661", "1_0", "0x1", "1.0", "", "99999999999999999999999")
UPLOAD = "urn:xmpp:http:upload:0"
MAM = "urn:xmpp:mam:2"
RSM = "http://jabber.org/protocol/rsm"
PUBSUB = "http://jabber.org/protocol/pubsub"
STANZAS = "{urn:ietf:params:xml:ns:xmpp-stanzas}"


async def iq_condition(client: Client, type_: str, to: str, payload: str) -> str:
    """The error condition of an IQ that must fail; "result" if it succeeded."""
    iq = client.make_iq(ito=to, itype=type_)
    iq.xml.append(ET.fromstring(payload))
    try:
        await iq.send(timeout=10)
    except IqError as exc:
        return str(exc.iq["error"]["condition"])
    return "result"


@pytest.fixture
async def alice(server: Server) -> Any:
    client = await connect(server, "alice")
    yield client
    await client.close()


async def test_upload_size(alice: Client) -> None:
    for size in BAD:
        request = f"<request xmlns='{UPLOAD}' filename='a.txt' size='{size}'/>"
        assert await iq_condition(alice, "get", "upload.localhost", request) == "bad-request", size
    good = f"<request xmlns='{UPLOAD}' filename='a.txt' size='010'/>"
    assert await iq_condition(alice, "get", "upload.localhost", good) == "result"


async def test_archive_page_size(alice: Client) -> None:
    for text in BAD:
        query = f"<query xmlns='{MAM}'><set xmlns='{RSM}'><max>{text}</max></set></query>"
        assert await iq_condition(alice, "set", "alice@localhost", query) == "bad-request", text
    query = f"<query xmlns='{MAM}'><set xmlns='{RSM}'><max> 5 </max></set></query>"
    assert await iq_condition(alice, "set", "alice@localhost", query) == "result"


async def test_pubsub_max_items(alice: Client) -> None:
    for text in (*BAD, "0"):
        items = (f"<pubsub xmlns='{PUBSUB}'><items node='urn:xmpp:avatar:metadata' "
                 f"max_items='{text}'/></pubsub>")
        assert await iq_condition(alice, "get", "alice@localhost", items) == "bad-request", text


async def test_presence_priority(alice: Client) -> None:
    for text in ("\u0661", "1_0", "128", "\u00b2"):
        alice.send_raw(f"<presence><priority>{text}</priority></presence>")
        pres = await alice.next("presence", lambda p: p["type"] == "error")
        error = pres.xml.find("{jabber:client}error")
        assert error is not None and error.find(STANZAS + "bad-request") is not None, text
    alice.send_raw("<presence><priority>-128</priority></presence>")
    pres = await alice.next("presence")  # our own, back from the server: accepted
    assert pres["type"] != "error" and pres["priority"] == -128
