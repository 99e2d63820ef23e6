"""jabber:client inside, jabber:server (or jabber:component:accept) on the wire."""

from __future__ import annotations

from lxml import etree

from xmpp_server.federation.wire import to_client, wire_bytes

SERVER_STREAM = (b"<stream:stream xmlns='jabber:server' "
                 b"xmlns:stream='http://etherx.jabber.org/streams'>")


def _in_stream(data: bytes) -> etree._Element:
    """Parse a stanza as a peer would: inside a stream whose default namespace is ours."""
    root = etree.fromstring(SERVER_STREAM + data + b"</stream:stream>")
    return root[0]


def test_stanza_children_take_the_stream_namespace_and_payloads_stay():
    el = etree.fromstring(
        b"<message xmlns='jabber:client' to='b@b.test' type='chat'><body>hi</body>"
        b"<x xmlns='urn:example'><message xmlns='jabber:client'><body>inner</body></message>"
        b"</x></message>")
    data = wire_bytes(el, "jabber:server")
    assert data.startswith(b"<message to=")
    parsed = _in_stream(data)
    assert parsed.tag == "{jabber:server}message"
    assert parsed.findtext("{jabber:server}body") == "hi"
    assert parsed.findtext("{urn:example}x/{jabber:client}message/{jabber:client}body") \
        == "inner"
    back = to_client(parsed, "jabber:server")
    assert back.tag == "{jabber:client}message" and back.get("type") == "chat"
    assert back.findtext("{jabber:client}body") == "hi"
    assert back.findtext("{urn:example}x/{jabber:client}message/{jabber:client}body") \
        == "inner"
    assert etree.tostring(back).startswith(b'<message xmlns="jabber:client"')


def test_unusual_shapes_are_rebuilt():
    el = etree.fromstring(b"<c:iq xmlns:c='jabber:client' type='get' id='1' xml:lang='de'>"
                          b"<c:error/><q xmlns='urn:q'>text<i/>tail</q></c:iq>")
    parsed = _in_stream(wire_bytes(el, "jabber:server"))
    assert parsed.tag == "{jabber:server}iq" and parsed.get("id") == "1"
    assert parsed.get("{http://www.w3.org/XML/1998/namespace}lang") == "de"
    assert parsed.find("{jabber:server}error") is not None
    q = parsed.find("{urn:q}q")
    assert q.text == "text" and q[0].tail == "tail"


def test_component_namespace():
    el = etree.fromstring(b"<presence xmlns='jabber:component:accept' from='bot.x' to='a@x'>"
                          b"<status>ok</status></presence>")
    client = to_client(el, "jabber:component:accept")
    assert client.findtext("{jabber:client}status") == "ok"
