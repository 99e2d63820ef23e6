"""The pure helpers of the messages module: XEP-0359 ids and RFC 6121 §8.5.2.1.1 selection."""

from __future__ import annotations

import time
import uuid
from typing import Any

from lxml import etree

from xmpp_server.modules.messages import (
    deliver,
    new_stanza_id,
    stamp_stanza_id,
    strip_stanza_ids,
    top_resources,
)

SID = "{urn:xmpp:sid:0}"


class FakeSession:
    """What delivery reads and calls on a Session."""

    def __init__(self, priority: int = 0, available: bool = True, closed: bool = False,
                 congested: bool = False) -> None:
        self.priority = priority
        self.available = available
        self.closed = closed
        self.congested = congested
        self.filter = None  # no output filter (XEP-0352): delivery may write bytes directly
        self.sent: list[Any] = []

    def send(self, el: etree._Element, key: str | None = None) -> None:
        self.sent.append(("el", etree.tostring(el)))

    def send_bytes(self, data: bytes, key: str | None = None) -> None:
        self.sent.append(("bytes", data))


def sessions(*specs: FakeSession) -> list[Any]:
    return list(specs)


def message(*children: str) -> etree._Element:
    return etree.fromstring(
        f"<message xmlns='jabber:client' to='bob@localhost' type='chat'>{''.join(children)}"
        "</message>"
    )


def test_stanza_ids_are_uuid7_unique_and_time_ordered():
    ids = [new_stanza_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for sid in ids[:50]:
        parsed = uuid.UUID(sid)
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == sid
    now_ms = time.time_ns() // 1_000_000
    assert abs(int(ids[0].replace("-", "")[:12], 16) - now_ms) < 60_000
    before = new_stanza_id()
    time.sleep(0.002)
    assert new_stanza_id() > before  # sorts by time across milliseconds


def test_stamp_replaces_forged_ids_and_keeps_the_others():
    el = message(
        "<body>hi</body>",
        "<origin-id xmlns='urn:xmpp:sid:0' id='o1'/>",
        "<stanza-id xmlns='urn:xmpp:sid:0' id='f1' by='bob@localhost'/>",
        "<stanza-id xmlns='urn:xmpp:sid:0' id='f2' by='Bob@LocalHost'/>",
        "<stanza-id xmlns='urn:xmpp:sid:0' id='m1' by='room@conference.localhost'/>",
        "<stanza-id xmlns='urn:xmpp:sid:0' id='b1' by='not a jid@@'/>",
    )
    sid = stamp_stanza_id(el, "bob@localhost")
    found = {s.get("id"): s.get("by") for s in el.iterchildren(SID + "stanza-id")}
    assert found == {"m1": "room@conference.localhost", "b1": "not a jid@@",
                     sid: "bob@localhost"}
    assert el.find(SID + "origin-id").get("id") == "o1"
    # the new element declares its namespace itself, without a generated prefix
    assert b'<stanza-id xmlns="urn:xmpp:sid:0"' in etree.tostring(el)


def test_strip_without_stamp():
    el = message("<stanza-id xmlns='urn:xmpp:sid:0' id='f1' by='bob@localhost'/>")
    strip_stanza_ids(el, "bob@localhost")
    assert el.find(SID + "stanza-id") is None


def test_top_resources():
    hi, hi2, lo = FakeSession(5), FakeSession(5), FakeSession(1)
    assert top_resources(sessions(lo, hi, hi2)) == [hi, hi2]
    assert top_resources(sessions(lo)) == [lo]
    zero, neg = FakeSession(0), FakeSession(-1)
    assert top_resources(sessions(neg, zero)) == [zero]
    assert top_resources(sessions(neg)) == []
    away, gone = FakeSession(9, available=False), FakeSession(9, closed=True)
    assert top_resources(sessions(away, gone, lo)) == [lo]
    full = FakeSession(9, congested=True)  # its client has a full queue to acknowledge
    assert top_resources(sessions(full, lo)) == [lo]
    assert top_resources(sessions()) == []


def test_deliver_serialises_once_for_several_sessions():
    el = message("<body>hi</body>")
    one = FakeSession()
    deliver(el, sessions(one))
    assert one.sent == [("el", etree.tostring(el))]
    a, b = FakeSession(), FakeSession()
    deliver(el, sessions(a, b))
    assert a.sent == b.sent == [("bytes", etree.tostring(el))]
    assert a.sent[0][1] is b.sent[0][1]  # the very same bytes object
