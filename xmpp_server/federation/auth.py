"""XEP-0178: SASL EXTERNAL between servers, with the certificates of the TLS layer.

The receiving server offers EXTERNAL only when the initiating server's certificate validates
for the domain in its stream header (``certs.Validator``); the initiating server uses it when
offered, naming its domain as authorization identity (or nothing: "=", §3 step 6). After
<success/> both sides restart the stream (RFC 6120 §6.4.6). A refused EXTERNAL is not fatal:
the initiating server may still use dialback on the same stream (XEP-0220 with XEP-0344).
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import TYPE_CHECKING

from lxml import etree

from xmpp_server import namespaces as ns
from xmpp_server.federation.stream import domain_of

if TYPE_CHECKING:
    from xmpp_server.federation.s2s_in import IncomingStream
    from xmpp_server.federation.s2s_out import OutgoingStream

log = logging.getLogger(__name__)

SASL = "{" + ns.SASL + "}"
MECHANISMS = SASL + "mechanisms"


def offer(stream: IncomingStream, features: etree._Element) -> None:
    """§3 step 4: EXTERNAL is offered when the peer's certificate is valid for its domain."""
    if stream.remote and stream.cert_valid_for(stream.remote):
        mechs = etree.SubElement(features, MECHANISMS, nsmap={None: ns.SASL})
        etree.SubElement(mechs, SASL + "mechanism").text = "EXTERNAL"


def _reply(name: str, condition: str | None = None) -> bytes:
    el = etree.Element(SASL + name, nsmap={None: ns.SASL})
    if condition is not None:
        etree.SubElement(el, SASL + condition)
    return etree.tostring(el)


def incoming(stream: IncomingStream, el: etree._Element) -> None:
    """An <auth/> from the initiating server (XEP-0178 §3 steps 6-8)."""
    if el.tag != SASL + "auth":
        stream.write(_reply("failure", "aborted"))
        return
    if stream.is_authenticated or el.get("mechanism") != "EXTERNAL":
        stream.write(_reply("failure", "invalid-mechanism"))
        return
    text = (el.text or "").strip()
    if text in ("", "="):
        authzid = stream.remote
    else:
        try:
            authzid = domain_of(base64.b64decode(text, validate=True).decode())
        except (binascii.Error, UnicodeDecodeError):
            stream.write(_reply("failure", "incorrect-encoding"))
            return
    if not authzid or (stream.remote and authzid != stream.remote):
        stream.write(_reply("failure", "invalid-authzid"))
        return
    federation = stream.federation
    if (federation.serves(authzid) or federation.limits.blocked(authzid)
            or not stream.cert_valid_for(authzid)):
        stream.write(_reply("failure", "not-authorized"))
        return
    if not federation.limits.admit(stream, authzid):
        stream.write(_reply("failure", "temporary-auth-failure"))
        return
    log.info("s2s: %s authenticated as %s by certificate", stream.transport.peer_ip, authzid)
    stream.write(_reply("success"))
    stream.remote = authzid
    stream.restart()
    stream.sasl_done = True
    stream.authenticated_pair(authzid, stream.local, "EXTERNAL")


def start(stream: OutgoingStream) -> None:
    """§3 step 6: authenticate with our certificate, as our domain."""
    stream.write(
        f"<auth xmlns='{ns.SASL}' mechanism='EXTERNAL'>"
        f"{base64.b64encode(stream.local.encode()).decode()}</auth>".encode())


def offered(features: etree._Element) -> bool:
    mechs = features.find(MECHANISMS)
    return mechs is not None and any(
        (m.text or "").strip().upper() == "EXTERNAL" for m in mechs.iter(SASL + "mechanism"))
