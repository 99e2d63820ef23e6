"""XEP-0484: Fast Authentication Streamlining Tokens, with the HT-* mechanisms of
draft-schmaus-kitten-sasl-ht.

A client that logs in through SASL2 (``sasl2.py``) with a <user-agent id/> may ask for a token
(<request-token mechanism/>); its later logins send <fast/> and one message, answered at once:

    initiator: authcid NUL HMAC-SHA-256(token, "Initiator" || cb-data)
    responder: HMAC-SHA-256(token, "Responder" || cb-data)     (the <additional-data/>)

where cb-data is the channel binding the mechanism names: HT-SHA-256-NONE (none),
-UNIQ (tls-unique), -ENDP (tls-server-end-point), -EXPR (tls-exporter).

- Offered only inside SASL2 and on encrypted streams (§8: a token is a bearer secret).
- A token is bound to its client (user-agent id) and to the mechanism it was asked for (§4.4).
- Slots "new" and "current" per client (§7.1, ``storage/fast_tokens.py``): a login with a
  token older than ``c2s.fast_token_rotation`` seconds hands out the next one, which replaces
  the current token when first used; <fast invalidate='true'/> revokes the client's tokens.
- <fast count/>: each count is accepted once per token, increasing (§4.4, replays).
- Expired tokens fail with credentials-expired; a password change revokes them all
  (``accounts.py``); deleting the account deletes them.

The token itself is never kept. The tokens handed out are longer than SHA-256's 64-octet
block, and HMAC (RFC 2104 §2) then keys itself with the key's hash: that hash is all the server
needs. It would log in as the token does, so it is stored sealed by a key outside the database
(``fast_key.py``): a leaked row is useless without the key file, and a row that does not open
(the key file was replaced) is no token, so the client falls back to its password.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from lxml import etree

from storage.fast_tokens import CURRENT, NEW, FastToken
from xmpp_server import namespaces as ns
from xmpp_server.errors import JIDError
from xmpp_server.jid import prep_localpart
from xmpp_server.numbers import parse_int
from xmpp_server.stanza import element
from xmpp_server.stream import mechanisms
from xmpp_server.stream.mechanisms import SaslMechanism, Step

if TYPE_CHECKING:
    from xmpp_server.auth_throttle import Attempt
    from xmpp_server.stream.session import Session

log = logging.getLogger(__name__)

_F = "{" + ns.FAST + "}"
# Mechanism -> the channel binding it hashes in (None: none), channel-bound ones first.
HT = {
    "HT-SHA-256-EXPR": "tls-exporter",
    "HT-SHA-256-ENDP": "tls-server-end-point",
    "HT-SHA-256-UNIQ": "tls-unique",
    "HT-SHA-256-NONE": None,
}
_PREFIX = "secret-token:fast-"  # RFC 8959: recognisable to secret scanners
_MAX_COUNT = 2**63 - 1


def offered(session: Session) -> list[str]:
    """The FAST mechanisms of this stream (none unless SASL2, FAST and encryption are on)."""
    c2s = session.host.config.c2s
    if not (c2s.sasl2 and c2s.fast_token_ttl > 0 and session.transport.secure
            and session.host.fast_key is not None):
        return []
    kinds = mechanisms.channel_bindings(session)
    return [name for name, kind in HT.items() if kind is None or kind in kinds]


def advertise(session: Session, inline: etree._Element) -> None:
    """§3: <fast/> with its mechanisms, inside SASL2's <inline/>."""
    names = offered(session)
    if names:
        fast = etree.SubElement(inline, _F + "fast", nsmap={None: ns.FAST})
        for name in names:
            etree.SubElement(fast, _F + "mechanism").text = name


def client_key(client_id: str) -> str:
    """The client's name in storage: its user-agent id never appears there as such."""
    return hashlib.sha256(client_id.encode()).hexdigest()


def token_secret(token: str) -> bytes:
    """The HMAC key a token amounts to (see the module docstring); stored sealed only."""
    return hashlib.sha256(token.encode()).digest()


def _hmac(secret: bytes, label: bytes, cb: bytes) -> bytes:
    return hmac.new(secret, label + cb, hashlib.sha256).digest()


