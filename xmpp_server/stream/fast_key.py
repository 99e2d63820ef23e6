"""XEP-0484 FAST: the server's key that seals the stored token secrets (XEP-0484 §8).

What a FAST token amounts to for the server is SHA-256(token), the HMAC key of the HT-*
mechanisms (``fast.py``); whoever holds it can log in as the token would. So the database never
holds it in the clear: each row's ``secret`` is ``nonce (12 octets) || AES-256-GCM ciphertext
and tag`` under a key kept outside the database, with the row's username, client and slot as
associated data (a row copied to another account, client or slot does not open).

The key is 32 random octets in ``c2s.fast_key_file`` (empty: ``<data_dir>/fast.key``), made on
first start with mode 0600 and read on later starts; nodes of a cluster point at one shared
file (``keyfile.py``). A row that does not open (the key was replaced, or it predates
sealing) is no token: the client falls back to its password.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from xmpp_server import keyfile

if TYPE_CHECKING:
    from storage.fast_tokens import FastToken
    from xmpp_server.config import Config

KEY_SIZE = 32  # AES-256
_NONCE = 12  # NIST SP 800-38D §8.2.2: random 96-bit nonces
_LABEL = b"xmppd fast token v1"


def key_path(config: Config) -> Path:
    """``c2s.fast_key_file``, or ``<data_dir>/fast.key`` when it is empty."""
    configured = config.c2s.fast_key_file
    if configured:
        return Path(configured).expanduser()
    return Path(config.server.data_dir) / "fast.key"


def _aad(username: str, client: str, slot: str) -> bytes:
    # None of the parts can hold a NUL (a nodeprepped localpart, a hex digest, a slot name).
    return b"\0".join((_LABEL, username.encode(), client.encode(), slot.encode()))


class FastKey:
    """Seals and opens the ``secret`` of ``storage.fast_tokens`` rows."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_SIZE:
            raise ValueError(f"a FAST key is {KEY_SIZE} octets")
        self._aead = AESGCM(key)

    def seal(self, username: str, client: str, slot: str, secret: bytes) -> bytes:
        """What is stored of ``secret`` (the token's hash) in that row."""
        nonce = secrets.token_bytes(_NONCE)
        return nonce + self._aead.encrypt(nonce, secret, _aad(username, client, slot))

    def open(self, token: FastToken) -> bytes | None:
        """The token's hash sealed in a stored row; None if it does not open with this key."""
        sealed = token.secret
        if len(sealed) <= _NONCE:
            return None
        try:
            return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:],
                                      _aad(token.username, token.client, token.slot))
        except InvalidTag:
            return None


def load(config: Config) -> FastKey:
    """The key of ``c2s.fast_key_file``: read, or made once if the file does not exist."""
    return FastKey(keyfile.load(key_path(config), KEY_SIZE, "c2s.fast_key_file"))
