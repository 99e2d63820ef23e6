"""``xmppd cert show``: the certificate ``serve`` uses, and the fingerprints clients show when
they ask whether to trust it (docs/clients.md).

The certificate is the configured ``tls.cert``, or the self-signed one, made now if ``serve``
has not made it yet (the same call). Its fingerprints: SHA-256 of the certificate (Gajim,
Conversations, Dino, Psi, profanity 0.16+), SHA-1 (profanity before 0.16, which shows it as
lower-case hex without colons), SHA-256 of its public key (poezio's ``certificate`` option),
and mcabber's ``ssl_fingerprint`` form (``SHA256:`` and lower-case hex, with loudmouth 1.5.3+).
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from xmpp_server.stream import certificates

if TYPE_CHECKING:
    from xmpp_server.config import Config

__all__ = ["rows"]


def rows(config: Config) -> list[tuple[str, str]]:
    """``(label, value)`` lines: paths, names, expiry and fingerprints."""
    cert, key = certificates.server_certificate(config)
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    try:
        san = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = ", ".join(str(name.value) for name in san)
    except x509.ExtensionNotFound:
        names = loaded.subject.rfc4514_string()
    origin = "configured in tls.cert" if config.tls.cert else "self-signed, made by xmppd"
    expiry = loaded.not_valid_after_utc
    expired = expiry < datetime.datetime.now(datetime.UTC)
    sha256 = certificates.fingerprint(cert)
    return [
        ("certificate", f"{cert.resolve()} ({origin})"),
        ("key", str(key.resolve())),
        ("names", names),
        ("valid until", f"{expiry:%Y-%m-%d}" + (" (EXPIRED)" if expired else "")),
        ("SHA-256", sha256),
        ("SHA-1", certificates.fingerprint(cert, hashes.SHA1())),
        ("public key SHA-256", certificates.fingerprint(cert, spki=True)),
        ("mcabber", f"set ssl_fingerprint = SHA256:{sha256.replace(':', '').lower()}"),
    ]
