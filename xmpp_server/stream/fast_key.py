"""XEP-0484 FAST: the server's key that seals the stored token secrets (XEP-0484 §8).

What a FAST token amounts to for the server is SHA-256(token), the HMAC key of the HT-*
mechanisms (``fast.py``); whoever holds it can log in as the token would. So the database never
holds it in the clear: each row's ``secret`` is ``nonce (12 octets) || AES-256-GCM ciphertext
and tag`` under a key kept outside the database, with the row's username, client and slot as
associated data (a row copied to another account, client or slot does not open).

The key is 32 random octets in ``c2s.fast_key_file`` (empty: ``<data_dir>/fast.key``), made on
first start with mode 0600 and read on later starts; nodes of a cluster point at one shared
file. A row that does not open (the key was replaced, or it predates sealing) is no token: the
client falls back to its password.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from xmpp_server.config import ConfigError

if TYPE_CHECKING:
    from storage.fast_tokens import FastToken
    from xmpp_server.config import Config

log = logging.getLogger(__name__)

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
    path = key_path(config)
    try:
        key = _read(path)
        if key is None:
            key = _create(path)
    except OSError as e:
        raise ConfigError(f"c2s.fast_key_file: cannot use {path}: {e.strerror or e}") from e
    if len(key) != KEY_SIZE:
        raise ConfigError(f"c2s.fast_key_file: {path} must hold exactly {KEY_SIZE} octets")
    return FastKey(key)


def _read(path: Path) -> bytes | None:
    try:
        with path.open("rb") as fh:
            if os.fstat(fh.fileno()).st_mode & 0o077:
                log.warning("%s: readable by others than the server (chmod 600)", path)
            return fh.read(KEY_SIZE + 1)
    except FileNotFoundError:
        return None


def _create(path: Path) -> bytes:
    """Write a new key whole under a temporary name, then link it in place: of nodes starting
    together on a shared file, one key wins and every node reads that one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(KEY_SIZE)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o600)  # whatever the umask
            fh.write(key)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            existing = _read(path)
            if existing is None:
                raise
            return existing
        log.info("made the key sealing FAST tokens: %s", path)
        return key
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
