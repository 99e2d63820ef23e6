"""SASL mechanisms (RFC 4422): SCRAM-SHA-1/256 (+PLUS, RFC 5802/7677) and PLAIN (RFC 4616).

One implementation of each mechanism, whatever the framing: RFC 6120 SASL (``sasl.py``) and
XEP-0388 SASL2 (``sasl2.py``) both drive a ``SaslMechanism`` and get ``Step`` results. The
token mechanisms of XEP-0484 FAST live in ``fast.py`` on the same interface.

SCRAM (``scram.py``) runs on the salted keys of the account. Channel binding uses
tls-exporter (RFC 9266), tls-server-end-point (RFC 5929) and, on TLS 1.2, tls-unique, announced
per XEP-0440; the server-first-message carries the XEP-0474 downgrade-protection hash.
PLAIN is offered only on encrypted streams unless ``c2s.require_tls`` is off. Every exchange
is booked with the login throttle (``auth_throttle.py``); unknown accounts fail exactly like
wrong passwords, with made-up credentials (``Accounts.decoy``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from xmpp_server.errors import JIDError
from xmpp_server.jid import prep_localpart
from xmpp_server.stream.channel_binding import available_channel_bindings, channel_binding
from xmpp_server.stream.scram import ScramError, ScramServer

if TYPE_CHECKING:
    from xmpp_server.auth_throttle import Attempt
    from xmpp_server.stream.session import Session

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5  # RFC 6120 §6.4.5: failed exchanges, then the stream is closed


@dataclass
class Step:
    """One server step: a challenge, a success (with the account) or a failure."""

    kind: str  # "challenge" | "success" | "failure"
    data: bytes | None = None
    username: str | None = None
    condition: str = "not-authorized"
    text: str | None = None


class SaslMechanism:
    """A mechanism's exchange; its ``attempt`` books it with the login throttle (see
    ``auth_throttle.py``): ``refusal`` once the account is named, ``attempt.check()`` right
    before the credential is checked, ``succeeded``/``failed`` with the verdict."""

    name = ""

    def __init__(self, session: Session, attempt: Attempt) -> None:
        self.session = session
        self.attempt = attempt

    async def start(self, initial: bytes | None) -> Step:
        raise NotImplementedError

    async def step(self, response: bytes) -> Step:
        return Step("failure", condition="malformed-request")

    def refusal(self, username: str, authzid: str = "") -> Step | None:
        """The failure that ends the exchange before anything is looked up, if any: an
        authorization identity other than the account's own (RFC 6120 §6.3.8), or the
        throttle's refusal to check this account's credentials from this address now."""
        if authzid and authzid != f"{username}@{self.session.host.domain}":
            return Step("failure", condition="invalid-authzid")
        if not self.attempt.begin(username):
            return throttled()
        return None

    def succeeded(self, username: str, data: bytes | None = None) -> Step:
        self.attempt.succeeded()
        return Step("success", data, username=username)

    def failed(self, username: str, condition: str = "not-authorized",
               text: str | None = None) -> Step:
        """A credential was checked and is wrong (it stays counted by the throttle)."""
        log.info("authentication failed for %r from %s", username, self.attempt.ip)
        return Step("failure", username=username, condition=condition, text=text)


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
        if (refused := self.refusal(username, authzid)) is not None:
            return refused
        if not self.attempt.check():
            return throttled()
        if await self.session.host.accounts.verify_password(username, password):
            return self.succeeded(username)
        return self.failed(username)


class Scram(SaslMechanism):
    """RFC 5802 / RFC 7677, with channel binding for the -PLUS variants."""

    def __init__(self, session: Session, attempt: Attempt, name: str) -> None:
        super().__init__(session, attempt)
        self.name = name
        self.server: ScramServer | None = None
        self.username: str | None = None
        self.decoy = False

    async def start(self, initial: bytes | None) -> Step:
        if not initial:
            return Step("failure", condition="malformed-request")
        try:
            client_first = initial.decode("utf-8")
            _, authzid, raw_name, _ = ScramServer.parse_client_first(client_first)
            username = prep_localpart(raw_name)
        except (UnicodeDecodeError, ScramError, JIDError):
            return Step("failure", condition="malformed-request")
        if (refused := self.refusal(username, authzid)) is not None:
            return refused
        accounts = self.session.host.accounts
        mechanism = self.name.removesuffix("-PLUS")
        creds = await accounts.credentials(username, mechanism)
        if creds is None:
            # Unknown account: go through the motions with made-up keys (no enumeration).
            self.decoy = True
            creds = accounts.decoy(username, mechanism)
        self.username = username
        self.server = ScramServer(self.name, creds.salt, creds.iterations, creds.stored_key,
                                  creds.server_key, bindings=bindings(self.session),
                                  ssdp=downgrade_protection(self.session))
        try:
            return Step("challenge", self.server.client_first(client_first).encode())
        except ScramError as exc:
            # Refused before any proof: not a guess (the throttle counts it as unchecked).
            log.debug("SCRAM client-first refused: %s", exc)
            return Step("failure", username=username)

    async def step(self, response: bytes) -> Step:
        if self.server is None or self.username is None:
            return Step("failure", condition="malformed-request")
        try:
            auth_message, proof = self.server.parse_final(response.decode("utf-8"))
        except (ScramError, UnicodeDecodeError) as exc:
            log.debug("SCRAM client-final refused: %s", exc)
            return Step("failure", username=self.username)
        if not self.attempt.check():
            return throttled()
        try:
            final = self.server.verify(auth_message, proof).encode()
        except ScramError:
            return self.failed(self.username)
        if self.decoy:  # no proof matches random keys; never let one through
            return self.failed(self.username)
        return self.succeeded(self.username, final)


def throttled() -> Step:
    return Step("failure", condition="temporary-auth-failure",
                text="too many failed attempts, try again later")


def count_failure(session: Session) -> None:
    """A <failure/> was sent, in either framing: the stream ends after MAX_ATTEMPTS."""
    session.sasl_failures += 1
    if session.sasl_failures >= MAX_ATTEMPTS:
        session.stream_error("policy-violation", "too many failed authentication attempts")


# -- what a stream offers ---------------------------------------------------------------------

def channel_bindings(session: Session) -> list[str]:
    """The channel-binding types available on this stream (XEP-0440)."""
    ssl_object = session.transport.ssl_object
    if ssl_object is None:
        return []
    return list(available_channel_bindings(ssl_object, session.host.tls_cert_der))


def bindings(session: Session) -> dict[str, bytes]:
    """Channel-binding type -> data, for the types this stream supports."""
    ssl_object = session.transport.ssl_object
    if ssl_object is None:
        return {}
    out = {}
    for kind in channel_bindings(session):
        data = channel_binding(ssl_object, kind, session.host.tls_cert_der)
        if data:
            out[kind] = data
    return out


def offered(session: Session) -> list[str]:
    """The mechanisms announced on this stream, in SASL1 and SASL2 alike."""
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


def downgrade_protection(session: Session) -> bytes:
    """XEP-0474 §6.1: the string whose hash SCRAM's 'h' attribute carries.

    The advertised mechanisms sorted (i;octet) and joined by %x1E, then, as XEP-0440
    channel-binding types are advertised when there are any, %x1F and those sorted and
    joined the same way. SASL1 and SASL2 announce the same mechanisms here.
    """
    text = "\x1e".join(sorted(offered(session)))
    kinds = channel_bindings(session)
    if kinds:
        text += "\x1f" + "\x1e".join(sorted(kinds))
    return text.encode()


def make(session: Session, name: str, attempt: Attempt) -> SaslMechanism | None:
    """The password mechanism ``name``, if this stream offers it."""
    if name not in offered(session):
        return None
    return Plain(session, attempt) if name == "PLAIN" else Scram(session, attempt, name)
