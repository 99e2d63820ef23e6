"""TLS: the server certificate, SSL contexts, and channel bindings for SCRAM-*-PLUS.

- ``ensure_certificate`` returns the configured certificate, or generates a self-signed one once
  (EC P-256, ten years) under ``<data_dir>/tls/`` and reuses it on later starts.
- ``server_context`` / ``client_context`` build TLS 1.2+ contexts for c2s/s2s listeners and for
  outbound s2s.
- ``channel_binding`` computes the RFC 5929 / RFC 9266 channel-binding data of a connection.
  Advertise (XEP-0440) only the types for which it returns bytes; ``available_channel_bindings``
  lists them.

tls-exporter (RFC 9266): Python's ``ssl`` module (3.11, and still in 3.13) has no
``export_keying_material`` (CPython issue gh-82133, PR #25255 never merged). asyncio only speaks the
stdlib ``ssl`` (``loop.start_tls`` and ``create_server(ssl=...)`` take an ``ssl.SSLContext``
and drive an ``ssl.SSLObject``), so pyOpenSSL's ``Connection.export_keying_material`` cannot be
used without replacing asyncio's TLS transport. What does work: the C object behind an
``ssl.SSLObject`` (``ssl_object._sslobj``, a ``_ssl._SSLSocket``) stores its OpenSSL ``SSL *``
right after ``PyObject_HEAD`` and the weakref to the socket, and ``_ssl`` is dynamically linked
to libssl, so ctypes can call ``SSL_export_keying_material`` of the very same libssl on it. Every
call first checks that the pointer read is the right one (OpenSSL's app data of that ``SSL`` is
the ``_SSLSocket`` object itself, set by CPython); if anything does not match, or the symbols
cannot be found, tls-exporter is reported as unavailable (None) instead of guessed.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import fcntl
import functools
import hashlib
import ipaddress
import logging
import os
import ssl
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from xmpp_server.config import ConfigError

if TYPE_CHECKING:
    from xmpp_server.config import TLSConfig

__all__ = [
    "CHANNEL_BINDING_TYPES",
    "available_channel_bindings",
    "certificate_der",
    "channel_binding",
    "client_context",
    "ensure_certificate",
    "server_context",
    "tls_exporter_supported",
]

log = logging.getLogger(__name__)

#: Channel-binding types we may offer, preferred first (XEP-0440 advertises them).
CHANNEL_BINDING_TYPES = ("tls-exporter", "tls-server-end-point", "tls-unique")

CERT_VALIDITY = datetime.timedelta(days=3650)
# A self-signed certificate this close to expiry, or missing a needed name, is made anew.
_RENEW_BEFORE = datetime.timedelta(days=30)


# --- certificate ------------------------------------------------------------------------------


def ensure_certificate(
    cfg_tls: TLSConfig,
    data_dir: Path,
    domain: str,
    extra_names: Sequence[str] = (),
) -> tuple[Path, Path]:
    """Return ``(cert_path, key_path)``.

    A configured ``tls.cert`` (and ``tls.key``, or the key inside the cert file) is returned as
    it is, after checking that the files exist. Otherwise a self-signed certificate for
    ``domain`` (SANs: domain, ``*.domain``, ``extra_names``) lives in
    ``<data_dir>/tls/<domain>.crt`` and ``.key``: generated on first use and reused afterwards,
    unless it no longer covers the names asked for or expires within 30 days.
    """
    if cfg_tls.cert:
        cert = Path(cfg_tls.cert).expanduser()
        key = Path(cfg_tls.key).expanduser() if cfg_tls.key else cert
        for name, path in (("tls.cert", cert), ("tls.key", key)):
            if not path.is_file():
                raise ConfigError(f"{name}: file not found: {path}")
        return cert, key

    domain = domain.strip().lower().rstrip(".")
    if not domain or "/" in domain or "\\" in domain or domain.startswith("."):
        raise ValueError(f"not a domain name usable as a file name: {domain!r}")
    names = _san_names(domain, extra_names)
    tls_dir = Path(data_dir) / "tls"
    tls_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert = tls_dir / f"{domain}.crt"
    key = tls_dir / f"{domain}.key"
    with _locked(tls_dir / ".lock"):
        reason = _unusable_reason(cert, key, names)
        if reason is None:
            return cert, key
        log.info("generating a self-signed certificate for %s (%s): %s", domain, reason, cert)
        key_pem, cert_pem = _self_signed(domain, names)
        _write_atomic(key, key_pem, 0o600)
        _write_atomic(cert, cert_pem, 0o644)
    return cert, key


def _san_names(domain: str, extra_names: Sequence[str]) -> list[str]:
    names = [domain]
    if not _is_ip(domain):
        names.append(f"*.{domain}")
    for name in extra_names:
        name = name.strip().lower().rstrip(".")
        head, _, tail = name.partition(".")
        if not _is_ip(domain) and tail == domain and head and head != "*":
            continue  # covered by *.domain
        if name and name not in names:
            names.append(name)
    return names


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _san_entries(names: Sequence[str]) -> list[x509.GeneralName]:
    return [
        x509.IPAddress(ipaddress.ip_address(n)) if _is_ip(n) else x509.DNSName(n) for n in names
    ]


def _unusable_reason(cert: Path, key: Path, names: Sequence[str]) -> str | None:
    """Why the stored self-signed pair cannot be reused, or None if it can."""
    if not cert.is_file() or not key.is_file():
        return "first start"
    try:
        loaded = x509.load_pem_x509_certificate(cert.read_bytes())
        san = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound, OSError) as exc:
        return f"unreadable certificate ({exc})"
    missing = [e for e in _san_entries(names) if e not in san]
    if missing:
        return f"names added: {', '.join(str(e.value) for e in missing)}"
    now = datetime.datetime.now(datetime.UTC)
    if loaded.not_valid_after_utc - now < _RENEW_BEFORE:
        return "expires soon"
    return None


def _self_signed(domain: str, names: Sequence[str]) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain[:64])])
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))  # tolerate peers' clock skew
        .not_valid_after(now + CERT_VALIDITY)
        .add_extension(x509.SubjectAlternativeName(_san_entries(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        # s2s uses the same certificate as client and as server.
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # the umask must not widen or narrow it
        with os.fdopen(fd, "wb") as fh:
            fd = -1
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """Serialise generation between processes sharing a data dir (cluster nodes)."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def certificate_der(cert: Path) -> bytes:
    """DER of the first certificate in a PEM file (our own, for tls-server-end-point)."""
    return x509.load_pem_x509_certificate(Path(cert).read_bytes()).public_bytes(
        serialization.Encoding.DER
    )


