"""Configuration loading: defaults, file + environment precedence, one-line errors."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest

from xmpp_server.config import AUTH_MECHANISMS, Config, ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "xmppd.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(env={})
    assert cfg.server.domain == "localhost"
    assert cfg.server.data_dir == tmp_path / "data"
    assert cfg.server.data_dir.is_absolute()
    assert cfg.server.log_level == "info"
    assert (cfg.c2s.bind, cfg.c2s.port, cfg.c2s.direct_tls_port) == ("127.0.0.1", 5222, 5223)
    assert cfg.c2s.require_tls is True
    assert (cfg.c2s.backlog, cfg.c2s.max_connections) == (1024, 10000)
    assert (cfg.c2s.ping_interval, cfg.c2s.ping_timeout) == (60, 30)
    assert cfg.s2s.enabled and cfg.s2s.port == 5269 and cfg.s2s.hosts == {}
    assert cfg.s2s.require_valid_certs is False
    assert cfg.http.enabled and cfg.http.port == 5280 and cfg.http.origins == []
    assert cfg.storage.url == f"sqlite+aiosqlite:///{tmp_path}/data/xmppd.db"
    assert (cfg.tls.cert, cfg.tls.key) == ("", "")
    assert cfg.registration.enabled
    assert (cfg.registration.rate_limit, cfg.registration.rate_period) == (5, 600)
    assert cfg.registration.exempt == [
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    ]
    assert cfg.auth.mechanisms == list(AUTH_MECHANISMS)
    assert cfg.auth.scram_iterations == 4096
    assert (cfg.auth.max_failures_per_account, cfg.auth.max_failed_accounts_per_ip) == (5, 10)
    assert (cfg.auth.max_refused_per_ip, cfg.auth.failure_window) == (100, 300)
    assert (cfg.auth.known_address_ttl, cfg.auth.secret_file) == (2592000, "")
    assert cfg.muc.domain == "conference.localhost"
    assert cfg.upload.domain == "upload.localhost"
    assert cfg.upload.max_size == 10485760
    assert (cfg.cluster.redis_url, cfg.cluster.node) == ("", "")
    assert cfg.limits.max_stanza_bytes == 262144
    assert (cfg.limits.max_depth, cfg.limits.max_attributes) == (64, 64)
    assert cfg.limits.max_offline_messages == 1000
    assert cfg.limits.max_resources_per_user == 10
    assert cfg.limits.stanzas_per_second == 0
    assert cfg.modules.enabled[:2] == ["disco", "ping"] and "offline" in cfg.modules.enabled


def test_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XMPPD_C2S_PORT", "15222")
    assert load_config().c2s.port == 15222


def test_file_then_env_precedence(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[server]
domain = "file.test"
[c2s]
port = 6222
direct_tls_port = 6223
backlog = 10
[modules]
enabled = ["disco"]
""",
    )
    cfg = load_config(path, env={})
    assert (cfg.server.domain, cfg.c2s.port, cfg.c2s.direct_tls_port) == ("file.test", 6222, 6223)

    cfg = load_config(
        path,
        env={
            "XMPPD_C2S_PORT": "15222",
            "XMPPD_C2S_DIRECT_TLS_PORT": "0",
            "XMPPD_C2S_REQUIRE_TLS": "false",
            "XMPPD_SERVER_DOMAIN": "A.Test",
            "XMPPD_MODULES_ENABLED": "disco, ping,roster",
            "XMPPD_S2S_HOSTS": "b.test=127.0.0.3:5269, c.test=[::1]:5270",
            "XMPPD_HTTP_ORIGINS": "*",
            "XMPPD_REGISTRATION_EXEMPT": "10.0.0.0/8,fd00::/8",
            "PATH": "/usr/bin",  # not ours: ignored
        },
    )
    assert cfg.c2s.port == 15222  # env beats file
    assert cfg.c2s.direct_tls_port == 0
    assert cfg.c2s.backlog == 10  # file beats default
    assert cfg.c2s.require_tls is False
    assert cfg.server.domain == "a.test"  # lowercased
    assert cfg.muc.domain == "conference.a.test"  # derived from the env domain
    assert cfg.modules.enabled == ["disco", "ping", "roster"]
    assert cfg.s2s.hosts == {"b.test": "127.0.0.3:5269", "c.test": "[::1]:5270"}
    assert cfg.http.origins == ["*"]
    assert cfg.registration.exempt == [
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("fd00::/8"),
    ]
    assert cfg.registration.is_exempt("10.1.2.3")
    assert not cfg.registration.is_exempt("192.0.2.1")


def test_env_empty_list(tmp_path: Path) -> None:
    cfg = load_config(env={"XMPPD_HTTP_ORIGINS": ""})
    assert cfg.http.origins == []


def test_derived_domains() -> None:
    cfg = load_config(env={"XMPPD_SERVER_DOMAIN": "example.org"})
    assert cfg.muc.domain == "conference.example.org"
    assert cfg.upload.domain == "upload.example.org"
    cfg = load_config(
        env={
            "XMPPD_SERVER_DOMAIN": "example.org",
            "XMPPD_MUC_DOMAIN": "Rooms.Example.org",
            "XMPPD_UPLOAD_DOMAIN": "files.example.net",
        }
    )
    assert cfg.muc.domain == "rooms.example.org"
    assert cfg.upload.domain == "files.example.net"


