"""Server certificate (RFC 6120 §13.7.1.2): the configured one, or a self-signed one made once.

- ``ensure_certificate`` returns the configured certificate, or generates a self-signed one once
  (EC P-256, ten years, SANs for the domain, ``*.domain`` and any extra names) under
  ``<data_dir>/tls/`` and reuses it on later starts; it is made anew when names are added or it
  expires within 30 days. Generation is serialised between processes sharing the data dir.
- ``server_certificate`` is the one ``xmppd serve`` and ``xmppd cert show`` use.
- ``certificate_der`` reads our own certificate as DER, for tls-server-end-point (RFC 5929 §4),
  since the ``ssl`` module cannot return the local certificate of a connection.
- ``fingerprint`` is what clients show to have a certificate trusted: a digest of its DER
  (or of its public key, ``spki=True``), colon-separated upper-case hex.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import ipaddress
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from xmpp_server.config import ConfigError

if TYPE_CHECKING:
    from xmpp_server.config import Config, TLSConfig

__all__ = ["CERT_VALIDITY", "certificate_der", "ensure_certificate", "fingerprint",
           "self_signed_paths", "server_certificate"]

log = logging.getLogger(__name__)

CERT_VALIDITY = datetime.timedelta(days=3650)
# A self-signed certificate this close to expiry, or missing a needed name, is made anew.
_RENEW_BEFORE = datetime.timedelta(days=30)


def server_certificate(config: Config) -> tuple[Path, Path]:
    """``(cert_path, key_path)`` of the server: the configured ``tls.cert``, or the self-signed
    one for the domain and the MUC and upload services, made now if there is none yet."""
    return ensure_certificate(config.tls, Path(config.server.data_dir), config.server.domain,
                              extra_names=[config.muc.domain, config.upload.domain])


def self_signed_paths(data_dir: Path, domain: str) -> tuple[Path, Path]:
    """Where the self-signed certificate of ``domain`` and its key live."""
    domain = domain.strip().lower().rstrip(".")
    if not domain or "/" in domain or "\\" in domain or domain.startswith("."):
        raise ValueError(f"not a domain name usable as a file name: {domain!r}")
    tls_dir = Path(data_dir) / "tls"
    return tls_dir / f"{domain}.crt", tls_dir / f"{domain}.key"


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

    cert, key = self_signed_paths(data_dir, domain)
    domain = domain.strip().lower().rstrip(".")
    names = _san_names(domain, extra_names)
    tls_dir = cert.parent
    tls_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
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


def fingerprint(cert: Path, algorithm: hashes.HashAlgorithm | None = None,
                spki: bool = False) -> str:
    """The fingerprint of the first certificate in a PEM file, ``AB:CD:...``: SHA-256 unless
    ``algorithm`` says otherwise, of the whole certificate or (``spki``) of its public key
    (SubjectPublicKeyInfo, which poezio pins)."""
    loaded = x509.load_pem_x509_certificate(Path(cert).read_bytes())
    algorithm = algorithm or hashes.SHA256()
    if spki:
        digest = hashes.Hash(algorithm)
        digest.update(loaded.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
        raw = digest.finalize()
    else:
        raw = loaded.fingerprint(algorithm)
    return raw.hex(":").upper()
