"""TLS: self-signed certificate, contexts, channel bindings (RFC 5929, RFC 9266)."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import ipaddress
import shutil
import ssl
import stat
import subprocess
import types
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from xmpp_server.config import ConfigError, TLSConfig
from xmpp_server.stream import tls

DOMAIN = "example.test"


# --- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def cert_pair(tmp_path: Path) -> tuple[Path, Path]:
    return tls.ensure_certificate(TLSConfig(), tmp_path, DOMAIN)


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def handshake(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> tuple[ssl.SSLObject, ssl.SSLObject]:
    """A complete TLS handshake between two in-memory SSLObjects (as asyncio uses them)."""
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=DOMAIN)
    done = {"server": False, "client": False}
    for _ in range(20):
        for name, obj in (("client", client), ("server", server)):
            if not done[name]:
                try:
                    obj.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            # Deliver TLS 1.3 session tickets and the like.
            for obj in (client, server):
                try:
                    obj.read(1)
                except ssl.SSLWantReadError:
                    pass
            return server, client
    raise AssertionError("handshake did not complete")


def contexts(
    cert_pair: tuple[Path, Path], version: ssl.TLSVersion
) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server_ctx = tls.server_context(*cert_pair)
    server_ctx.maximum_version = version
    client_ctx = tls.client_context(verify=True, cafile=cert_pair[0])
    return server_ctx, client_ctx


# --- certificate ------------------------------------------------------------------------------


def test_certificate_generated_once(tmp_path: Path) -> None:
    cert, key = tls.ensure_certificate(TLSConfig(), tmp_path, DOMAIN)
    assert cert == tmp_path / "tls" / f"{DOMAIN}.crt"
    assert key == tmp_path / "tls" / f"{DOMAIN}.key"
    first = (cert.read_bytes(), key.read_bytes())
    again = tls.ensure_certificate(TLSConfig(), tmp_path, DOMAIN)
    assert again == (cert, key)
    assert (cert.read_bytes(), key.read_bytes()) == first


def test_certificate_contents(cert_pair: tuple[Path, Path]) -> None:
    cert_path, key_path = cert_pair
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    cert = load_cert(cert_path)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [DOMAIN, f"*.{DOMAIN}"]
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP256R1)
    assert key.public_key() == cert.public_key()
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert datetime.timedelta(days=3649) < lifetime < datetime.timedelta(days=3652)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_extra_names_and_renewal_when_names_change(tmp_path: Path) -> None:
    cert, _ = tls.ensure_certificate(TLSConfig(), tmp_path, DOMAIN)
    first = cert.read_bytes()
    cert, _ = tls.ensure_certificate(
        TLSConfig(), tmp_path, DOMAIN, extra_names=["upload.other.test", "127.0.0.1"]
    )
    san = load_cert(cert).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [DOMAIN, f"*.{DOMAIN}", "upload.other.test"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert cert.read_bytes() != first
    # Names already covered (the wildcard covers conference.example.test): reused as is.
    second = cert.read_bytes()
    tls.ensure_certificate(
        TLSConfig(), tmp_path, DOMAIN, extra_names=["conference.example.test", "upload.other.test"]
    )
    assert cert.read_bytes() == second


def test_ip_domain_gets_ip_san(tmp_path: Path) -> None:
    cert, _ = tls.ensure_certificate(TLSConfig(), tmp_path, "127.0.0.2")
    san = load_cert(cert).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.2")]
    assert san.get_values_for_type(x509.DNSName) == []


def test_configured_certificate_returned_as_is(
    tmp_path: Path, cert_pair: tuple[Path, Path]
) -> None:
    cert, key = cert_pair
    cfg = TLSConfig(cert=str(cert), key=str(key))
    assert tls.ensure_certificate(cfg, tmp_path / "elsewhere", DOMAIN) == (cert, key)
    assert not (tmp_path / "elsewhere").exists()
    # Key inside the certificate file.
    assert tls.ensure_certificate(TLSConfig(cert=str(cert)), tmp_path, DOMAIN) == (cert, cert)


def test_configured_certificate_missing(tmp_path: Path) -> None:
    missing = tmp_path / "nope.crt"
    with pytest.raises(ConfigError, match=r"^tls\.cert: file not found: .*nope\.crt$"):
        tls.ensure_certificate(TLSConfig(cert=str(missing)), tmp_path, DOMAIN)
    with pytest.raises(ValueError, match=r"^tls\.key: file not found"):
        cert, _ = tls.ensure_certificate(TLSConfig(), tmp_path, DOMAIN)
        tls.ensure_certificate(
            TLSConfig(cert=str(cert), key=str(tmp_path / "nope.key")), tmp_path, DOMAIN
        )


# --- contexts ---------------------------------------------------------------------------------


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
    other_cert, _ = tls.ensure_certificate(TLSConfig(), tmp_path, "other.test")
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


# --- channel binding --------------------------------------------------------------------------


def test_tls_server_end_point_sha256(cert_pair: tuple[Path, Path]) -> None:
    der = ssl.PEM_cert_to_DER_cert(cert_pair[0].read_text())
    expected = hashlib.sha256(der).digest()
    assert tls.certificate_der(cert_pair[0]) == der
    server, client = handshake(*contexts(cert_pair, ssl.TLSVersion.TLSv1_3))
    assert tls.channel_binding(server, "tls-server-end-point", own_cert_der=der) == expected
    # The client side hashes the peer's (the server's) certificate: the same value.
    assert tls.channel_binding(client, "tls-server-end-point") == expected
    # The server cannot find its own certificate through the ssl module.
    assert tls.channel_binding(server, "tls-server-end-point") is None


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
    assert tls.channel_binding(server, "tls-server-end-point", der384) == (
        hashlib.sha384(der384).digest()
    )
    der_ed = _self_signed_der(None, ed25519.Ed25519PrivateKey.generate())
    assert tls.channel_binding(server, "tls-server-end-point", der_ed) is None


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
    assert tls.channel_binding(server, "tls-server-end-point", der) == hashlib.sha256(der).digest()


def test_tls_unique_only_for_tls_1_2(cert_pair: tuple[Path, Path]) -> None:
    server, client = handshake(*contexts(cert_pair, ssl.TLSVersion.TLSv1_2))
    assert server.version() == "TLSv1.2"
    unique = tls.channel_binding(server, "tls-unique")
    assert unique is not None and len(unique) == 12
    assert tls.channel_binding(client, "tls-unique") == unique
    server, _ = handshake(*contexts(cert_pair, ssl.TLSVersion.TLSv1_3))
    assert tls.channel_binding(server, "tls-unique") is None


def test_unknown_kind(cert_pair: tuple[Path, Path]) -> None:
    server, _ = handshake(*contexts(cert_pair, ssl.TLSVersion.TLSv1_3))
    assert tls.channel_binding(server, "tls-nonsense") is None


needs_exporter = pytest.mark.skipif(
    not tls.tls_exporter_supported(), reason="tls-exporter not reachable in this interpreter"
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
    value = tls.channel_binding(server, "tls-exporter")
    assert value is not None and len(value) == 32
    assert tls.channel_binding(client, "tls-exporter") == value

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
    assert tls.channel_binding(server2, "tls-exporter") != value


@needs_exporter
def test_tls_exporter_tls12_needs_extended_master_secret(cert_pair: tuple[Path, Path]) -> None:
    server, client = handshake(*contexts(cert_pair, ssl.TLSVersion.TLSv1_2))
    value = tls.channel_binding(server, "tls-exporter")
    assert value is not None and len(value) == 32
    assert tls.channel_binding(client, "tls-exporter") == value

    if ssl.OPENSSL_VERSION_INFO < (3, 0):
        pytest.skip("SSL_OP_NO_EXTENDED_MASTER_SECRET needs OpenSSL 3")
    server_ctx, client_ctx = contexts(cert_pair, ssl.TLSVersion.TLSv1_2)
    no_ems = ssl.Options(0x1)  # SSL_OP_NO_EXTENDED_MASTER_SECRET (OpenSSL 3.0)
    server_ctx.options |= no_ems
    client_ctx.options |= no_ems
    server, _ = handshake(server_ctx, client_ctx)
    assert tls.channel_binding(server, "tls-exporter") is None
    assert tls.channel_binding(server, "tls-unique") is not None


@needs_exporter
def test_available_channel_bindings(cert_pair: tuple[Path, Path]) -> None:
    der = tls.certificate_der(cert_pair[0])
    server, _ = handshake(*contexts(cert_pair, ssl.TLSVersion.TLSv1_3))
    assert tls.available_channel_bindings(server, der) == ["tls-exporter", "tls-server-end-point"]
    server, _ = handshake(*contexts(cert_pair, ssl.TLSVersion.TLSv1_2))
    assert tls.available_channel_bindings(server, der) == [
        "tls-exporter",
        "tls-server-end-point",
        "tls-unique",
    ]


@needs_exporter
async def test_channel_bindings_over_asyncio_sockets(cert_pair: tuple[Path, Path]) -> None:
    """The objects asyncio hands out (transport 'ssl_object') work, over real sockets."""
    der = tls.certificate_der(cert_pair[0])
    server_values: asyncio.Future[tuple[bytes | None, bytes | None]] = (
        asyncio.get_running_loop().create_future()
    )

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        obj = writer.get_extra_info("ssl_object")
        server_values.set_result(
            (
                tls.channel_binding(obj, "tls-exporter"),
                tls.channel_binding(obj, "tls-server-end-point", der),
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
            tls.channel_binding(obj, "tls-exporter"),
            tls.channel_binding(obj, "tls-server-end-point"),
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
    assert tls.channel_binding(fake, "tls-exporter") is None  # type: ignore[arg-type]
