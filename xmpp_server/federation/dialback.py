"""XEP-0220: Server Dialback, with keys per XEP-0185.

Roles for a stream from the Originating server O to the Receiving server R:

- O (``start``, ``answer_on_outgoing``): sends ``<db:result from=O to=R>key</db:result>``
  and learns the outcome from R's ``<db:result type=.../>``.
- R (``result_request``): asks the Authoritative server of O, over a connection R opens
  itself (``Federation.verify``), whether the key is O's: ``<db:verify id=stream-id>``. When
  O's certificate already validates for O, R answers at once (XEP-0344 §2.4).
- The Authoritative server (``verify_request``): recomputes the key and answers valid or
  invalid. Keys are HMAC-SHA256(SHA256(secret), "R O stream-id") in hex (XEP-0185 §2).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import TYPE_CHECKING

from lxml import etree

from xmpp_server import namespaces as ns
from xmpp_server.errors import StreamError, condition_of
from xmpp_server.federation.stream import ServerStream, domain_of

if TYPE_CHECKING:
    from xmpp_server.federation.s2s_in import IncomingStream
    from xmpp_server.federation.s2s_out import OutgoingStream

log = logging.getLogger(__name__)

DB = "{" + ns.DIALBACK + "}"
RESULT = DB + "result"
VERIFY = DB + "verify"
_NSMAP = {"db": ns.DIALBACK}


def hashed_secret(secret: str) -> bytes:
    """XEP-0185 §2: the HMAC key is SHA256(secret), in hex as most servers use it."""
    return hashlib.sha256(secret.encode()).hexdigest().encode()


def make_key(hashed: bytes, receiving: str, originating: str, stream_id: str) -> str:
    message = f"{receiving} {originating} {stream_id}".encode()
    return hmac.new(hashed, message, hashlib.sha256).hexdigest()


def check_key(hashed: bytes, receiving: str, originating: str, stream_id: str,
              key: str) -> bool:
    return hmac.compare_digest(make_key(hashed, receiving, originating, stream_id).encode(),
                               key.strip().encode())


def element(tag: str, frm: str, to: str, text: str | None = None, **attrs: str) -> bytes:
    el = etree.Element(tag, nsmap=_NSMAP)
    el.set("from", frm)
    el.set("to", to)
    for key, value in attrs.items():
        el.set(key.rstrip("_"), value)
    el.text = text
    return etree.tostring(el)


def error_result(frm: str, to: str, condition: str, type_: str = "cancel") -> bytes:
    """XEP-0220 §2.4: a dialback error (peers that advertised <errors/> understand it)."""
    el = etree.Element(RESULT, nsmap=_NSMAP)
    el.set("from", frm)
    el.set("to", to)
    el.set("type", "error")
    err = etree.SubElement(el, DB + "error", type=type_)
    etree.SubElement(err, "{" + ns.STANZAS_ERR + "}" + condition, nsmap={None: ns.STANZAS_ERR})
    return etree.tostring(el)


# -- the Originating server ---------------------------------------------------------------------


def start(stream: OutgoingStream) -> None:
    """§2.1.1: our key for this stream, sent to the Receiving server."""
    key = make_key(stream.federation.dialback_key, stream.remote, stream.local, stream.stream_id)
    stream.write(element(RESULT, stream.local, stream.remote, key))


def answer_on_outgoing(stream: OutgoingStream, el: etree._Element) -> None:
    """§2.1.3-§2.1.4, §2.4: the Receiving server's verdict on our key."""
    if el.tag == VERIFY:
        if el.get("type") is None:
            verify_request(stream, el)  # asked over a bidirectional stream (XEP-0288)
        else:
            stream.link.verify_answered(el.get("id") or "", el.get("type") or "invalid")
        return
    if domain_of(el.get("from")) != stream.remote or domain_of(el.get("to")) != stream.local:
        raise StreamError("invalid-from", "dialback result for another domain pair")
    type_ = el.get("type")
    if type_ == "valid":
        stream.authenticated_by("dialback")
    elif type_ == "error":
        condition = condition_of(el)
        stream.fail("remote-server-not-found", f"dialback error: {condition}", retry=False)
    else:
        stream.fail("remote-server-not-found", "dialback key refused", retry=False)


# -- the Receiving server -----------------------------------------------------------------------


async def result_request(stream: IncomingStream, el: etree._Element) -> None:
    """§2.1.2: a peer claims a domain with a key; verify it, then answer on this stream."""
    if el.get("type") is not None:
        return  # a verdict only makes sense on a stream we opened
    remote, local, key = domain_of(el.get("from")), domain_of(el.get("to")), (el.text or "")
    if not remote or not local or not key.strip():
        raise StreamError("improper-addressing", "dialback needs from, to and a key")
    federation = stream.federation
    if not federation.serves(local):
        raise StreamError("host-unknown", f"this server does not serve {local}")
    if federation.serves(remote):
        raise StreamError("invalid-from", "that is one of our own domains")
    if federation.limits.blocked(remote):
        stream.write(error_result(local, remote, "policy-violation"))
        return
    if stream.cert_valid_for(remote):
        # XEP-0344 §2.4: the certificate already proves the domain, no need to ask.
        _answer(stream, local, remote, "valid", "dialback+certificate")
    elif not federation.config.dialback or federation.config.require_valid_certs:
        _answer(stream, local, remote, "invalid", "dialback")
    else:
        stream.host.spawn(_verify_and_answer(stream, local, remote, key),
                          name=f"dialback-{remote}")


async def _verify_and_answer(stream: IncomingStream, local: str, remote: str, key: str) -> None:
    try:
        verdict = await stream.federation.verify(local, remote, stream.stream_id, key)
    except Exception as exc:  # the Authoritative server could not be asked
        log.info("dialback verification of %s failed: %s", remote, exc)
        if not stream.closed:
            stream.write(error_result(local, remote, "remote-connection-failed"))
        return
    if not stream.closed:
        _answer(stream, local, remote, verdict, "dialback")


def _answer(stream: IncomingStream, local: str, remote: str, verdict: str, method: str) -> None:
    if verdict == "valid" and not stream.federation.limits.admit(stream, remote):
        stream.write(error_result(local, remote, "resource-constraint", "wait"))
        return  # s2s.max_connections_per_domain authenticated streams already
    stream.write(element(RESULT, local, remote, type_=verdict))
    if verdict == "valid":
        stream.authenticated_pair(remote, local, method)
    else:
        log.info("dialback: %s failed to prove it is %s", stream.transport.peer_ip, remote)
        stream.stream_error("not-authorized", f"dialback for {remote} failed")


# -- the Authoritative server -------------------------------------------------------------------


def verify_request(stream: ServerStream, el: etree._Element) -> None:
    """§2.1.2 (steps 3-4): is this key one we made for that stream?"""
    if el.get("type") is not None:
        return
    receiving, originating = domain_of(el.get("from")), domain_of(el.get("to"))
    stream_id, key = el.get("id") or "", el.text or ""
    federation = stream.federation
    valid = (bool(receiving and stream_id and key) and federation.serves(originating)
             and check_key(federation.dialback_key, receiving, originating, stream_id, key))
    stream.write(element(VERIFY, originating or stream.local, receiving or stream.remote,
                         id=stream_id, type_="valid" if valid else "invalid"))
