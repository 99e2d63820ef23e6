"""XEP-0388: Extensible SASL Profile (SASL2) — the SASL1 mechanisms, a richer framing, no restart.

==============================  ==========================================================
client sends                    server does
==============================  ==========================================================
<authenticate mechanism>        starts the mechanism (``mechanisms.py``, or FAST's HT-*,
  <initial-response/>           ``fast.py``) with the initial response; <user-agent id/>
  <user-agent/> <bind/> ...     names the client (§2.3)
<response/>                     the next step: <challenge/>, <success/> or <failure/>
<abort/>                        <failure><aborted/></failure>
==============================  ==========================================================

<success/> carries the mechanism's last data (<additional-data/>, e.g. SCRAM's server-final)
and the <authorization-identifier/>: the full JID once Bind 2 (``bind2.py``) bound a resource,
else the bare JID; new stream features follow at once, on the same stream (§2.6.1).
<failure/> holds the RFC 6120 §6.5 condition and a text. Throttling (``auth_throttle.py``),
unknown accounts and the limit of attempts per stream are those of SASL1 (``sasl.py``). A second
<authenticate/> after success is a stream error (§3.8).

Extensions inside <authenticate/>, in the order they are processed once authenticated:
FAST's <request-token/> (a token for <success/>; storage first, as no I/O may come later);
any other child fires ``sasl2-inline/{ns}name`` with ``(login, element)`` (stream management's
<resume/> does, and may replace ``login.session`` by the resumed one); then Bind 2's <bind/>,
unless a session was resumed. Modules announce such extensions by appending to
<authentication><inline/> (``inline(features)``) from their stream-features provider.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lxml import etree

from xmpp_server import namespaces as ns
from xmpp_server.auth_throttle import stream_refusals
from xmpp_server.errors import StreamError
from xmpp_server.stanza import element, sub
from xmpp_server.stream import bind2, fast, mechanisms
from xmpp_server.stream.mechanisms import SaslMechanism, Step
from xmpp_server.stream.sasl import SASL2_PENDING

if TYPE_CHECKING:
    from xmpp_server.stream.session import Session

log = logging.getLogger(__name__)

_S = "{" + ns.SASL2 + "}"
_F = "{" + ns.FAST + "}"
_BIND = "{" + ns.BIND2 + "}bind"
# Children of <authenticate/> this module handles itself.
_OWN = frozenset((_S + "initial-response", _S + "user-agent", _S + "supported", _BIND,
                  _F + "fast", _F + "request-token"))
_MAX_ID = 256

FeaturesOf = Callable[["Session"], etree._Element]


@dataclass
class Login:
    """A login that just succeeded, while its <success/> is put together (see the hooks)."""

    session: Session
    success: etree._Element
    client_id: str | None = None  # the <user-agent id/>
    bound: etree._Element | None = None  # Bind 2's <bound/>, once a resource is bound
    after: list[Callable[[], Awaitable[None]]] = field(default_factory=list)  # once sent
    resumed: bool = False  # a stream management session was resumed instead
    ended: bool = False  # a handler ended the stream (a stream error): no <success/>


@dataclass
class _Request:
    el: etree._Element  # the <authenticate/>
    client_id: str | None
    token: str | None  # the mechanism of <request-token/>


def advertise(session: Session, feats: etree._Element) -> None:
    """§2.1: <authentication/> with the mechanisms, and the inline features."""
    auth = etree.SubElement(feats, _S + "authentication", nsmap={None: ns.SASL2})
    for name in mechanisms.offered(session):
        etree.SubElement(auth, _S + "mechanism").text = name
    inline = etree.SubElement(auth, _S + "inline")
    bind2.advertise(inline)
    fast.advertise(session, inline)


def inline(features: etree._Element) -> etree._Element | None:
    """SASL2's <inline/> in stream features being built, for a module to add itself to."""
    return features.find(f"{_S}authentication/{_S}inline")


async def handle(session: Session, el: etree._Element, features_of: FeaturesOf) -> None:
    """``<authenticate/>``, ``<response/>`` and ``<abort/>``."""
    tag = el.tag
    if tag == _S + "authenticate":
        await _authenticate(session, el, features_of)
    elif tag == _S + "response":
        mech, request = session.sasl, session.data.get(SASL2_PENDING)
        if mech is None or not isinstance(request, _Request):
            _failure(session, "malformed-request", "no authentication under way")
            return
        try:
            data = _decode(el.text)
        except ValueError:
            _abandon(session)
            _failure(session, "incorrect-encoding")
            return
        await _finish(session, await mech.step(data or b""), features_of)
    elif tag == _S + "abort":
        _abandon(session)
        _failure(session, "aborted")
    else:
        _failure(session, "malformed-request")


