"""SASL authentication (RFC 6120 §6): the <auth/>, <challenge/>, <response/> framing.

The mechanisms themselves (SCRAM-SHA-1/256 +PLUS, PLAIN), the offered list and channel bindings
live in ``mechanisms.py``, shared with the XEP-0388 SASL2 framing (``sasl2.py``); each <auth/>
opens an attempt with the login throttle (``auth_throttle.py``), which the mechanism books.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from lxml import etree

from xmpp_server import namespaces as ns
from xmpp_server.auth_throttle import stream_refusals
from xmpp_server.stream import mechanisms
from xmpp_server.stream.mechanisms import SaslMechanism, Step

__all__ = ["SaslMechanism", "handle"]  # SaslMechanism: the session's type

if TYPE_CHECKING:
    from xmpp_server.stream.session import Session

_SASL = "{" + ns.SASL + "}"
SASL2_PENDING = "sasl2"  # session.data key of a SASL2 exchange under way (``sasl2.py``)


async def handle(session: Session, el: etree._Element) -> None:
    """``<auth/>``, ``<response/>`` and ``<abort/>`` (RFC 6120 §6.4)."""
    tag = el.tag[len(_SASL):]
    host = session.host
    if session.username is not None:
        _failure(session, "malformed-request", "already authenticated")
        return
    if tag == "abort":
        session.sasl = None
        _failure(session, "aborted")
        return
    try:
        payload = _decode(el.text)
    except ValueError:
        session.sasl = None
        _failure(session, "incorrect-encoding")
        return
    if tag == "auth":
        if host.config.c2s.require_tls and not session.transport.secure:
            _failure(session, "encryption-required")
            return
        session.data.pop(SASL2_PENDING, None)  # a SASL2 exchange under way is abandoned
        attempt = host.auth_throttle.open(session.transport.peer_ip,
                                          stream_refusals(session.data))
        mech = mechanisms.make(session, el.get("mechanism", ""), attempt)
        if mech is None:
            _failure(session, "invalid-mechanism")
            return
        session.sasl = mech
        step = await mech.start(payload)
    elif tag == "response" and session.sasl is not None and SASL2_PENDING not in session.data:
        step = await session.sasl.step(payload or b"")
    else:
        _failure(session, "malformed-request")
        return
    await _finish(session, step)


async def _finish(session: Session, step: Step) -> None:
    host = session.host
    if step.kind == "challenge":
        data = base64.b64encode(step.data).decode() if step.data else ""
        session.send_bytes(f"<challenge xmlns='{ns.SASL}'>{data}</challenge>".encode())
        return
    session.sasl = None
    if step.kind == "success":
        assert step.username is not None
        session.username = step.username
        data = base64.b64encode(step.data).decode() if step.data else ""
        # RFC 6120 §6.4.6: a new stream follows success.
        session.parser.reset()
        session.header_sent = False
        session.send_bytes(f"<success xmlns='{ns.SASL}'>{data}</success>".encode())
        await host.events.fire("authenticated", session)
        return
    _failure(session, step.condition, step.text)


def _decode(text: str | None) -> bytes | None:
    """RFC 6120 §6.4.2: no text is no initial response; "=" is an empty one."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    if text == "=":
        return b""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("bad base64") from None


def _failure(session: Session, condition: str, text: str | None = None) -> None:
    body = f"<{condition}/>"
    if text:
        body += f"<text xml:lang='en'>{_escape(text)}</text>"
    session.send_bytes(f"<failure xmlns='{ns.SASL}'>{body}</failure>".encode())
    mechanisms.count_failure(session)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
