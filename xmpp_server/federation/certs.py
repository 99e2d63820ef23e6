"""XEP-0178 / RFC 6125: validating a peer server's certificate for a domain.

A certificate is valid for a domain when its chain leads to a trusted CA (``s2s.ca_file``, or
the system store) and a DNS name of its subjectAltName matches the domain (wildcards per RFC
6125 §6.4.3), checked by ``cryptography``'s X.509 verifier as for a TLS server. The chain is
what the peer sent (leaf first); only DNS-ID is checked, not XmppAddr or SRV-ID.

Both directions accept any certificate in the TLS handshake and validate it afterwards, so
that a peer whose certificate does not validate can still be verified by dialback (XEP-0220)
instead of failing the handshake. For accepted connections this needs the server to *ask*
for a client certificate without OpenSSL rejecting the ones it cannot verify: Python's ``ssl``
has no verify callback, so ``request_client_certificates`` sets one that accepts everything
on the context's ``SSL_CTX`` through ctypes, after checking that the pointer it read is that
context's (its options and verify mode read back as Python reports them). Where that check
fails, no client certificate is requested and inbound peers use dialback.
"""

from __future__ import annotations

import ctypes
import datetime
import logging
import ssl
import sys
import warnings
from pathlib import Path

from cryptography import x509
from cryptography.x509.verification import DNSName, PolicyBuilder, Store, VerificationError

log = logging.getLogger(__name__)

_SSL_VERIFY_PEER = 0x01
_SSL_VERIFY_CLIENT_ONCE = 0x04
_VERIFY_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
# OpenSSL keeps this pointer for the lifetime of every context it is set on: it lives as long
# as the module.
_ACCEPT_ANY = _VERIFY_CB(lambda ok, store: 1)


def peer_chain(ssl_object: ssl.SSLObject | None) -> list[bytes]:
    """The certificates the peer sent (DER, leaf first), verified or not."""
    if ssl_object is None:
        return []
    inner = getattr(ssl_object, "_sslobj", None)
    getter = getattr(inner, "get_unverified_chain", None)  # CPython >= 3.10 (public in 3.13)
    if getter is not None:
        try:
            chain = getter() or []
            return [cert.public_bytes(ssl._ssl.ENCODING_DER) for cert in chain]  # type: ignore[attr-defined]
        except (ValueError, AttributeError, ssl.SSLError):
            pass
    leaf = ssl_object.getpeercert(binary_form=True)
    return [leaf] if leaf else []


class Validator:
    """Checks certificate chains against the trusted CAs, for a domain."""

    def __init__(self, ca_file: str = "") -> None:
        self.store = _load_store(ca_file)

    def valid_for(self, chain: list[bytes], domain: str) -> bool:
        if self.store is None or not chain or not domain:
            return False
        try:
            certs = [x509.load_der_x509_certificate(der) for der in chain]
            subject = DNSName(domain)
        except ValueError:
            return False
        verifier = (PolicyBuilder().store(self.store)
                    .time(datetime.datetime.now(datetime.UTC))
                    .build_server_verifier(subject))
        try:
            verifier.verify(certs[0], certs[1:])
        except VerificationError as exc:
            log.debug("certificate not valid for %s: %s", domain, exc)
            return False
        return True


def _load_store(ca_file: str) -> Store | None:
    if ca_file:
        paths = [Path(ca_file).expanduser()]
    else:
        defaults = ssl.get_default_verify_paths()
        paths = [Path(p) for p in (defaults.cafile, defaults.openssl_cafile) if p]
    for path in paths:
        try:
            with warnings.catch_warnings():
                # some system roots have serial numbers RFC 5280 no longer allows
                warnings.simplefilter("ignore")
                certs = x509.load_pem_x509_certificates(path.read_bytes())
        except (OSError, ValueError) as exc:
            if ca_file:
                log.error("s2s.ca_file: cannot load %s: %s", path, exc)
            continue
        if certs:
            return Store(certs)
    log.warning("no trusted CA certificates: peers are verified by dialback only")
    return None


def request_client_certificates(ctx: ssl.SSLContext) -> bool:
    """Make a server context ask for the client's certificate and accept whatever comes."""
    if ctx.verify_mode != ssl.CERT_NONE or ctx.post_handshake_auth:
        return False  # not the fresh server context this is written for
    if sys.implementation.name != "cpython" or not (3, 8) <= sys.version_info[:2] <= (3, 14):
        log.warning("cannot request peer certificates on this Python: inbound peers use dialback")
        return False  # the struct layout read below is known for these versions only
    try:
        lib = ctypes.CDLL(ssl._ssl.__file__)  # type: ignore[attr-defined]
        get_options = lib.SSL_CTX_get_options
        get_options.argtypes = [ctypes.c_void_p]
        get_options.restype = ctypes.c_uint64
        get_mode = lib.SSL_CTX_get_verify_mode
        get_mode.argtypes = [ctypes.c_void_p]
        get_mode.restype = ctypes.c_int
        set_verify = lib.SSL_CTX_set_verify
        set_verify.argtypes = [ctypes.c_void_p, ctypes.c_int, _VERIFY_CB]
        set_verify.restype = None
    except (OSError, AttributeError) as exc:
        log.warning("cannot request peer certificates (%s): inbound peers use dialback", exc)
        return False
    # struct PySSLContext { PyObject_HEAD; SSL_CTX *ctx; ... } (CPython 3.8 to 3.14)
    pointer = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
    if not pointer or get_options(pointer) != int(ctx.options) or get_mode(pointer) != 0:
        log.warning("cannot request peer certificates (unexpected ssl layout): "
                    "inbound peers use dialback")
        return False
    set_verify(pointer, _SSL_VERIFY_PEER | _SSL_VERIFY_CLIENT_ONCE, _ACCEPT_ANY)
    return ctx.verify_mode == ssl.CERT_OPTIONAL
