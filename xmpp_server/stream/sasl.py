"""SASL authentication (RFC 6120 §6): SCRAM-SHA-1/256 (+PLUS, RFC 5802/7677) and PLAIN.

SCRAM runs on scramp with the credentials of the account (salted keys only). Channel binding
uses tls-server-end-point (RFC 5929) and, on TLS 1.2, tls-unique, announced per XEP-0440.
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

import scramp
from lxml import etree

from xmpp_server import namespaces as ns
from xmpp_server.errors import JIDError
from xmpp_server.jid import prep_localpart
from xmpp_server.stream import tls

if TYPE_CHECKING:
    from xmpp_server.stream.session import Session

log = logging.getLogger(__name__)

_SASL = "{" + ns.SASL + "}"
SCRAM_NAMES = ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1")
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
        if host.auth_throttle.blocked("user:" + username):
            return _throttled()
        if await host.accounts.verify_password(username, password):
            return Step("success", username=username)
        return Step("failure", username=username)


class Scram(SaslMechanism):
    def __init__(self, session: Session, name: str) -> None:
        super().__init__(session)
        self.name = name
        self.base = name.removesuffix("-PLUS")
        self.server: scramp.core.ScramServer | None = None
        self.username: str | None = None
        self.fake = False

    async def start(self, initial: bytes | None) -> Step:
        if not initial:
            return Step("failure", condition="malformed-request")
        try:
            client_first = initial.decode("utf-8")
            gs2, _, bare = _split_gs2(client_first)
            username = prep_localpart(_saslname(bare))
        except (UnicodeDecodeError, ValueError, JIDError):
            return Step("failure", condition="malformed-request")
        host = self.session.host
        authzid = gs2.split(",")[1]
        if authzid and authzid != f"a={username}@{host.domain}":
            return Step("failure", condition="invalid-authzid")
        if host.auth_throttle.blocked("user:" + username):
            return _throttled()
        creds = await host.accounts.credentials(username, self.base)
        if creds is None:
            # Unknown account: go through the motions with made-up keys (no enumeration).
            self.fake = True
            salt = hmac.new(host.secret, username.encode(), hashlib.sha256).digest()[:16]
            auth = (salt, secrets.token_bytes(32), secrets.token_bytes(32), 4096)
        else:
            auth = (creds.salt, creds.stored_key, creds.server_key, creds.iterations)
        self.username = username
        # The client names its binding type in the gs2 header ("p=tls-exporter"); without
        # one, the default of RFC 9266 applies for the downgrade check.
        flag = gs2.split(",")[0]
        cb = _binding(self.session, flag[2:] if flag.startswith("p=") else "tls-exporter")
        cb = cb or _binding(self.session, "tls-server-end-point")
        try:
            self.server = scramp.ScramMechanism(self.name).make_server(
                lambda _name: auth, channel_binding=cb
            )
            self.server.set_client_first(client_first)
            return Step("challenge", self.server.get_server_first().encode())
        except scramp.ScramException as exc:
            log.debug("SCRAM client-first refused: %s", exc)
            return Step("failure", condition="not-authorized", username=username)

    async def step(self, response: bytes) -> Step:
        if self.server is None:
            return Step("failure", condition="malformed-request")
        try:
            self.server.set_client_final(response.decode("utf-8"))
            final = self.server.get_server_final().encode()
        except (scramp.ScramException, UnicodeDecodeError) as exc:
            log.debug("SCRAM client-final refused: %s", exc)
            return Step("failure", username=self.username)
        if self.fake:
            return Step("failure", username=self.username)
        return Step("success", final, username=self.username)


def _throttled() -> Step:
    return Step("failure", condition="temporary-auth-failure",
                text="too many failed attempts, try again later")


def _split_gs2(client_first: str) -> tuple[str, str, str]:
    # gs2-header = cbind-flag "," [authzid] "," ; then client-first-message-bare
    flag, authzid, bare = client_first.split(",", 2)
    if not flag or flag[0] not in "nyp":
        raise ValueError("bad gs2 header")
    return f"{flag},{authzid},", authzid, bare


def _saslname(bare: str) -> str:
    for part in bare.split(","):
        if part.startswith("n="):
            return part[2:].replace("=2C", ",").replace("=3D", "=")
    raise ValueError("no username")


def channel_bindings(session: Session) -> list[str]:
    """The channel-binding types available on this stream (XEP-0440)."""
    ssl_object = session.transport.ssl_object
    if ssl_object is None:
        return []
    return list(tls.available_channel_bindings(ssl_object, session.host.tls_cert_der))


def _binding(session: Session, kind: str) -> tuple[str, bytes] | None:
    ssl_object = session.transport.ssl_object
    if ssl_object is None or kind not in channel_bindings(session):
        return None
    data = tls.channel_binding(ssl_object, kind, session.host.tls_cert_der)
    return (kind, data) if data else None


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
        if step.username:
            host.auth_throttle.failure("user:" + step.username)
        log.info("authentication failed for %r from %s", step.username,
                 session.transport.peer_ip)
    session.sasl_failures += 1
    _failure(session, step.condition, step.text)
    if session.sasl_failures >= MAX_ATTEMPTS:
        session.stream_error("policy-violation", "too many failed authentication attempts")


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


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
