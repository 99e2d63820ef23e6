"""XEP-0203: a client's <delay/> survives only when it speaks for the client itself."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from tests.support.clients import connect
from xmpp_server.server import Server

DELAY = "urn:xmpp:delay"
LEGACY = "jabber:x:delay"


def delay(frm: str | None, stamp: str = "2001-01-01T00:00:00Z") -> str:
    attr = f" from='{frm}'" if frm is not None else ""
    return f"<delay xmlns='{DELAY}'{attr} stamp='{stamp}'/>"


async def test_forged_delays_are_removed(server: Server) -> None:
    alice = await connect(server, "alice")
    bob = await connect(server, "bob")
    try:
        cases = {
            "ours": (delay("localhost"), False),  # the server's claim (offline storage)
            "room": (delay("lounge@conference.localhost"), False),
            "other user": (delay("carol@localhost"), False),
            "other resource": (delay("alice@localhost/elsewhere"), False),
            "malformed": (delay("@@"), False),
            "legacy ours": (f"<x xmlns='{LEGACY}' from='localhost' stamp='20010101T00:00:00'/>",
                            False),
            "no from": (delay(None), True),  # the client's own queue (XEP-0203 §3)
            "bare": (delay("alice@localhost"), True),
            "full": (delay("alice@localhost/test"), True),
        }
        for name, (xml, kept) in cases.items():
            msg = alice.make_message(mto="bob@localhost/test", mbody=name, mtype="chat")
            msg.xml.append(ET.fromstring(xml))
            msg.send()
            got = await bob.next("message", lambda m, name=name: m["body"] == name)
            found = [child for child in got.xml if child.tag.endswith(("}delay", "}x"))]
            assert bool(found) == kept, (name, [ET.tostring(c) for c in found])
            if kept:
                assert found[0].get("stamp") == "2001-01-01T00:00:00Z"
        # a forwarded message inside (XEP-0297) is the client's content: untouched
        forwarded = (f"<forwarded xmlns='urn:xmpp:forward:0'>{delay('localhost')}"
                     "<message xmlns='jabber:client' to='x@localhost'><body>old</body>"
                     "</message></forwarded>")
        msg = alice.make_message(mto="bob@localhost/test", mbody="fwd", mtype="chat")
        msg.xml.append(ET.fromstring(forwarded))
        msg.send()
        got = await bob.next("message", lambda m: m["body"] == "fwd")
        assert got.xml.find(f"{{urn:xmpp:forward:0}}forwarded/{{{DELAY}}}delay") is not None
        # presence too: a directed presence with the server's delay arrives without it
        alice.send_raw(f"<presence to='bob@localhost/test'><status>here</status>"
                       f"{delay('localhost')}</presence>")
        pres = await bob.next("presence", lambda p: p["status"] == "here")
        assert pres.xml.find(f"{{{DELAY}}}delay") is None
    finally:
        await alice.close()
        await bob.close()