# --- contexts ---------------------------------------------------------------------------------


def _harden(ctx: ssl.SSLContext) -> None:
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION
    ctx.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """Server-side context: TLS 1.2+, no compression, no renegotiation, ALPN unset."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _harden(ctx)
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"tls.cert: cannot load certificate {cert} with key {key}: {exc}"
        ) from None
    return ctx


def client_context(verify: bool, cafile: Path | None = None) -> ssl.SSLContext:
    """Client-side context (outbound s2s): TLS 1.2+.

    With ``verify`` the peer's chain and host name are checked (against ``cafile`` or the
    system store); without it anything is accepted and the peer certificate is still available
    through ``getpeercert(binary_form=True)`` (for dialback-only federation).
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _harden(ctx)
    if verify:
        if cafile is not None:
            ctx.load_verify_locations(cafile=str(cafile))
        else:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


# --- channel binding --------------------------------------------------------------------------

_TLS_EXPORTER_LABEL = b"EXPORTER-Channel-Binding"  # RFC 9266 §2
_SSL_CTRL_GET_EXTMS_SUPPORT = 122  # OpenSSL ssl.h; SSL_get_extms_support() is this macro


class _LibSSL:
    """ctypes handles to the libssl that ``_ssl`` is linked against."""

    def __init__(self) -> None:
        # Opening the _ssl extension itself makes dlsym search its own dependencies: the very
        # libssl the ssl module uses, whatever other libssl might be installed.
        # PyDLL keeps the GIL, so the Python objects cannot change under the call.
        lib = ctypes.PyDLL(ssl._ssl.__file__)  # type: ignore[attr-defined]
        self.export = lib.SSL_export_keying_material
        self.export.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_int,
        ]
        self.export.restype = ctypes.c_int
        self.get_ex_data = lib.SSL_get_ex_data
        self.get_ex_data.argtypes = [ctypes.c_void_p, ctypes.c_int]
        self.get_ex_data.restype = ctypes.c_void_p
        self.ctrl = lib.SSL_ctrl
        self.ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
        self.ctrl.restype = ctypes.c_long
        # struct PySSLSocket { PyObject_HEAD; PyObject *Socket; SSL *ssl; ... }
        # object.__basicsize__ is the size of PyObject_HEAD in this build.
        self.ssl_offset = object.__basicsize__ + ctypes.sizeof(ctypes.c_void_p)
        self.warned = False


