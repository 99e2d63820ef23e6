"""Accounts: creating users and checking passwords, on SCRAM salted keys only.

A password is never stored: for each SCRAM hash the salted keys of RFC 5802 §3 are kept, and a
PLAIN login derives the same keys and compares them. PBKDF2 runs in a worker thread so that a
burst of logins does not stall the event loop.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets

import scramp

from storage import ScramCredentials, Storage, UserExists
from xmpp_server.errors import JIDError, StanzaError
from xmpp_server.jid import prep_localpart

MECHANISMS = ("SCRAM-SHA-1", "SCRAM-SHA-256")


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
    try:
        return str(precis_i18n.get_profile("OpaqueString").enforce(password))
    except UnicodeEncodeError:
        raise StanzaError("not-acceptable", "the password contains forbidden characters") from None


class Accounts:
    def __init__(self, storage: Storage, iterations: int = 4096) -> None:
        self.storage = storage
        self.iterations = iterations

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

    async def set_password(self, username: str, password: str) -> bool:
        password = valid_password(password)
        creds = await asyncio.to_thread(make_credentials, password, self.iterations)
        return await self.storage.users.set_credentials(username, creds)

    async def credentials(self, username: str, mechanism: str) -> ScramCredentials | None:
        return await self.storage.users.get_credentials(username, mechanism)

    async def verify_password(self, username: str, password: str) -> bool:
        creds = await self.storage.users.get_credentials(username, "SCRAM-SHA-1")
        if creds is None:
            return False
        try:
            password = valid_password(password)
        except StanzaError:
            return False
        return await asyncio.to_thread(check_password, password, creds)

    async def exists(self, username: str) -> bool:
        return await self.storage.users.exists(username)

    async def delete(self, username: str) -> bool:
        return await self.storage.users.delete(username)
