"""Channel bindings (RFC 5929, RFC 9266): tls-server-end-point, tls-unique, tls-exporter."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import shutil
import ssl
import subprocess
import types
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from tests.support.tls_pair import DOMAIN, contexts, handshake
from xmpp_server.stream import tls
from xmpp_server.stream.certificates import certificate_der
from xmpp_server.stream.channel_binding import (
    available_channel_bindings,
    channel_binding,
    tls_exporter_supported,
)


def test_tls_server_end_point_sha256(cert_pair: tuple[Path, Path]) -> None:
    der = ssl.PEM_cert_to_DER_cert(cert_pair[0].read_text())
    expected = hashlib.sha256(der).digest()
    assert certificate_der(cert_pair[0]) == der
    server, client = handshake(*contexts(cert_pair, ssl.TLSVersion.TLSv1_3))
    assert channel_binding(server, "tls-server-end-point", own_cert_der=der) == expected
    # The client side hashes the peer's (the server's) certificate: the same value.
    assert channel_binding(client, "tls-server-end-point") == expected
    # The server cannot find its own certificate through the ssl module.
    assert channel_binding(server, "tls-server-end-point") is None


def _self_signed_der(
    algorithm: hashes.SHA384 | None,
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | None = None,
) -> bytes:
    key = key or ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "x")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, algorithm)
    )
    return cert.public_bytes(serialization.Encoding.DER)


def test_tls_server_end_point_hash_choice(cert_pair: tuple[Path, Path]) -> None:
    server, _ = handshake(*contexts(cert_pair, ssl.TLSVersion.TLSv1_3))
    der384 = _self_signed_der(hashes.SHA384())
    assert channel_binding(server, "tls-server-end-point", der384) == (
        hashlib.sha384(der384).digest()
    )
    der_ed = _self_signed_der(None, ed25519.Ed25519PrivateKey.generate())
    assert channel_binding(server, "tls-server-end-point", der_ed) is None


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls_server_end_point_sha1_becomes_sha256(
    tmp_path: Path, cert_pair: tuple[Path, Path]
) -> None:
    crt = tmp_path / "sha1.crt"
    result = subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            str(tmp_path / "sha1.key"),
            "-out",
            str(crt),
            "-days",
            "1",
            "-subj",
            "/CN=x",
            "-sha1",
        ],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip("this openssl refuses SHA-1 signatures")
    der = ssl.PEM_cert_to_DER_cert(crt.read_text())
    server, _ = handshake(*contexts(cert_pair, ssl.TLSVersion.TLSv1_3))
    assert channel_binding(server, "tls-server-end-point", der) == hashlib.sha256(der).digest()


def test_tls_unique_only_for_tls_1_2(cert_pair: tuple[Path, Path]) -> None:
    server, client = handshake(*contexts(cert_pair, ssl.TLSVersion.TLSv1_2))
    assert server.version() == "TLSv1.2"
    unique = channel_binding(server, "tls-unique")
    assert unique is not None and len(unique) == 12
    assert channel_binding(client, "tls-unique") == unique
    server, _ = handshake(*contexts(cert_pair, ssl.TLSVersion.TLSv1_3))
    assert channel_binding(server, "tls-unique") is None


def test_unknown_kind(cert_pair: tuple[Path, Path]) -> None:
    server, _ = handshake(*contexts(cert_pair, ssl.TLSVersion.TLSv1_3))
    assert channel_binding(server, "tls-nonsense") is None


needs_exporter = pytest.mark.skipif(
    not tls_exporter_supported(), reason="tls-exporter not reachable in this interpreter"
)


def _hkdf_expand_label(
    algorithm: hashes.HashAlgorithm, secret: bytes, label: bytes, context: bytes, length: int
) -> bytes:
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + bytes([len(context)]) + context
    return HKDFExpand(algorithm, length, info).derive(secret)


@needs_exporter
def test_tls_exporter_tls13_matches_rfc8446_derivation(
    tmp_path: Path, cert_pair: tuple[Path, Path]
) -> None:
    server_ctx, client_ctx = contexts(cert_pair, ssl.TLSVersion.TLSv1_3)
    keylog = tmp_path / "keylog.txt"
    client_ctx.keylog_filename = str(keylog)
    server, client = handshake(server_ctx, client_ctx)
    assert server.version() == "TLSv1.3"
    value = channel_binding(server, "tls-exporter")
    assert value is not None and len(value) == 32
    assert channel_binding(client, "tls-exporter") == value

    # Independently: RFC 8446 §7.5 from the EXPORTER_SECRET in the key log.
    secrets = [line.split() for line in keylog.read_text().splitlines() if line]
    exporter_secret = bytes.fromhex(next(s[2] for s in secrets if s[0] == "EXPORTER_SECRET"))
    cipher = server.cipher()
    assert cipher is not None
    algorithm: hashes.HashAlgorithm = hashes.SHA384() if "SHA384" in cipher[0] else hashes.SHA256()
    digest = hashes.Hash(algorithm)
    empty_hash = digest.finalize()
    derived = _hkdf_expand_label(
        algorithm, exporter_secret, b"EXPORTER-Channel-Binding", empty_hash, algorithm.digest_size
    )
    expected = _hkdf_expand_label(algorithm, derived, b"exporter", empty_hash, 32)
    assert value == expected

    # Another connection, another value.
    server2, _ = handshake(*contexts(cert_pair, ssl.TLSVersion.TLSv1_3))
    assert channel_binding(server2, "tls-exporter") != value


@needs_exporter
def test_tls_exporter_tls12_needs_extended_master_secret(cert_pair: tuple[Path, Path]) -> None:
    server, client = handshake(*contexts(cert_pair, ssl.TLSVersion.TLSv1_2))
    value = channel_binding(server, "tls-exporter")
    assert value is not None and len(value) == 32
    assert channel_binding(client, "tls-exporter") == value

    if ssl.OPENSSL_VERSION_INFO < (3, 0):
        pytest.skip("SSL_OP_NO_EXTENDED_MASTER_SECRET needs OpenSSL 3")
    server_ctx, client_ctx = contexts(cert_pair, ssl.TLSVersion.TLSv1_2)
    no_ems = ssl.Options(0x1)  # SSL_OP_NO_EXTENDED_MASTER_SECRET (OpenSSL 3.0)
    server_ctx.options |= no_ems
    client_ctx.options |= no_ems
    server, _ = handshake(server_ctx, client_ctx)
    assert channel_binding(server, "tls-exporter") is None
    assert channel_binding(server, "tls-unique") is not None


@needs_exporter
def test_available_channel_bindings(cert_pair: tuple[Path, Path]) -> None:
    der = certificate_der(cert_pair[0])
    server, _ = handshake(*contexts(cert_pair, ssl.TLSVersion.TLSv1_3))
    assert available_channel_bindings(server, der) == ["tls-exporter", "tls-server-end-point"]
    server, _ = handshake(*contexts(cert_pair, ssl.TLSVersion.TLSv1_2))
    assert available_channel_bindings(server, der) == [
        "tls-exporter",
        "tls-server-end-point",
        "tls-unique",
    ]


@needs_exporter
async def test_channel_bindings_over_asyncio_sockets(cert_pair: tuple[Path, Path]) -> None:
    """The objects asyncio hands out (transport 'ssl_object') work, over real sockets."""
    der = certificate_der(cert_pair[0])
    server_values: asyncio.Future[tuple[bytes | None, bytes | None]] = (
        asyncio.get_running_loop().create_future()
    )

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        obj = writer.get_extra_info("ssl_object")
        server_values.set_result(
            (
                channel_binding(obj, "tls-exporter"),
                channel_binding(obj, "tls-server-end-point", der),
            )
        )
        await reader.read()
        writer.close()

    server = await asyncio.start_server(
        on_client, "127.0.0.1", 0, ssl=tls.server_context(*cert_pair)
    )
    port = server.sockets[0].getsockname()[1]
    try:
        _, writer = await asyncio.open_connection(
            "127.0.0.1",
            port,
            ssl=tls.client_context(verify=True, cafile=cert_pair[0]),
            server_hostname=DOMAIN,
        )
        obj = writer.get_extra_info("ssl_object")
        assert isinstance(obj, ssl.SSLObject)
        client_values = (
            channel_binding(obj, "tls-exporter"),
            channel_binding(obj, "tls-server-end-point"),
        )
        assert await asyncio.wait_for(server_values, 10) == client_values
        assert client_values[0] is not None and len(client_values[0]) == 32
        assert client_values[1] == hashlib.sha256(der).digest()
        writer.close()
        await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()


def test_tls_exporter_refuses_foreign_objects() -> None:
    """Anything that is not a real ssl object is never dereferenced."""
    fake = types.SimpleNamespace(_sslobj=object(), version=lambda: "TLSv1.3", server_side=True)
    assert channel_binding(fake, "tls-exporter") is None  # type: ignore[arg-type]
