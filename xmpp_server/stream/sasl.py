"""SASL authentication (RFC 6120 §6): SCRAM-SHA-1/256 (+PLUS, RFC 5802/7677) and PLAIN.

SCRAM (``scram.py``) runs on the salted keys of the account. Channel binding uses
tls-exporter (RFC 9266), tls-server-end-point (RFC 5929) and, on TLS 1.2, tls-unique, announced
per XEP-0440.
PLAIN is offered only on encrypted streams unless ``c2s.require_tls`` is off. Failures are
throttled per IP and per account; unknown accounts fail exactly like wrong passwords.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lxml import etree

from xmpp_server import namespaces as ns
from xmpp_server.errors import JIDError
from xmpp_server.jid import prep_localpart
from xmpp_server.stream import tls
from xmpp_server.stream.scram import ScramError, ScramServer

if TYPE_CHECKING:
    from xmpp_server.host import Host
    from xmpp_server.stream.session import Session

log = logging.getLogger(__name__)

_SASL = "{" + ns.SASL + "}"
MAX_ATTEMPTS = 5  # RFC 6120 §6.4.5: then the stream is closed


@dataclass
class Step:
    """One server step: a challenge, a success (with the account) or a failure."""

    kind: str  # "challenge" | "success" | "failure"
    data: bytes | None = None
    username: str | None = None
    condition: str = "not-authorized"
    text: str | None = None


class SaslMechanism:
    name = ""

    def __init__(self, session: Session) -> None:
        self.session = session

    async def start(self, initial: bytes | None) -> Step:
        raise NotImplementedError

    async def step(self, response: bytes) -> Step:
        return Step("failure", condition="malformed-request")


class Plain(SaslMechanism):
    """RFC 4616; the password is checked against the stored SCRAM keys."""

    name = "PLAIN"

    async def start(self, initial: bytes | None) -> Step:
        if initial is None:
            return Step("challenge", b"")
        return await self.step(initial)

    async def step(self, response: bytes) -> Step:
        try:
            authzid, authcid, password = response.decode("utf-8").split("\0")
            username = prep_localpart(authcid)
        except (UnicodeDecodeError, ValueError, JIDError):
            return Step("failure", condition="malformed-request")
        host = self.session.host
        if authzid and authzid != f"{username}@{host.domain}":
            return Step("failure", condition="invalid-authzid")
        if _begin_attempt(host, username):
            return _throttled()
        if await host.accounts.verify_password(username, password):
            return Step("success", username=username)
        return Step("failure", username=username)


class Scram(SaslMechanism):
    """RFC 5802 / RFC 7677, with channel binding for the -PLUS variants."""

    def __init__(self, session: Session, name: str) -> None:
        super().__init__(session)
        self.name = name
        self.server: ScramServer | None = None
        self.username: str | None = None
        self.fake = False

    async def start(self, initial: bytes | None) -> Step:
        if not initial:
            return Step("failure", condition="malformed-request")
        try:
            client_first = initial.decode("utf-8")
            _, authzid, raw_name, _ = ScramServer.parse_client_first(client_first)
            username = prep_localpart(raw_name)
        except (UnicodeDecodeError, ScramError, JIDError):
            return Step("failure", condition="malformed-request")
        host = self.session.host
        if authzid and authzid != f"{username}@{host.domain}":
            return Step("failure", condition="invalid-authzid")
        if _begin_attempt(host, username):
            return _throttled()
        creds = await host.accounts.credentials(username, self.name.removesuffix("-PLUS"))
        if creds is None:
            # Unknown account: go through the motions with made-up keys (no enumeration).
            self.fake = True
            salt = hmac.new(host.secret, username.encode(), hashlib.sha256).digest()[:16]
            keys = (salt, 4096, secrets.token_bytes(32), secrets.token_bytes(32))
        else:
            keys = (creds.salt, creds.iterations, creds.stored_key, creds.server_key)
        self.username = username
        self.server = ScramServer(self.name, *keys, bindings=_bindings(self.session))
        try:
            return Step("challenge", self.server.client_first(client_first).encode())
        except ScramError as exc:
            log.debug("SCRAM client-first refused: %s", exc)
            return Step("failure", username=username)

    async def step(self, response: bytes) -> Step:
        if self.server is None:
            return Step("failure", condition="malformed-request")
        try:
            final = self.server.client_final(response.decode("utf-8")).encode()
        except (ScramError, UnicodeDecodeError) as exc:
            log.debug("SCRAM client-final refused: %s", exc)
            return Step("failure", username=self.username)
        if self.fake:
            return Step("failure", username=self.username)
        return Step("success", final, username=self.username)


def _begin_attempt(host: Host, username: str) -> bool:
    """Count the attempt as failed until it succeeds, so that concurrent guesses cannot
    all pass the check before the first one fails. True when the account is locked."""
    key = "user:" + username
    if host.auth_throttle.blocked(key):
        return True
    host.auth_throttle.failure(key)
    return False


def _throttled() -> Step:
    return Step("failure", condition="temporary-auth-failure",
                text="too many failed attempts, try again later")


def channel_bindings(session: Session) -> list[str]:
    """The channel-binding types available on this stream (XEP-0440)."""
    ssl_object = session.transport.ssl_object
    if ssl_object is None:
        return []
    return list(tls.available_channel_bindings(ssl_object, session.host.tls_cert_der))


def _bindings(session: Session) -> dict[str, bytes]:
    ssl_object = session.transport.ssl_object
    if ssl_object is None:
        return {}
    out = {}
    for kind in channel_bindings(session):
        data = tls.channel_binding(ssl_object, kind, session.host.tls_cert_der)
        if data:
            out[kind] = data
    return out


def offered(session: Session) -> list[str]:
    config = session.host.config
    secure = session.transport.secure
    binding = bool(channel_bindings(session))
    names = []
    for name in config.auth.mechanisms:
        if name.endswith("-PLUS") and not binding:
            continue
        if name == "PLAIN" and not secure and config.c2s.require_tls:
            continue
        names.append(name)
    return names


def _make(session: Session, name: str) -> SaslMechanism | None:
    if name not in offered(session):
        return None
    return Plain(session) if name == "PLAIN" else Scram(session, name)


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
        if host.auth_throttle.blocked("ip:" + session.transport.peer_ip):
            await _finish(session, _throttled())
            return
        mech = _make(session, el.get("mechanism", ""))
        if mech is None:
            _failure(session, "invalid-mechanism")
            return
        session.sasl = mech
        step = await mech.start(payload)
    elif tag == "response" and session.sasl is not None:
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
        host.auth_throttle.success("user:" + step.username)
        data = base64.b64encode(step.data).decode() if step.data else ""
        # RFC 6120 §6.4.6: a new stream follows success.
        session.parser.reset()
        session.header_sent = False
        session.send_bytes(f"<success xmlns='{ns.SASL}'>{data}</success>".encode())
        await host.events.fire("authenticated", session)
        return
    if step.condition in ("not-authorized", "temporary-auth-failure"):
        host.auth_throttle.failure("ip:" + session.transport.peer_ip)
        log.info("authentication failed for %r from %s", step.username,
                 session.transport.peer_ip)
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
    session.sasl_failures += 1
    if session.sasl_failures >= MAX_ATTEMPTS:
        session.stream_error("policy-violation", "too many failed authentication attempts")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