def test_storage_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(env={"XMPPD_SERVER_DATA_DIR": "var/xmpp"})
    assert cfg.server.data_dir == tmp_path / "var" / "xmpp"
    assert cfg.storage.url == f"sqlite+aiosqlite:///{tmp_path}/var/xmpp/xmppd.db"
    url = "postgresql+asyncpg://u:p@localhost/xmppd"
    assert load_config(env={"XMPPD_STORAGE_URL": url}).storage.url == url
    with pytest.raises(ConfigError, match=r"^storage\.url: scheme must be one of"):
        load_config(env={"XMPPD_STORAGE_URL": "mysql://localhost/x"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[c2s]\nprot = 5222\n", "unknown key: c2s.prot"),
        ("[c2ss]\nport = 5222\n", "unknown section: c2ss"),
        ("domain = 'x'\n", "unknown section: domain"),
        ("[c2s]\nport = 70000\n", "c2s.port: Input should be less than or equal to 65535"),
        ("[c2s]\nport = -1\n", "c2s.port: Input should be greater than or equal to 0"),
        ("[c2s]\nport = 'many'\n", "c2s.port: Input should be a valid integer"),
        ("[c2s]\nrequire_tls = 'perhaps'\n", "c2s.require_tls: Input should be a valid boolean"),
        ("[server]\ndomain = ''\n", "server.domain: must not be empty"),
        ("[server]\ndomain = 'a b'\n", "server.domain: not a valid domain name"),
        ("[server]\nlog_level = 'loud'\n", "server.log_level: Input should be 'debug'"),
        ("[limits]\nmax_depth = 0\n", "limits.max_depth: Input should be greater than 0"),
        ("[auth]\nmechanisms = ['PLAIN', 'DIGEST-MD5']\n", "auth.mechanisms: unknown mechanism"),
        ("[auth]\nmechanisms = []\n", "auth.mechanisms: at least one mechanism"),
        ("[registration]\nexempt = ['10.0.0.1/8']\n", "registration.exempt: 10.0.0.1/8 has host"),
        ("[registration]\nexempt = ['nonsense']\n", "registration.exempt: 'nonsense' does not"),
        ("[s2s]\nhosts = { 'b.test' = 'nohost' }\n", "s2s.hosts: b.test: expected 'host:port'"),
        ("[modules]\nenabled = 'disco'\n", "modules.enabled: Input should be a valid list"),
        ("[modules]\nenabled = ['disco', 3]\n", "modules.enabled[1]: Input should be a valid str"),
        ("[tls]\nkey = 'k.pem'\n", "tls.cert: required when tls.key is set"),
        ("c2s = 5\n", "c2s: Input should be a valid dictionary"),
    ],
)
def test_file_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={})
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"XMPPD_C2S_PROT": "1"},
            "unknown key: c2s.prot (from environment variable XMPPD_C2S_PROT)",
        ),
        ({"XMPPD_NOPE_PORT": "1"}, "unknown key: nope.port"),
        ({"XMPPD_C2S": "1"}, "unknown key: c2s"),
        ({"XMPPD_C2S_PORT": "x"}, "c2s.port: Input should be a valid integer"),
        ({"XMPPD_C2S_PORT": "99999"}, "c2s.port: Input should be less than or equal to 65535"),
        ({"XMPPD_S2S_HOSTS": "b.test"}, "s2s.hosts: expected 'name=value' pairs"),
    ],
)
def test_env_errors_name_the_key(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env=env)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_env_error_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"\(from environment variable XMPPD_C2S_PORT\)"):
        load_config(env={"XMPPD_C2S_PORT": "x"})


def test_several_errors_still_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "[c2s]\nport = 'x'\nbacklog = 'y'\n"), env={})
    assert str(info.value) == (
        "c2s.port: Input should be a valid integer, unable to parse string as an integer"
        " (and 1 more error)"
    )


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match=re.escape(f"{path}: config file not found")):
        load_config(path, env={})


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape(str(tmp_path))):
        load_config(tmp_path, env={})


def test_bad_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "[c2s\nport = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(info.value).startswith(f"{path}: invalid TOML:")
    assert "\n" not in str(info.value)


def test_config_error_is_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


def test_example_file_lists_every_key_with_its_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """conf/xmppd.example.toml, with every commented key uncommented, equals the defaults."""
    monkeypatch.chdir(tmp_path)
    example = (REPO / "conf" / "xmppd.example.toml").read_text(encoding="utf-8")
    key_line = re.compile(r"^# ([a-z0-9_]+) = ")
    uncommented = []
    seen: set[str] = set()
    section = ""
    for line in example.splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        match = key_line.match(line)
        if match:
            seen.add(f"{section}.{match.group(1)}")
            line = line[2:]
        uncommented.append(line)
    path = write(tmp_path, "\n".join(uncommented))
    assert load_config(path, env={}) == load_config(env={})
    expected = {
        f"{name}.{key}"
        for name, field in Config.model_fields.items()
        for key in field.annotation.model_fields  # type: ignore[union-attr]
    }
    assert seen == expected


def test_model_validate_directly() -> None:
    cfg = Config.model_validate({"server": {"domain": "x.test"}, "c2s": {"port": 0}})
    assert cfg.c2s.port == 0
    assert cfg.upload.domain == "upload.x.test"
