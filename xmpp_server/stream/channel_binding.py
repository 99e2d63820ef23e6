"""Channel bindings (RFC 5929, RFC 9266) for SCRAM-*-PLUS, advertised per XEP-0440.

- ``channel_binding`` computes the tls-exporter, tls-server-end-point or tls-unique data of a
  connection. Advertise (XEP-0440) only the types for which it returns bytes;
  ``available_channel_bindings`` lists them.
- ``tls_exporter_supported`` says whether this interpreter can compute tls-exporter at all.

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

import ctypes
import functools
import hashlib
import logging
import ssl
import sys

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

__all__ = [
    "CHANNEL_BINDING_TYPES",
    "available_channel_bindings",
    "channel_binding",
    "tls_exporter_supported",
]

log = logging.getLogger(__name__)

#: Channel-binding types we may offer, preferred first (XEP-0440 advertises them).
CHANNEL_BINDING_TYPES = ("tls-exporter", "tls-server-end-point", "tls-unique")

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
      side pass our own certificate's DER (``certificates.certificate_der(cert_path)``) as
      ``own_cert_der``, since Python cannot return the local certificate; on the client side the
      peer's is used.
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