class HashedToken(SaslMechanism):
    """One HT-SHA-256-* exchange (draft-schmaus-kitten-sasl-ht §3): one message each way."""

    def __init__(self, session: Session, attempt: Attempt, name: str, client_id: str,
                 count: int | None, invalidate: bool) -> None:
        super().__init__(session, attempt)
        self.name = name
        self.client = client_key(client_id)
        self.count = count
        self.invalidate = invalidate
        self.rotate = False  # set on success: the token is due for its successor

    async def start(self, initial: bytes | None) -> Step:
        authcid, sep, proof = (initial or b"").partition(b"\0")
        try:
            if not sep or not proof:
                raise ValueError("no token hash")
            username = prep_localpart(authcid.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, JIDError):
            return Step("failure", condition="malformed-request")
        if (refused := self.refusal(username)) is not None:
            return refused
        session = self.session
        host = session.host
        kind = HT[self.name]
        cb = b"" if kind is None else mechanisms.bindings(session).get(kind)
        if cb is None:
            return Step("failure", condition="malformed-request")
        if not self.attempt.check():
            return mechanisms.throttled()
        key = host.fast_key
        assert key is not None  # offered() said so
        repo = host.storage.fast_tokens
        now = datetime.now(UTC)
        for token in await repo.find(username, self.client):
            if token.mechanism != self.name:
                continue
            secret = key.open(token)
            if secret is None:  # sealed with another key: no token (password login it is)
                log.warning("a FAST token of %s does not open with c2s.fast_key_file", username)
                continue
            if not hmac.compare_digest(_hmac(secret, b"Initiator", cb), proof):
                continue
            if token.expires_at <= now:
                await repo.delete(token)
                self.attempt.succeeded(known=False)  # the right token: no guess
                return Step("failure", username=username, condition="credentials-expired",
                            text="the token has expired")
            current = key.seal(username, self.client, CURRENT, secret)
            if not await repo.accept(token, self.count, current):
                return self.failed(username, text="this count was used with the token already")
            if self.invalidate:
                await repo.revoke(username, self.client)  # §6: logged out
            else:
                age = (now - token.issued_at).total_seconds()
                self.rotate = age >= host.config.c2s.fast_token_rotation
            return self.succeeded(username, _hmac(secret, b"Responder", cb))
        return self.failed(username)


def make(session: Session, name: str, attempt: Attempt, client_id: str,
         fast: etree._Element) -> HashedToken | None:
    """The mechanism of a login with <fast/>; None if ``name`` is no FAST mechanism here.

    Raises ValueError for a 'count' that is no positive integer.
    """
    if name not in offered(session):
        return None
    raw = fast.get("count")
    count = None
    if raw is not None:
        count = parse_int(raw, 1, _MAX_COUNT)
    invalidate = fast.get("invalidate") in ("1", "true")
    return HashedToken(session, attempt, name, client_id, count, invalidate)


async def grant(session: Session, username: str, client_id: str | None, wanted: str | None,
                mech: SaslMechanism) -> etree._Element | None:
    """§4.2, §5: the <token/> for <success/>, when one was asked for or is due; else None.

    ``wanted``: the mechanism of the client's <request-token/>, if any.
    """
    if isinstance(mech, HashedToken) and wanted is None and mech.rotate:
        wanted = mech.name  # the successor is bound to the same mechanism
    if wanted is None or client_id is None:
        return None
    key = session.host.fast_key
    assert key is not None  # offered() said so
    ttl = session.host.config.c2s.fast_token_ttl
    now = datetime.now(UTC).replace(microsecond=0)
    expires = now + timedelta(seconds=ttl)
    token = _PREFIX + secrets.token_urlsafe(48)
    assert len(token) > 64  # HMAC keys itself with the hash: see the module docstring
    client = client_key(client_id)
    stored = FastToken(username, client, NEW, wanted,
                       key.seal(username, client, NEW, token_secret(token)), now, expires)
    if not await session.host.storage.fast_tokens.issue(stored):
        return None
    return element(_F + "token", expiry=expires.strftime("%Y-%m-%dT%H:%M:%SZ"), token=token)
