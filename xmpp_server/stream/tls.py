"""TLS contexts (RFC 6120 §5 STARTTLS, XEP-0368 direct TLS): TLS 1.2+ for c2s and s2s.

- ``server_context`` builds the context of the c2s/s2s listeners (STARTTLS and direct TLS) from
  the certificate ``certificates.ensure_certificate`` returns.
- ``client_context`` builds the context of outbound s2s, verifying or not.

Both refuse anything older than TLS 1.2, TLS compression and renegotiation. The certificate
itself lives in ``certificates.py``; channel bindings for SCRAM-*-PLUS in ``channel_binding.py``.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from xmpp_server.config import ConfigError

__all__ = ["client_context", "server_context"]


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