async def _authenticate(session: Session, el: etree._Element, features_of: FeaturesOf) -> None:
    if session.username is not None:
        raise StreamError("policy-violation", "already authenticated")  # §3.8
    _abandon(session)
    if session.host.config.c2s.require_tls and not session.transport.secure:
        _failure(session, "encryption-required")
        return
    attempt = session.host.auth_throttle.open(session.transport.peer_ip,
                                              stream_refusals(session.data))
    agent = el.find(_S + "user-agent")
    client_id = agent.get("id") if agent is not None else None
    if client_id is not None and not 0 < len(client_id) <= _MAX_ID:
        _failure(session, "malformed-request", "the user-agent id is empty or too long")
        return
    name = el.get("mechanism", "")
    fast_el, wanted = el.find(_F + "fast"), el.find(_F + "request-token")
    token = wanted.get("mechanism") if wanted is not None else None
    if fast_el is not None or wanted is not None:
        if not fast.offered(session) or client_id is None:
            _failure(session, "malformed-request",
                     "FAST needs an encrypted stream and a <user-agent/> with an id")
            return
        if wanted is not None and token not in fast.offered(session):
            _failure(session, "malformed-request", "no such FAST mechanism")
            return
    initial = el.find(_S + "initial-response")
    try:
        data = None if initial is None else _decode(initial.text)
    except ValueError:
        _failure(session, "incorrect-encoding")
        return
    mech: SaslMechanism | None
    try:
        if fast_el is not None:
            assert client_id is not None
            mech = fast.make(session, name, attempt, client_id, fast_el)
        else:
            mech = mechanisms.make(session, name, attempt)
    except ValueError as exc:
        _failure(session, "malformed-request", str(exc))
        return
    if mech is None:
        _failure(session, "invalid-mechanism")
        return
    if agent is not None:
        log.debug("SASL2 from %s: %s on %s", session.transport.peer_ip,
                  agent.findtext(_S + "software"), agent.findtext(_S + "device"))
    session.sasl = mech
    session.data[SASL2_PENDING] = _Request(el, client_id, token)
    await _finish(session, await mech.start(data), features_of)


async def _finish(session: Session, step: Step, features_of: FeaturesOf) -> None:
    if step.kind == "challenge":
        data = base64.b64encode(step.data or b"").decode()
        session.send_nonza(f"<challenge xmlns='{ns.SASL2}'>{data}</challenge>".encode())
        return
    mech, request = session.sasl, session.data.get(SASL2_PENDING)
    _abandon(session)
    if step.kind != "success":
        _failure(session, step.condition, step.text)
        return
    assert mech is not None and isinstance(request, _Request) and step.username is not None
    await _succeed(session, request, mech, step, features_of)


async def _succeed(session: Session, request: _Request, mech: SaslMechanism, step: Step,
                   features_of: FeaturesOf) -> None:
    host = session.host
    username = step.username
    assert username is not None
    session.username = username
    success = element(_S + "success")
    if step.data is not None:
        sub(success, "additional-data", base64.b64encode(step.data).decode())
    identifier = sub(success, "authorization-identifier")
    login = Login(session, success, request.client_id)
    # Everything that waits on storage comes first: from the binding to the <success/>,
    # nothing may let a stanza for the new JID get out ahead.
    token = await fast.grant(session, username, request.client_id, request.token, mech)
    for child in request.el:
        if isinstance(child.tag, str) and child.tag not in _OWN:
            await host.events.fire("sasl2-inline/" + child.tag, (login, child))
    session = login.session  # the resumed session, if one was
    if session.closed or login.ended:
        return
    if request.client_id is not None:
        session.data[bind2.CLIENT_ID] = request.client_id
    bind = request.el.find(_BIND)
    if bind is not None and not login.resumed:
        await bind2.bind(login, bind)
    if token is not None:
        success.append(token)
    identifier.text = str(session.jid) if session.jid else f"{username}@{host.domain}"
    session.send_nonza(etree.tostring(success))
    session.send_features(features_of(session))  # §2.6.1: no stream restart
    for action in login.after:
        await action()
    if not login.resumed:
        await host.events.fire("authenticated", session)
    if login.bound is not None:
        await host.events.fire("session-bound", session)


def _abandon(session: Session) -> None:
    session.sasl = None
    session.data.pop(SASL2_PENDING, None)


def _decode(text: str | None) -> bytes:
    """§2.2: base64 without the RFC 6120 "=" special case; empty is an empty string."""
    try:
        return base64.b64decode((text or "").strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("bad base64") from None


def _failure(session: Session, condition: str, text: str | None = None) -> None:
    """§2.6.2: an RFC 6120 §6.5 condition (in its namespace) and maybe a text."""
    failure = element(_S + "failure")
    sub(failure, f"{{{ns.SASL}}}{condition}")
    if text:
        sub(failure, "text", text).set(f"{{{ns.XML}}}lang", "en")
    session.send_nonza(etree.tostring(failure))
    mechanisms.count_failure(session)
