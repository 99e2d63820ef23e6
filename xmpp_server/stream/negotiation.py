"""Client stream negotiation (RFC 6120 §4.3, §5, §6, §7): header, features, STARTTLS, SASL, bind.

Everything a client sends before its resource is bound comes here; afterwards stanzas go to the
router. Features offered after authentication come from ``host.stream_features`` providers.
Beside RFC 6120 SASL (``sasl.py``) the stream offers XEP-0388 SASL2 (``sasl2.py``, with
XEP-0386 Bind 2 and XEP-0484 FAST) unless ``c2s.sasl2`` is off.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from lxml import etree

from xmpp_server import namespaces as ns
from xmpp_server.errors import JIDError, StanzaError, StreamError
from xmpp_server.jid import prep_resourcepart
from xmpp_server.stanza import Stanza, element, error_reply, iq_result, sub
from xmpp_server.stream import mechanisms, sasl, sasl2
from xmpp_server.stream.parser import StreamHeader

if TYPE_CHECKING:
    from xmpp_server.stream.session import Session

log = logging.getLogger(__name__)

FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
_TLS = "{" + ns.TLS + "}"
_SASL = "{" + ns.SASL + "}"
_SASL2 = "{" + ns.SASL2 + "}"
_IQ = "{" + ns.CLIENT + "}iq"
_BIND = "{" + ns.BIND + "}bind"
_SESSION = "{" + ns.SESSION + "}session"


def stream_header(session: Session, header: StreamHeader) -> None:
    """RFC 6120 §4.7-§4.8: check the initiating header, answer with ours and the features."""
    attrib = header.attrib
    framed = session.transport.framed
    expected = f"{{{FRAMING}}}open" if framed else f"{{{ns.STREAM}}}stream"
    to = attrib.get("to", "").lower().rstrip(".") or session.host.domain
    session.open_stream(to=attrib.get("from"))
    if header.tag != expected:
        raise StreamError("invalid-namespace", "expected a stream header")
    if not framed and header.default_ns != ns.CLIENT:
        raise StreamError("invalid-namespace", "the content namespace must be jabber:client")
    if to != session.host.domain:
        raise StreamError("host-unknown", f"this server does not serve {to}")
    version = attrib.get("version", "0.9")
    if not version.startswith("1."):
        raise StreamError("unsupported-version", "XMPP 1.0 streams only")
    session.lang = attrib.get("{" + ns.XML + "}lang", "en")
    session.send_features(features(session))


def features(session: Session) -> etree._Element:
    host = session.host
    feats = etree.Element(f"{{{ns.STREAM}}}features", nsmap={None: ns.STREAM})
    transport = session.transport
    tls_required = host.config.c2s.require_tls and not transport.secure
    if session.username is None:
        if not transport.secure and transport.can_starttls:
            starttls = etree.SubElement(feats, _TLS + "starttls", nsmap={None: ns.TLS})
            if host.config.c2s.require_tls:
                etree.SubElement(starttls, _TLS + "required")
        if tls_required:
            return feats  # RFC 6120 §5.3.1: TLS first, nothing else is offered
        mechs = etree.SubElement(feats, _SASL + "mechanisms", nsmap={None: ns.SASL})
        for name in mechanisms.offered(session):
            etree.SubElement(mechs, _SASL + "mechanism").text = name
        if host.config.c2s.sasl2:
            sasl2.advertise(session, feats)
        bindings = mechanisms.channel_bindings(session)
        if bindings:
            # XEP-0440: the channel-binding types the server supports
            cb = etree.SubElement(
                feats, f"{{{ns.CHANNEL_BINDING}}}sasl-channel-binding",
                nsmap={None: ns.CHANNEL_BINDING},
            )
            for kind in bindings:
                etree.SubElement(cb, f"{{{ns.CHANNEL_BINDING}}}channel-binding", type=kind)
    elif session.jid is None:
        etree.SubElement(feats, _BIND, nsmap={None: ns.BIND})
        sess = etree.SubElement(feats, _SESSION, nsmap={None: ns.SESSION})
        etree.SubElement(sess, "{" + ns.SESSION + "}optional")
    for provider in host.stream_features:
        provider(session, feats)
    return feats


async def handle_element(session: Session, el: etree._Element) -> None:
    """A top-level element that is not a stanza of a bound session."""
    tag = el.tag
    if not isinstance(tag, str):
        return
    if tag.startswith(_TLS):
        await _starttls(session, el)
    elif tag.startswith(_SASL):
        await sasl.handle(session, el)
    elif tag.startswith(_SASL2) and session.host.config.c2s.sasl2:
        await sasl2.handle(session, el, features)
    elif tag == f"{{{FRAMING}}}open":
        stream_header(session, StreamHeader(tag, dict(el.attrib), None))
    elif tag == f"{{{FRAMING}}}close":
        session.close()
    elif tag == _IQ:
        await _iq(session, el)
    elif await session.host.events.fire("stream-element/" + tag, (session, el)):
        return
    elif session.username is None or (session.jid is None
                                      and tag.startswith("{" + ns.CLIENT + "}")):
        raise StreamError("not-authorized", "authenticate and bind a resource first")
    else:
        raise StreamError("unsupported-stanza-type", tag)


async def _starttls(session: Session, el: etree._Element) -> None:
    transport = session.transport
    if el.tag != _TLS + "starttls" or transport.secure or not transport.can_starttls:
        session.send_bytes(f"<failure xmlns='{ns.TLS}'/>".encode())
        session.close()
        return
    session.send_bytes(f"<proceed xmlns='{ns.TLS}'/>".encode())
    # RFC 6120 §5.4.3.3: after the handshake both sides start a new stream.
    session.parser.reset()
    session.header_sent = False
    await transport.starttls()


async def _iq(session: Session, el: etree._Element) -> None:
    stanza = Stanza(el, "iq", None, None, session)
    child = stanza.child
    try:
        if session.username is None:
            if child is None or el.get("type") not in ("get", "set"):
                raise StanzaError("not-authorized")
            # XEP-0077 in-band registration happens before authentication.
            if not await session.host.events.fire("preauth-iq/" + child.tag, stanza):
                raise StreamError("not-authorized", "authenticate first")
        elif child is not None and child.tag == _BIND and el.get("type") == "set":
            await _bind(session, stanza, child)
        elif child is not None and child.tag == _SESSION and el.get("type") == "set":
            session.send(iq_result(stanza))  # RFC 3921 §3 (``legacy_session.py`` after bind)
        else:
            raise StreamError("not-authorized", "bind a resource first")
    except StanzaError as exc:
        session.send(error_reply(stanza, exc))


async def _bind(session: Session, stanza: Stanza, bind: etree._Element) -> None:
    """RFC 6120 §7: bind the requested resource, or one the server makes up."""
    requested = bind.findtext("{" + ns.BIND + "}resource")
    resource = None
    if requested and requested.strip():
        try:
            resource = prep_resourcepart(requested)
        except JIDError:
            raise StanzaError("bad-request", "invalid resource") from None
    host = session.host
    assert session.username is not None
    session.jid = host.sessions.bind(session, session.username, resource)
    result = element("{" + ns.BIND + "}bind")
    sub(result, "jid", str(session.jid))
    session.send(iq_result(stanza, result))
    await host.events.fire("session-bound", session)
