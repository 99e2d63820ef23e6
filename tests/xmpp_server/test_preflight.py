"""``xmppd check-config`` checks the files the configuration names: one line per problem,
naming the key, and exit status 2."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[2]


def check_config(tmp_path: Path, content: str) -> subprocess.CompletedProcess[str]:
    conf = tmp_path / "xmppd.toml"
    conf.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\n{content}')
    env = {k: v for k, v in os.environ.items() if not k.startswith("XMPPD_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "xmpp_server", "check-config", "-c", str(conf)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)


def problems(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert all(line.startswith("xmppd: ") for line in lines), result.stderr
    return [line.removeprefix("xmppd: ") for line in lines]


def make_pair(directory: Path, name: str, days: int = 30) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=60))
            .not_valid_after(now + datetime.timedelta(days=days))
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_defaults_pass_and_make_nothing(tmp_path: Path) -> None:
    result = check_config(tmp_path, "")
    assert result.returncode == 0, result.stderr
    assert "configuration ok" in result.stdout
    assert not (tmp_path / "data").exists()  # the server makes its files, not the check


def test_missing_certificate_and_key(tmp_path: Path) -> None:
    result = check_config(tmp_path, f'[tls]\ncert = "{tmp_path}/absent.crt"\n'
                                    f'key = "{tmp_path}/absent.key"\n')
    assert problems(result) == [f"tls.cert: file not found: {tmp_path}/absent.crt",
                                f"tls.key: file not found: {tmp_path}/absent.key"]


def test_certificate_that_does_not_parse_or_match(tmp_path: Path) -> None:
    cert, _ = make_pair(tmp_path, "a")
    _, other_key = make_pair(tmp_path, "b")
    result = check_config(tmp_path, f'[tls]\ncert = "{cert}"\nkey = "{other_key}"\n')
    [line] = problems(result)
    assert line.startswith(f"tls.key: {other_key} is not the unencrypted private key of {cert}")
    (tmp_path / "junk.crt").write_text("hello\n")
    result = check_config(tmp_path, f'[tls]\ncert = "{tmp_path}/junk.crt"\nkey = "{other_key}"\n')
    assert problems(result) == [f"tls.cert: {tmp_path}/junk.crt holds no PEM certificate"]


def test_expired_certificate(tmp_path: Path) -> None:
    cert, key = make_pair(tmp_path, "old", days=-1)
    [line] = problems(check_config(tmp_path, f'[tls]\ncert = "{cert}"\nkey = "{key}"\n'))
    assert line.startswith(f"tls.cert: {cert} expired on ")


def test_a_good_configured_pair_passes(tmp_path: Path) -> None:
    cert, key = make_pair(tmp_path, "good")
    result = check_config(tmp_path, f'[tls]\ncert = "{cert}"\nkey = "{key}"\n')
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("section", "key"), [("auth", "secret_file"), ("c2s", "fast_key_file")])
def test_key_files(tmp_path: Path, section: str, key: str) -> None:
    path = tmp_path / "secret.key"
    path.write_bytes(b"short")
    [line] = problems(check_config(tmp_path, f'[{section}]\n{key} = "{path}"\n'))
    assert line == f"{section}.{key}: {path} must hold exactly 32 octets"
    # one that does not exist yet is made by the server, where it can be made
    (tmp_path / "file").write_text("")
    [line] = problems(check_config(tmp_path, f'[{section}]\n{key} = "{tmp_path}/file/x.key"\n'))
    assert line == (f"{section}.{key}: cannot create {tmp_path}/file/x.key: "
                    f"{tmp_path}/file is not a directory")
    result = check_config(tmp_path, f'[{section}]\n{key} = "{tmp_path}/new/x.key"\n')
    assert result.returncode == 0, result.stderr


def test_s2s_ca_file(tmp_path: Path) -> None:
    [line] = problems(check_config(tmp_path, f'[s2s]\nca_file = "{tmp_path}/ca.pem"\n'))
    assert line == f"s2s.ca_file: file not found: {tmp_path}/ca.pem"


def test_data_dir_that_is_a_file_and_several_problems(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("")
    result = check_config(tmp_path, f'[tls]\ncert = "{tmp_path}/absent.crt"\n')
    assert problems(result) == [
        f"server.data_dir: {tmp_path}/data is not a directory",
        f"tls.cert: file not found: {tmp_path}/absent.crt",
        f"auth.secret_file: cannot create {tmp_path}/data/auth.key: "
        f"{tmp_path}/data is not a directory",
        f"c2s.fast_key_file: cannot create {tmp_path}/data/fast.key: "
        f"{tmp_path}/data is not a directory",
        f"storage.url: cannot create {tmp_path}/data/xmppd.db: "
        f"{tmp_path}/data is not a directory",
    ]


def test_self_signed_pair_the_server_cannot_mend(tmp_path: Path) -> None:
    """A missing self-signed file is made anew at start; a key that is not the
    certificate's would stop the server."""
    tls = tmp_path / "data" / "tls"
    tls.mkdir(parents=True)
    cert, _ = make_pair(tls, "localhost")
    _, foreign = make_pair(tmp_path, "foreign")
    foreign.replace(tls / "localhost.key")
    [line] = problems(check_config(tmp_path, ""))
    assert line.startswith(f"server.data_dir: {tls}/localhost.key is not the unencrypted "
                           f"private key of {cert} (")
    (tls / "localhost.key").unlink()
    assert check_config(tmp_path, "").returncode == 0
