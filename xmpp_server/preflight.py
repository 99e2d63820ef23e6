"""What ``xmppd check-config`` checks beyond the schema: the files and directories the
configuration names, as the user running it sees them.

Each problem is one line naming the key: a file that is missing or unreadable, a certificate
that does not parse, has expired or does not match its key, a key file of the wrong size, a
directory the server could not create or write. Files the server makes on first start (the
self-signed certificate, the key files, the SQLite database) may be missing as long as their
directory can be made and written.
"""

from __future__ import annotations

import datetime
import os
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509

from xmpp_server.accounts import SECRET_SIZE, secret_path
from xmpp_server.stream import certificates
from xmpp_server.stream.fast_key import KEY_SIZE, key_path

if TYPE_CHECKING:
    from xmpp_server.config import Config

__all__ = ["problems"]


def problems(config: Config) -> list[str]:
    """One line per problem, each starting with the configuration key it is about."""
    return [*_directory("server.data_dir", Path(config.server.data_dir)),
            *_tls(config),
            *_key_file("auth.secret_file", secret_path(config), SECRET_SIZE),
            *(_key_file("c2s.fast_key_file", key_path(config), KEY_SIZE)
              if config.c2s.sasl2 and config.c2s.fast_token_ttl > 0 else ()),
            *(_ca_file(Path(config.s2s.ca_file).expanduser()) if config.s2s.ca_file else ()),
            *_sqlite(config.storage.url)]


def _tls(config: Config) -> Iterator[str]:
    tls = config.tls
    if tls.cert:
        cert = Path(tls.cert).expanduser()
        key = Path(tls.key).expanduser() if tls.key else cert
        yield from _pair("tls.cert", cert, "tls.key" if tls.key else "tls.cert", key)
        return
    try:
        cert, key = certificates.self_signed_paths(Path(config.server.data_dir),
                                                   config.server.domain)
    except ValueError as exc:
        yield f"server.domain: {exc}"
        return
    # Made on first start; made anew if one is missing, unparsable or expiring. What the
    # server cannot mend itself: files it may not read, a key that is not the certificate's.
    if cert.exists() and key.exists():
        unreadable = [*_readable("server.data_dir", cert), *_readable("server.data_dir", key)]
        yield from unreadable
        if not unreadable and _parses(cert):
            yield from _matching("server.data_dir", cert, key)


def _pair(cert_key: str, cert: Path, key_key: str, key: Path) -> Iterator[str]:
    unreadable = [*_readable(cert_key, cert), *(_readable(key_key, key) if key != cert else ())]
    if unreadable:
        yield from unreadable
        return
    try:
        loaded = x509.load_pem_x509_certificates(cert.read_bytes())
    except ValueError:
        yield f"{cert_key}: {cert} holds no PEM certificate"
        return
    expiry = loaded[0].not_valid_after_utc
    if expiry < datetime.datetime.now(datetime.UTC):
        yield f"{cert_key}: {cert} expired on {expiry:%Y-%m-%d}"
    yield from _matching(key_key, cert, key)


def _parses(cert: Path) -> bool:
    try:
        x509.load_pem_x509_certificates(cert.read_bytes())
    except ValueError:
        return False
    return True


def _matching(setting: str, cert: Path, key: Path) -> Iterator[str]:
    """The key loads without a passphrase and is the certificate's (as the server loads it)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(str(cert), str(key), password=_no_passphrase)
    except (ssl.SSLError, OSError, ValueError) as exc:
        reason = str(getattr(exc, "reason", None) or exc)
        reason = ("no PEM private key in it" if "PEM lib" in reason  # OpenSSL's words for it
                  else reason.lower().replace("_", " "))
        yield f"{setting}: {key} is not the unencrypted private key of {cert} ({reason})"


def _no_passphrase() -> str:
    raise ValueError("the key is encrypted; the server needs it without a passphrase")


def _key_file(setting: str, path: Path, size: int) -> Iterator[str]:
    if not path.exists():
        yield from _creatable(setting, path)
        return
    problems = list(_readable(setting, path))
    if problems:
        yield from problems
    elif path.stat().st_size != size:
        yield f"{setting}: {path} must hold exactly {size} octets"


def _ca_file(path: Path) -> Iterator[str]:
    problems = list(_readable("s2s.ca_file", path))
    if problems:
        yield from problems
        return
    try:
        x509.load_pem_x509_certificates(path.read_bytes())
    except ValueError:
        yield f"s2s.ca_file: {path} holds no PEM certificate"


def _sqlite(url: str) -> Iterator[str]:
    scheme, _, rest = url.partition(":///")
    if not scheme.startswith("sqlite") or not rest or rest.startswith((":memory:", "file:")):
        return
    path = Path(rest.partition("?")[0]).expanduser()
    if not path.exists():
        yield from _creatable("storage.url", path)
        return
    if not path.is_file():
        yield f"storage.url: {path} is not a file"
    elif not os.access(path, os.R_OK | os.W_OK):
        yield f"storage.url: {path} cannot be read and written by this user"
    elif not os.access(path.parent, os.W_OK | os.X_OK):
        # SQLite keeps its write-ahead log and shared memory files beside the database
        yield f"storage.url: {path.parent} is not writable by this user (SQLite's -wal file)"


def _readable(setting: str, path: Path) -> Iterator[str]:
    if not path.exists():
        yield f"{setting}: file not found: {path}"
    elif not path.is_file():
        yield f"{setting}: {path} is not a file"
    else:
        try:
            with path.open("rb") as fh:
                fh.read(1)
        except OSError as exc:
            yield f"{setting}: cannot read {path}: {(exc.strerror or str(exc)).lower()}"


def _directory(setting: str, path: Path) -> Iterator[str]:
    if path.exists():
        if not path.is_dir():
            yield f"{setting}: {path} is not a directory"
        elif not os.access(path, os.W_OK | os.X_OK):
            yield f"{setting}: {path} is not writable by this user"
    else:
        yield from _creatable(setting, path)


def _creatable(setting: str, path: Path) -> Iterator[str]:
    """``path`` does not exist: the server will make it (and the directories missing above it)
    in the nearest directory that exists."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        yield f"{setting}: cannot create {path}: {parent} is not a directory"
    elif not os.access(parent, os.W_OK | os.X_OK):
        yield f"{setting}: cannot create {path}: {parent} is not writable by this user"
