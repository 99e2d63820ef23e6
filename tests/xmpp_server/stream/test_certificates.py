"""Server certificate (RFC 6120 §13.7.1.2): configured, or self-signed once and reused."""

from __future__ import annotations

import datetime
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.tls_pair import DOMAIN
from xmpp_server.config import ConfigError, TLSConfig
from xmpp_server.stream.certificates import ensure_certificate


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_certificate_generated_once(tmp_path: Path) -> None:
    cert, key = ensure_certificate(TLSConfig(), tmp_path, DOMAIN)
    assert cert == tmp_path / "tls" / f"{DOMAIN}.crt"
    assert key == tmp_path / "tls" / f"{DOMAIN}.key"
    first = (cert.read_bytes(), key.read_bytes())
    again = ensure_certificate(TLSConfig(), tmp_path, DOMAIN)
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
    cert, _ = ensure_certificate(TLSConfig(), tmp_path, DOMAIN)
    first = cert.read_bytes()
    cert, _ = ensure_certificate(
        TLSConfig(), tmp_path, DOMAIN, extra_names=["upload.other.test", "127.0.0.1"]
    )
    san = load_cert(cert).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [DOMAIN, f"*.{DOMAIN}", "upload.other.test"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert cert.read_bytes() != first
    # Names already covered (the wildcard covers conference.example.test): reused as is.
    second = cert.read_bytes()
    ensure_certificate(
        TLSConfig(), tmp_path, DOMAIN, extra_names=["conference.example.test", "upload.other.test"]
    )
    assert cert.read_bytes() == second


def test_ip_domain_gets_ip_san(tmp_path: Path) -> None:
    cert, _ = ensure_certificate(TLSConfig(), tmp_path, "127.0.0.2")
    san = load_cert(cert).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.2")]
    assert san.get_values_for_type(x509.DNSName) == []


def test_configured_certificate_returned_as_is(
    tmp_path: Path, cert_pair: tuple[Path, Path]
) -> None:
    cert, key = cert_pair
    cfg = TLSConfig(cert=str(cert), key=str(key))
    assert ensure_certificate(cfg, tmp_path / "elsewhere", DOMAIN) == (cert, key)
    assert not (tmp_path / "elsewhere").exists()
    # Key inside the certificate file.
    assert ensure_certificate(TLSConfig(cert=str(cert)), tmp_path, DOMAIN) == (cert, cert)


def test_configured_certificate_missing(tmp_path: Path) -> None:
    missing = tmp_path / "nope.crt"
    with pytest.raises(ConfigError, match=r"^tls\.cert: file not found: .*nope\.crt$"):
        ensure_certificate(TLSConfig(cert=str(missing)), tmp_path, DOMAIN)
    with pytest.raises(ValueError, match=r"^tls\.key: file not found"):
        cert, _ = ensure_certificate(TLSConfig(), tmp_path, DOMAIN)
        ensure_certificate(
            TLSConfig(cert=str(cert), key=str(tmp_path / "nope.key")), tmp_path, DOMAIN
        )
