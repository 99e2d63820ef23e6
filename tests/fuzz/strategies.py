"""Hypothesis strategies shared by the properties: XML text, stanzas, streams and splits."""

from __future__ import annotations

import itertools

from hypothesis import strategies as st
from lxml import etree

CLIENT = "jabber:client"
STREAM_NS = "http://etherx.jabber.org/streams"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
HEADER = (f"<?xml version='1.0'?><stream:stream xmlns='{CLIENT}' xmlns:stream='{STREAM_NS}' "
          "to='localhost' version='1.0'>").encode()
FOOTER = b"</stream:stream>"

# XML 1.0 characters (§2.2) minus CR, which XML end-of-line handling turns into LF.
xml_chars = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"),
                          exclude_characters="\ufffe\uffff") | st.sampled_from("\t\n <>&'\"")
xml_text = st.text(xml_chars, max_size=12)
whitespace = st.text(st.sampled_from(" \t\n"), max_size=3)

_CHILD_NS = st.sampled_from([None, "urn:example:a", "jabber:x:data", "urn:xmpp:sid:0"])
_ATTR_NAMES = st.sampled_from(["to", "from", "type", "id", "a", "ver", XML_LANG])


def _set_attrs(el: etree._Element, attrs: dict[str, str]) -> None:
    for name, value in attrs.items():
        el.set(name, value)


@st.composite
def children(draw: st.DrawFn, depth: int = 0) -> etree._Element:
    ns = draw(_CHILD_NS)
    name = draw(st.sampled_from(["body", "x", "item", "query", "thread", "e"]))
    el = etree.Element(f"{{{ns}}}{name}" if ns else f"{{{CLIENT}}}{name}")
    _set_attrs(el, draw(st.dictionaries(_ATTR_NAMES, xml_text, max_size=3)))
    el.text = draw(xml_text) or None
    if depth < 2:
        for child in draw(st.lists(children(depth + 1), max_size=2)):
            child.tail = draw(xml_text) or None
            el.append(child)
    return el


@st.composite
def stanzas(draw: st.DrawFn) -> etree._Element:
    el = etree.Element(f"{{{CLIENT}}}" + draw(st.sampled_from(["message", "presence", "iq"])),
                       nsmap={None: CLIENT})
    _set_attrs(el, draw(st.dictionaries(_ATTR_NAMES, xml_text, max_size=4)))
    el.text = draw(xml_text) or None
    for child in draw(st.lists(children(), max_size=3)):
        child.tail = draw(xml_text) or None
        el.append(child)
    return el


def shape(el: etree._Element) -> tuple[object, ...]:
    """What a stanza says, independent of how it was serialised."""
    return (el.tag, sorted(el.attrib.items()), el.text or "",
            [(*shape(c), c.tail or "") for c in el if isinstance(c.tag, str)])


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(max(c, 0), len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]



@st.composite
def chunkings(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` cut at arbitrary points (single bytes and whitespace runs included)."""
    cuts = draw(st.lists(st.integers(min_value=0, max_value=len(data)), max_size=24))
    return split(data, cuts)
