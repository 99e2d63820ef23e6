"""``xmppd cert show``: the certificate the server presents, with the fingerprints clients
show; the self-signed one is made first if ``serve`` has not made it yet."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import ssl
import subprocess
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from tests.support.server import env_for
from xmpp_server.config import load_config
from xmpp_server.server import Server

ROOT = Path(__file__).resolve().parents[2]


def cert_show(cwd: Path, env: dict[str, str]) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("XMPPD_")}
    clean["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), clean.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-m", "xmpp_server", "cert", "show"], cwd=cwd,
                            env={**clean, **env}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return dict(re.split(r":\s+", line, maxsplit=1) for line in result.stdout.splitlines())


def colons(digest: bytes) -> str:
    return ":".join(f"{b:02X}" for b in digest)


def test_cert_show_makes_the_certificate_and_prints_its_fingerprints(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shown = cert_show(tmp_path, {"XMPPD_SERVER_DATA_DIR": str(data),
                                 "XMPPD_SERVER_DOMAIN": "chat.example"})
    path = Path(shown["certificate"].removesuffix(" (self-signed, made by xmppd)"))
    assert path == data / "tls" / "chat.example.crt"
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    der = cert.public_bytes(serialization.Encoding.DER)
    assert shown["SHA-256"] == colons(cert.fingerprint(hashes.SHA256()))
    assert shown["SHA-256"] == colons(hashlib.sha256(der).digest())
    assert shown["SHA-1"] == colons(hashlib.sha1(der).digest())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    assert shown["public key SHA-256"] == colons(hashlib.sha256(spki).digest())
    assert shown["mcabber"] == f"set ssl_fingerprint = SHA256:{hashlib.sha256(der).hexdigest()}"
    assert shown["key"] == str(data / "tls" / "chat.example.key")
    assert shown["names"].split(", ")[:2] == ["chat.example", "*.chat.example"]
    # made once: a second look shows the same certificate
    again = cert_show(tmp_path, {"XMPPD_SERVER_DATA_DIR": str(data),
                                 "XMPPD_SERVER_DOMAIN": "chat.example"})
    assert again["SHA-256"] == shown["SHA-256"]


async def test_the_certificate_shown_is_the_one_the_server_presents(tmp_path: Path) -> None:
    """A client that trusts the file shown (poezio's ca_cert_path, a system CA store)
    completes a verified handshake for the domain and sees the fingerprint shown."""
    env = env_for(tmp_path / "data", f"sqlite+aiosqlite:///{tmp_path / 'xmppd.db'}")
    shown = await asyncio.to_thread(cert_show, tmp_path, env)
    cafile = shown["certificate"].removesuffix(" (self-signed, made by xmppd)")
    config = load_config(None, env={**{k: v for k, v in os.environ.items()
                                        if not k.startswith("XMPPD_")}, **env})
    server = Server(config)
    await server.start()
    try:
        context = ssl.create_default_context(cafile=cafile)  # verifies chain and host name
        port = server.direct_tls_port
        assert port is not None
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context,
                                                  server_hostname="localhost")
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.close()
        await writer.wait_closed()
    finally:
        await server.stop()
    assert colons(hashlib.sha256(der).digest()) == shown["SHA-256"]
