"""XEP-0386: Bind 2 — a resource bound, and session features enabled, inside SASL2's login.

The client puts <bind xmlns='urn:xmpp:bind:0'/> in its <authenticate/> (``sasl2.py``); once
authenticated (and unless the login resumed a session) the server binds a resource and
answers with <bound/> in <success/>, whose <authorization-identifier/> is the full JID.

- Resource: the client's <tag/> and a random part, "tag/random" (§3.2.1); the tag is dropped
  if it is not a valid resourcepart. No tag: a random resource.
- §3.2: an earlier session of the same client (the SASL2 <user-agent id/>) is ended with a
  conflict stream error once <success/> is out.
- A bind that fails (too many resources) gives <failed/> with the stanza error, and the
  stream stays authenticated and unbound (RFC 6120 binding remains possible).

Feature modules take part through two hooks, so this core knows none of them:

- advertising: a module's stream-features provider calls ``offer(features, var)`` to list
  ``var`` in <bind><inline/>, so nothing is announced that is not loaded;
- enabling: each child of the client's <bind/> but <tag/> fires ``bind2-inline/{ns}name``
  with ``(login, element)`` (``sasl2.Login``); a handler enables the feature, appends its
  answer (if any) to ``login.bound`` and returns True. Handlers run between the binding and
  <success/> and must not wait on I/O, so that no stanza to the new JID precedes <success/>.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING

from lxml import etree

from xmpp_server import namespaces as ns
from xmpp_server.errors import JIDError, StanzaError
from xmpp_server.jid import prep_resourcepart
from xmpp_server.stanza import sub

if TYPE_CHECKING:
    from xmpp_server.stream.sasl2 import Login
    from xmpp_server.stream.session import Session

log = logging.getLogger(__name__)

_B = "{" + ns.BIND2 + "}"
_INLINE = (f"{{{ns.SASL2}}}authentication/{{{ns.SASL2}}}inline/{_B}bind/{_B}inline")
CLIENT_ID = "client-id"  # session.data: the SASL2 <user-agent id/> of the session's client
_MAX_TAG = 64


def advertise(inline: etree._Element) -> None:
    """§3.1: <bind/> inside SASL2's <inline/>, with an <inline/> for the features."""
    bind = etree.SubElement(inline, _B + "bind", nsmap={None: ns.BIND2})
    etree.SubElement(bind, _B + "inline")


def offer(features: etree._Element, var: str) -> None:
    """For a feature module's stream-features provider: announce ``var`` as enabled inline."""
    inline = features.find(_INLINE)
    if inline is not None:
        etree.SubElement(inline, _B + "feature", var=var)


def resource(tag: str | None) -> str:
    """§3.2.1: "tag/random" for a usable tag, else the random part alone."""
    suffix = secrets.token_urlsafe(9)
    tag = (tag or "").strip()
    if tag and len(tag) <= _MAX_TAG:
        try:
            return prep_resourcepart(f"{tag}/{suffix}")
        except JIDError:
            pass
    return suffix


async def bind(login: Login, request: etree._Element) -> None:
    """Bind a resource for the login's session and enable what the client asked for."""
    session = login.session
    host = session.host
    assert session.username is not None
    try:
        session.jid = host.sessions.bind(session, session.username,
                                         resource(request.findtext(_B + "tag")))
    except StanzaError as exc:
        failed = sub(login.success, _B + "failed")
        failed.append(exc.to_element())
        return
    login.bound = sub(login.success, _B + "bound")
    for child in request:
        if not isinstance(child.tag, str) or child.tag == _B + "tag":
            continue
        if not await host.events.fire("bind2-inline/" + child.tag, (login, child)):
            log.debug("%s asked for %s inline; not supported", session.jid, child.tag)
    if login.client_id is not None:
        client_id = login.client_id

        async def replace_older() -> None:
            _replace_older(session, client_id)

        login.after.append(replace_older)


def _replace_older(session: Session, client_id: str) -> None:
    """§3.2: end the sessions the same client left behind (detached ones too)."""
    assert session.username is not None
    for other in session.host.sessions.of_user(session.username):
        if other is not session and other.data.get(CLIENT_ID) == client_id:
            other.stream_error("conflict", "replaced by a new session of the same client")
