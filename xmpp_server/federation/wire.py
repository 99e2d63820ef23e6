"""RFC 6120 §4.8.3: stanzas are jabber:client inside the server, another namespace on the wire.

Every module works with ``{jabber:client}`` tags. Between servers the stream's content
namespace is ``jabber:server`` (RFC 6120 §4.8.3), with components ``jabber:component:accept``
(XEP-0114). A stanza read from such a stream is rebuilt in jabber:client: the stanza and the
descendants that inherit the stream's namespace (body, subject, error, show...). Payloads in
other namespaces are copied as they are, including a jabber:client message forwarded inside
one of them (XEP-0297). Written stanzas get the stream's namespace back the same way.
"""

from __future__ import annotations

from copy import deepcopy

from lxml import etree

from xmpp_server import namespaces as ns

_CLIENT = "{" + ns.CLIENT + "}"


def to_client(el: etree._Element, wire_ns: str) -> etree._Element:
    """The jabber:client form of a stanza read from a stream whose namespace is ``wire_ns``."""
    return _rebuild(el, "{" + wire_ns + "}", ns.CLIENT)


def wire_bytes(el: etree._Element, wire_ns: str) -> bytes:
    """Serialise a jabber:client stanza for a stream whose content namespace is ``wire_ns``."""
    data = etree.tostring(el)
    tag = el.tag
    if isinstance(tag, str) and tag.startswith(_CLIENT):
        # The usual shape: the stanza declares jabber:client as its default namespace and its
        # jabber:client children inherit it. Without the declaration they inherit the
        # stream's namespace instead; deeper jabber:client elements under a payload in another
        # namespace declare it again themselves, so they stay jabber:client.
        name = tag[len(_CLIENT):].encode()
        head = b"<" + name + b' xmlns="' + ns.CLIENT.encode() + b'"'
        if data.startswith(head):
            return b"<" + name + data[len(head):]
    return etree.tostring(_rebuild(el, _CLIENT, wire_ns))


def _rebuild(el: etree._Element, old: str, new_uri: str) -> etree._Element:
    new = "{" + new_uri + "}"
    tag = el.tag
    assert isinstance(tag, str)
    local = tag[len(old):] if tag.startswith(old) else tag.rpartition("}")[2]
    out = etree.Element(new + local, nsmap={None: new_uri})
    _fill(out, el, old, new)
    return out


def _fill(out: etree._Element, el: etree._Element, old: str, new: str) -> None:
    for key, value in el.attrib.items():
        out.set(key, value)
    out.text = el.text
    for child in el:
        tag = child.tag
        if isinstance(tag, str) and tag.startswith(old):
            copy = etree.SubElement(out, new + tag[len(old):])
            _fill(copy, child, old, new)
        else:
            copy = deepcopy(child)
            out.append(copy)
        copy.tail = child.tail