@functools.cache
def _libssl() -> _LibSSL | None:
    # The PySSLSocket layout read below is the one of CPython 3.8 to 3.14; on anything else the
    # pointer is not even looked at (dereferencing a wrong one could crash the process).
    if sys.implementation.name != "cpython" or not (3, 8) <= sys.version_info[:2] <= (3, 14):
        return None
    try:
        return _LibSSL()
    except (OSError, AttributeError) as exc:
        log.info("tls-exporter unavailable: %s", exc)
        return None


def tls_exporter_supported() -> bool:
    """Whether this interpreter can compute tls-exporter at all (see the module docstring)."""
    return _libssl() is not None


def _ssl_pointer(lib: _LibSSL, ssl_object: ssl.SSLObject | ssl.SSLSocket) -> int | None:
    inner = getattr(ssl_object, "_sslobj", None)
    if type(inner) is not ssl._ssl._SSLSocket:  # type: ignore[attr-defined]
        return None
    if type(inner).__basicsize__ < lib.ssl_offset + ctypes.sizeof(ctypes.c_void_p):
        return None
    pointer = ctypes.c_void_p.from_address(id(inner) + lib.ssl_offset).value
    # CPython sets the SSL's app data (ex_data index 0) to the _SSLSocket: proof that the
    # pointer read is the SSL of this object and not some other field.
    if not pointer or lib.get_ex_data(pointer, 0) != id(inner):
        if not lib.warned:
            lib.warned = True
            log.warning("tls-exporter unavailable: unexpected layout of ssl._ssl._SSLSocket")
        return None
    return pointer


def _tls_exporter(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> bytes | None:
    lib = _libssl()
    if lib is None:
        return None
    version = ssl_object.version()
    if version not in ("TLSv1.2", "TLSv1.3"):
        return None
    pointer = _ssl_pointer(lib, ssl_object)
    if pointer is None:
        return None
    # RFC 9266 §3: with TLS 1.2 only when the extended master secret (RFC 7627) is in use.
    if version == "TLSv1.2" and lib.ctrl(pointer, _SSL_CTRL_GET_EXTMS_SUPPORT, 0, None) != 1:
        return None
    out = ctypes.create_string_buffer(32)
    # RFC 9266 §2: 32 bytes, label "EXPORTER-Channel-Binding", empty (but present) context.
    ok = lib.export(pointer, out, 32, _TLS_EXPORTER_LABEL, len(_TLS_EXPORTER_LABEL), b"", 0, 1)
    return out.raw if ok == 1 else None


def _end_point_hash(der: bytes) -> bytes | None:
    """RFC 5929 §4.1: hash the certificate with its signature hash; MD5 and SHA-1 become SHA-256."""
    try:
        algorithm = x509.load_der_x509_certificate(der).signature_hash_algorithm
    except (ValueError, UnsupportedAlgorithm):
        return None
    if algorithm is None:  # Ed25519/Ed448: no hash, RFC 5929 leaves it undefined
        return None
    name = algorithm.name.lower().replace("-", "_")
    if name in ("md5", "sha1"):
        name = "sha256"
    try:
        return hashlib.new(name, der).digest()
    except ValueError:
        return None


def channel_binding(
    ssl_object: ssl.SSLObject | ssl.SSLSocket,
    kind: str,
    own_cert_der: bytes | None = None,
) -> bytes | None:
    """Channel-binding data of a finished TLS handshake, or None if unavailable or unknown.

    - ``tls-server-end-point`` (RFC 5929 §4): hash of the *server's* certificate. On the server
      side pass our own certificate's DER (``certificate_der(cert_path)``) as ``own_cert_der``,
      since Python cannot return the local certificate; on the client side the peer's is used.
    - ``tls-exporter`` (RFC 9266): TLS 1.3, or TLS 1.2 with extended master secret.
    - ``tls-unique`` (RFC 5929 §3): TLS 1.2 only (undefined for TLS 1.3, RFC 9266 §1).
    """
    if kind == "tls-server-end-point":
        # Our own certificate when we are the server, the peer's when we are the client.
        der = own_cert_der if ssl_object.server_side else ssl_object.getpeercert(binary_form=True)
        return _end_point_hash(der) if der else None
    if kind == "tls-exporter":
        return _tls_exporter(ssl_object)
    if kind == "tls-unique":
        if ssl_object.version() != "TLSv1.2":
            return None
        return ssl_object.get_channel_binding("tls-unique")
    return None


def available_channel_bindings(
    ssl_object: ssl.SSLObject | ssl.SSLSocket,
    own_cert_der: bytes | None = None,
) -> list[str]:
    """The channel-binding types computable on this connection, preferred first."""
    return [
        kind
        for kind in CHANNEL_BINDING_TYPES
        if channel_binding(ssl_object, kind, own_cert_der) is not None
    ]
