"""Stanza and stream errors (RFC 6120 §4.9 and §8.3).

Handlers raise ``StanzaError("item-not-found")``; the router turns it into the error reply.
A ``StreamError`` closes the stream with the given condition.
"""

from __future__ import annotations

from lxml import etree

from xmpp_server import namespaces as ns

# RFC 6120 §8.3.3: the default error type of each defined condition.
_DEFAULT_TYPES = {
    "bad-request": "modify",
    "conflict": "cancel",
    "feature-not-implemented": "cancel",
    "forbidden": "auth",
    "gone": "cancel",
    "internal-server-error": "cancel",
    "item-not-found": "cancel",
    "jid-malformed": "modify",
    "not-acceptable": "modify",
    "not-allowed": "cancel",
    "not-authorized": "auth",
    "policy-violation": "modify",
    "recipient-unavailable": "wait",
    "redirect": "modify",
    "registration-required": "auth",
    "remote-server-not-found": "cancel",
    "remote-server-timeout": "wait",
    "resource-constraint": "wait",
    "service-unavailable": "cancel",
    "subscription-required": "auth",
    "undefined-condition": "cancel",
    "unexpected-request": "wait",
}


class StanzaError(Exception):
    """An expected failure answered with an RFC 6120 §8.3 error stanza."""

    def __init__(
        self,
        condition: str,
        text: str | None = None,
        type: str | None = None,
        app_element: etree._Element | None = None,
    ) -> None:
        if condition not in _DEFAULT_TYPES:
            raise ValueError(f"unknown stanza error condition {condition!r}")
        super().__init__(f"{condition}: {text}" if text else condition)
        self.condition = condition
        self.text = text
        self.type = type or _DEFAULT_TYPES[condition]
        self.app_element = app_element

    def to_element(self, by: str | None = None) -> etree._Element:
        """The ``<error/>`` child for the reply."""
        err = etree.Element(f"{{{ns.CLIENT}}}error", nsmap={None: ns.CLIENT})
        err.set("type", self.type)
        if by:
            err.set("by", by)
        etree.SubElement(err, f"{{{ns.STANZAS_ERR}}}{self.condition}", nsmap={None: ns.STANZAS_ERR})
        if self.text:
            t = etree.SubElement(err, f"{{{ns.STANZAS_ERR}}}text", nsmap={None: ns.STANZAS_ERR})
            t.set(f"{{{ns.XML}}}lang", "en")
            t.text = self.text
        if self.app_element is not None:
            err.append(self.app_element)
        return err


def condition_of(error: etree._Element) -> str:
    """The defined condition inside a received <error/> (RFC 6120 §8.3.2), the first element
    of the stanza-errors namespace other than <text/>; undefined-condition if none."""
    prefix = "{" + ns.STANZAS_ERR + "}"
    for node in error.iter():
        tag = node.tag
        if isinstance(tag, str) and tag.startswith(prefix) and tag != prefix + "text":
            return tag[len(prefix):]
    return "undefined-condition"


class StreamError(Exception):
    """A condition that ends the stream (RFC 6120 §4.9.3)."""

    def __init__(self, condition: str, text: str | None = None) -> None:
        super().__init__(f"{condition}: {text}" if text else condition)
        self.condition = condition
        self.text = text

    def to_bytes(self) -> bytes:
        text = ""
        if self.text:
            from xml.sax.saxutils import escape

            text = f'<text xmlns="{ns.STREAMS_ERR}">{escape(self.text)}</text>'
        return (
            f'<stream:error><{self.condition} xmlns="{ns.STREAMS_ERR}"/>{text}</stream:error>'
        ).encode()


class JIDError(StanzaError):
    """A JID that fails RFC 7622 preparation or validation."""

    def __init__(self, text: str) -> None:
        super().__init__("jid-malformed", text)
