"""TLS contexts (RFC 6120 §5): TLS 1.2+, no compression or renegotiation, verification."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from tests.support.tls_pair import handshake
from xmpp_server.config import ConfigError, TLSConfig
from xmpp_server.stream import tls
from xmpp_server.stream.certificates import ensure_certificate


def test_server_context_settings(cert_pair: tuple[Path, Path]) -> None:
    ctx = tls.server_context(*cert_pair)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.options & ssl.OP_NO_COMPRESSION
    assert ctx.options & ssl.OP_NO_RENEGOTIATION
    assert ctx.options & ssl.OP_NO_TLSv1_1 or ctx.minimum_version > ssl.TLSVersion.TLSv1_1


def _tls_1_1_client() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("ALL:@SECLEVEL=0")  # OpenSSL 3 otherwise refuses TLS 1.1 itself
    return ctx


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_server_refuses_tls_1_1(cert_pair: tuple[Path, Path]) -> None:
    with pytest.raises(ssl.SSLError, match=r"UNSUPPORTED_PROTOCOL|unsupported protocol|version"):
        handshake(tls.server_context(*cert_pair), _tls_1_1_client())
    # Control: the same client does get TLS 1.1 from a server that allows it, so the refusal
    # above is the server's minimum_version.
    lax = tls.server_context(*cert_pair)
    lax.minimum_version = ssl.TLSVersion.TLSv1
    lax.set_ciphers("ALL:@SECLEVEL=0")
    try:
        server, _ = handshake(lax, _tls_1_1_client())
    except ssl.SSLError:
        pytest.skip("this OpenSSL build cannot speak TLS 1.1 at all")
    assert server.version() == "TLSv1.1"


def test_server_context_bad_key(tmp_path: Path, cert_pair: tuple[Path, Path]) -> None:
    other_cert, _ = ensure_certificate(TLSConfig(), tmp_path, "other.test")
    with pytest.raises(ConfigError, match=r"^tls\.cert: cannot load certificate"):
        tls.server_context(other_cert, cert_pair[1])


def test_client_context(cert_pair: tuple[Path, Path]) -> None:
    ctx = tls.client_context(verify=False)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_NONE and not ctx.check_hostname
    ctx = tls.client_context(verify=True, cafile=cert_pair[0])
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    _, client = handshake(tls.server_context(*cert_pair), ctx)  # verifies SAN + chain
    assert client.version() == "TLSv1.3"


def test_client_context_rejects_unknown_ca(cert_pair: tuple[Path, Path]) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(tls.server_context(*cert_pair), tls.client_context(verify=True))
