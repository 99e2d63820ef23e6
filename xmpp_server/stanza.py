"""The routing context of one stanza, and builders for replies."""

from __future__ import annotations

from copy import deepcopy
from typing import TYPE_CHECKING, Any

from lxml import etree

from xmpp_server import namespaces as ns
from xmpp_server.errors import StanzaError
from xmpp_server.jid import JID

if TYPE_CHECKING:
    from xmpp_server.stream.session import Session

_C = "{" + ns.CLIENT + "}"
KINDS = {_C + "message": "message", _C + "presence": "presence", _C + "iq": "iq"}
NSMAP = {None: ns.CLIENT}


class Stanza:
    """A stanza being routed: its element, kind, type, parsed addresses and origin session."""

    __slots__ = ("el", "frm", "id", "kind", "origin", "to", "type")

    def __init__(
        self,
        el: etree._Element,
        kind: str,
        frm: JID | None,
        to: JID | None,
        origin: Session | None = None,
    ) -> None:
        self.el = el
        self.kind = kind
        self.type = el.get("type")
        self.id = el.get("id")
        self.frm = frm
        self.to = to
        self.origin = origin

    @property
    def child(self) -> etree._Element | None:
        """The first payload element (the query of an IQ)."""
        for child in self.el:
            if isinstance(child.tag, str):
                return child
        return None

    def __repr__(self) -> str:
        return f"<Stanza {self.kind} type={self.type} id={self.id} from={self.frm} to={self.to}>"


def element(tag: str, attrib: dict[str, str] | None = None, **kw: Any) -> etree._Element:
    """A ``jabber:client`` element (``tag`` without namespace) or a namespaced one ({ns}tag)."""
    if tag[0] == "{":
        uri = tag[1 : tag.index("}")]
        el = etree.Element(tag, attrib, nsmap={None: uri})
    else:
        el = etree.Element(_C + tag, attrib, nsmap=NSMAP)
    for key, value in kw.items():
        if value is not None:
            el.set(key.rstrip("_"), str(value))
    return el


def sub(parent: etree._Element, tag: str, text: str | None = None, **kw: Any) -> etree._Element:
    """A child element; ``tag`` is ``{ns}name`` or a plain name in the parent's namespace.

    A child in another namespace declares it as its default (no generated prefixes).
    """
    parent_tag = parent.tag
    parent_uri = parent_tag[1 : parent_tag.index("}")] if parent_tag[0] == "{" else None
    if tag[0] != "{":
        tag = f"{{{parent_uri}}}{tag}" if parent_uri else tag
        child = etree.SubElement(parent, tag)
    else:
        uri = tag[1 : tag.index("}")]
        nsmap = None if uri == parent_uri else {None: uri}
        child = etree.SubElement(parent, tag, nsmap=nsmap)
    for key, value in kw.items():
        if value is not None:
            child.set(key.rstrip("_"), str(value))
    if text is not None:
        child.text = text
    return child


def iq_result(stanza: Stanza, payload: etree._Element | None = None) -> etree._Element:
    """RFC 6120 §8.2.3: the result of a get or set, addressed back to the requester."""
    el = element("iq", type="result", id=stanza.id)
    if stanza.frm is not None:
        el.set("to", str(stanza.frm))
    if stanza.to is not None:
        el.set("from", str(stanza.to))
    if payload is not None:
        el.append(payload)
    return el


def error_reply(stanza: Stanza, error: StanzaError, by: str | None = None) -> etree._Element:
    """RFC 6120 §8.3.1: the error reply keeps the original payload, swaps the addresses."""
    el = etree.Element(stanza.el.tag, nsmap=NSMAP)
    el.set("type", "error")
    if stanza.id is not None:
        el.set("id", stanza.id)
    if stanza.frm is not None:
        el.set("to", str(stanza.frm))
    if stanza.to is not None:
        el.set("from", str(stanza.to))
    # Echo the request payload for IQs (helps clients); other kinds keep it too (§8.3.1).
    for child in stanza.el:
        if isinstance(child.tag, str) and child.tag != _C + "error":
            el.append(deepcopy(child))
    el.append(error.to_element(by))
    return el
