"""Accounts: creating users and checking passwords, on SCRAM salted keys only.

A password is never stored: for each SCRAM hash the salted keys of RFC 5802 §3 are kept, and a
PLAIN login derives the same keys and compares them. PBKDF2 runs in a worker thread so that a
burst of logins does not stall the event loop.

PBKDF2 is deliberately slow, and clients that log in with PLAIN reconnect often (phones on
flaky networks). As Dovecot's authentication cache does, a successful check is remembered in
memory as an HMAC of the password under a key made at start and never stored: the next login
with the same password costs one HMAC. The cache holds nothing an attacker could test guesses
against without that key; it is bounded, and a password change or account removal drops the
entry.

A password change also revokes the account's FAST login tokens; removing the account removes
them with the rest of its data.

Nobody may tell from a failed login whether the account exists. An unknown account gets made-up
SCRAM credentials (``decoy``): a salt derived per mechanism from the username and a secret kept
outside the database (``auth.secret_file``, ``keyfile.py``), so it is the same at every start and
on every node, and differs between SCRAM-SHA-1 and SCRAM-SHA-256 as real salts do; the
configured iteration count. A PLAIN login for an unknown account derives keys from those
credentials as it would for a real one, so it costs the same. ``derivations`` counts the key
derivations of logins.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

import scramp

from storage import ScramCredentials, Storage, UserExists
from xmpp_server import keyfile
from xmpp_server.errors import JIDError, StanzaError
from xmpp_server.jid import prep_localpart

if TYPE_CHECKING:
    from xmpp_server.config import Config

MECHANISMS = ("SCRAM-SHA-1", "SCRAM-SHA-256")
PLAIN_MECHANISM = "SCRAM-SHA-1"  # the keys PLAIN logins are checked against
SECRET_SIZE = 32
_DIGEST_SIZE = {"SCRAM-SHA-1": 20, "SCRAM-SHA-256": 32}


def secret_path(config: Config) -> Path:
    """``auth.secret_file``, or ``<data_dir>/auth.key`` when it is empty."""
    configured = config.auth.secret_file
    if configured:
        return Path(configured).expanduser()
    return Path(config.server.data_dir) / "auth.key"


def load_secret(config: Config) -> bytes:
    """The key of ``auth.secret_file`` (empty: ``<data_dir>/auth.key``), made once."""
    return keyfile.load(secret_path(config), SECRET_SIZE, "auth.secret_file")


def _plain_salt(creds: list[ScramCredentials]) -> bytes:
    return next(c.salt for c in creds if c.mechanism == PLAIN_MECHANISM)


def make_credentials(password: str, iterations: int) -> list[ScramCredentials]:
    creds = []
    for name in MECHANISMS:
        salt, stored_key, server_key, _ = scramp.ScramMechanism(name).make_auth_info(
            password, iteration_count=iterations, salt=secrets.token_bytes(16)
        )
        creds.append(ScramCredentials(name, salt, iterations, stored_key, server_key))
    return creds


def check_password(password: str, creds: ScramCredentials) -> bool:
    _, stored_key, _, _ = scramp.ScramMechanism(creds.mechanism).make_auth_info(
        password, iteration_count=creds.iterations, salt=creds.salt
    )
    return hmac.compare_digest(stored_key, creds.stored_key)


def valid_password(password: str) -> str:
    """Passwords are PRECIS OpaqueString (RFC 8265 §4); refuse what cannot be prepared."""
    import precis_i18n

    if not password:
        raise StanzaError("not-acceptable", "the password must not be empty")
    if password.isascii() and password.isprintable():
        return password  # OpaqueString leaves printable ASCII as it is (RFC 8265 §4.2)
    try:
        return str(precis_i18n.get_profile("OpaqueString").enforce(password))
    except UnicodeEncodeError:
        raise StanzaError("not-acceptable", "the password contains forbidden characters") from None


class VerifiedPasswords:
    """A bounded LRU of username -> HMAC(process key, salt + password) of checked passwords."""

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[str, bytes] = OrderedDict()

    def _mac(self, salt: bytes, password: str) -> bytes:
        return hmac.new(self._key, salt + b"\0" + password.encode(), hashlib.sha256).digest()

    def check(self, username: str, salt: bytes, password: str) -> bool:
        known = self._entries.get(username)
        if known is None or not hmac.compare_digest(known, self._mac(salt, password)):
            return False
        self._entries.move_to_end(username)
        return True

    def remember(self, username: str, salt: bytes, password: str) -> None:
        if self.size <= 0:
            return
        self._entries[username] = self._mac(salt, password)
        self._entries.move_to_end(username)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def forget(self, username: str) -> None:
        self._entries.pop(username, None)


class Accounts:
    def __init__(self, storage: Storage, iterations: int = 4096,
                 cache_size: int = 50_000, secret: bytes | None = None) -> None:
        self.storage = storage
        self.iterations = iterations
        self.verified = VerifiedPasswords(cache_size)
        # Keys the decoy salts; a random one serves where no login is answered (the CLI).
        self._secret = secret if secret is not None else secrets.token_bytes(SECRET_SIZE)
        self.derivations = 0  # key derivations to check passwords (PLAIN), real or decoy

    @staticmethod
    def username(raw: str) -> str:
        try:
            return prep_localpart(raw)
        except JIDError:
            raise StanzaError("not-acceptable", "the username is not a valid localpart") from None

    async def create(self, username: str, password: str) -> None:
        """Raises ``StanzaError('conflict')`` when the name is taken (atomically)."""
        password = valid_password(password)
        creds = await asyncio.to_thread(make_credentials, password, self.iterations)
        try:
            await self.storage.users.create(username, creds)
        except UserExists:
            raise StanzaError("conflict", "the username is already taken") from None
        self.verified.remember(username, _plain_salt(creds), password)

    async def set_password(self, username: str, password: str) -> bool:
        """A new password; the account's FAST login tokens (XEP-0484) stop working."""
        password = valid_password(password)
        creds = await asyncio.to_thread(make_credentials, password, self.iterations)
        self.verified.forget(username)
        if not await self.storage.users.set_credentials(username, creds):
            return False
        await self.storage.fast_tokens.revoke(username)
        return True

    async def credentials(self, username: str, mechanism: str) -> ScramCredentials | None:
        return await self.storage.users.get_credentials(username, mechanism)

    def decoy(self, username: str, mechanism: str) -> ScramCredentials:
        """Made-up credentials of an unknown account: the same salt every time, no key that
        any password derives."""
        label = b"\0".join((b"xmppd decoy salt", mechanism.encode(), username.encode()))
        salt = hmac.new(self._secret, label, hashlib.sha256).digest()[:16]
        size = _DIGEST_SIZE[mechanism]
        return ScramCredentials(mechanism, salt, self.iterations, secrets.token_bytes(size),
                                secrets.token_bytes(size))

    async def verify_password(self, username: str, password: str) -> bool:
        creds = await self.storage.users.get_credentials(username, PLAIN_MECHANISM)
        try:
            password = valid_password(password)
        except StanzaError:
            return False
        if creds is None:
            # As much work as a wrong password for a real account (no account discovery).
            self.derivations += 1
            await asyncio.to_thread(check_password, password,
                                    self.decoy(username, PLAIN_MECHANISM))
            return False
        # The salt is part of the MAC: new credentials (set elsewhere) never match old entries.
        if self.verified.check(username, creds.salt, password):
            return True
        self.derivations += 1
        if not await asyncio.to_thread(check_password, password, creds):
            return False
        self.verified.remember(username, creds.salt, password)
        return True

    async def exists(self, username: str) -> bool:
        return await self.storage.users.exists(username)

    async def delete(self, username: str) -> bool:
        self.verified.forget(username)
        return await self.storage.users.delete(username)
