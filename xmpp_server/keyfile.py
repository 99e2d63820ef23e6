"""Secret keys kept in files outside the database, made once on first start (mode 0600).

A leaked database is then not enough: the FAST token sealing key (``stream/fast_key.py``) and
the key behind the made-up SCRAM salts of unknown accounts (``accounts.py``) are elsewhere.
Nodes of a cluster point at one shared file; of nodes starting together, one key wins.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path

from xmpp_server.config import ConfigError

log = logging.getLogger(__name__)


def load(path: Path, size: int, setting: str) -> bytes:
    """The ``size`` octets of ``path``, made if the file does not exist. ``setting`` names the
    configuration key in errors (a file that cannot be used, or holds the wrong length)."""
    try:
        key = _read(path, size)
        if key is None:
            key = _create(path, size)
    except OSError as e:
        raise ConfigError(f"{setting}: cannot use {path}: {e.strerror or e}") from e
    if len(key) != size:
        raise ConfigError(f"{setting}: {path} must hold exactly {size} octets")
    return key


def _read(path: Path, size: int) -> bytes | None:
    try:
        with path.open("rb") as fh:
            if os.fstat(fh.fileno()).st_mode & 0o077:
                log.warning("%s: readable by others than the server (chmod 600)", path)
            return fh.read(size + 1)
    except FileNotFoundError:
        return None


def _create(path: Path, size: int) -> bytes:
    """Write a new key whole under a temporary name, then link it in place: of nodes starting
    together on a shared file, one key wins and every node reads that one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(size)
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
            existing = _read(path, size)
            if existing is None:
                raise
            return existing
        log.info("made the key %s", path)
        return key
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
