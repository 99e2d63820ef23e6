"""The sections of the configuration file: one pydantic model per TOML table.

Every key has a default; unknown keys are errors (``extra="forbid"``); values are validated
once, at load. ``xmpp_server.config`` builds the root model from these and loads the file.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

ENV_PREFIX = "XMPPD_"

#: SASL mechanisms the server implements, strongest first.
AUTH_MECHANISMS = (
    "SCRAM-SHA-256-PLUS",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-256",
    "SCRAM-SHA-1",
    "PLAIN",
)

STORAGE_SCHEMES = ("sqlite+aiosqlite", "postgresql+asyncpg")
REDIS_SCHEMES = ("redis", "rediss", "unix")

Port = Annotated[int, Field(ge=0, le=65535)]
Positive = Annotated[int, Field(gt=0)]
NonNegative = Annotated[int, Field(ge=0)]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(ValueError):
    """A bad configuration. ``str()`` is one line naming the key."""


def _normalize_domain(value: str) -> str:
    """Lowercase a domain name and reject what cannot be a JID domainpart."""
    domain = value.strip().lower().rstrip(".")
    if not domain:
        raise ValueError("must not be empty")
    if any(ch.isspace() or ch in "@/\\:[]" for ch in domain):
        # An IPv6 literal would need brackets; IPv4 literals and DNS names pass.
        raise ValueError(f"not a valid domain name: {value!r}")
    if len(domain.encode()) > 1023:  # RFC 7622 §3.2
        raise ValueError("longer than 1023 bytes")
    return domain


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, validate_default=True)


class ServerConfig(_Section):
    domain: str = "localhost"
    data_dir: Path = Path("data")
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        return _normalize_domain(v)

    @field_validator("data_dir", mode="before")
    @classmethod
    def _data_dir_not_empty(cls, v: Any) -> Any:
        if isinstance(v, str) and not v.strip():
            raise ValueError("must not be empty")
        return v

    @field_validator("data_dir")
    @classmethod
    def _data_dir(cls, v: Path) -> Path:
        return Path(os.path.abspath(v.expanduser()))

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, v: Any) -> Any:
        return v.strip().lower() if isinstance(v, str) else v


class C2SConfig(_Section):
    bind: str = "127.0.0.1"
    port: Port = 5222  # 0: any free port (tests)
    direct_tls_port: Port = 5223  # 0: disabled
    require_tls: bool = True
    backlog: Positive = 1024
    ping_interval: NonNegative = 60  # 0: no XEP-0199 keepalive pings
    ping_timeout: Positive = 30
    max_connections: Positive = 10000
    # XEP-0198: how long a dropped session waits to be resumed (0: no resumption), and how
    # many stanzas may wait for the client's acknowledgement before the session is closed
    # (above muc.max_occupants: joining a room sends every occupant's presence at once).
    sm_resume_timeout: Annotated[int, Field(ge=0, le=86400)] = 300
    sm_max_unacked: Annotated[int, Field(ge=1, le=100000)] = 5000
    # XEP-0388 SASL2 (with XEP-0386 Bind 2) offered beside RFC 6120 SASL; XEP-0484 FAST login
    # tokens (inside SASL2): their lifetime in seconds (0: no FAST), and the age after which a
    # login with one hands out its successor.
    sasl2: bool = True
    fast_token_ttl: Annotated[int, Field(ge=0, le=10 * 365 * 86400)] = 1209600
    fast_token_rotation: NonNegative = 86400
    fast_key_file: str = ""  # key sealing stored FAST secrets; empty: <data_dir>/fast.key


def _check_host_port(value: str) -> str:
    """Validate ``host:port`` or ``[ipv6]:port``."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise ValueError(f"expected 'host:port', got {value!r}")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError(f"expected '[ipv6]:port', got {value!r}")
        ipaddress.IPv6Address(host[1:-1])
    elif ":" in host:
        raise ValueError(f"an IPv6 address needs brackets: '[{host}]:{port}'")
    return f"{host}:{int(port)}"


class S2SConfig(_Section):
    enabled: bool = True
    bind: str = "127.0.0.1"
    port: Port = 5269  # 0: any free port (tests)
    direct_tls_port: Port = 5270  # XEP-0368 direct TLS listener; 0: disabled
    hosts: dict[str, str] = Field(default_factory=dict)  # domain -> "host:port", overrides DNS
    nameservers: list[str] = Field(default_factory=list)  # "ip" or "ip:port"; empty: the system's
    require_valid_certs: bool = False
    ca_file: str = ""  # PEM CAs trusted for peer certificates; empty: the system store
    dialback: bool = True  # XEP-0220 for peers whose certificate does not validate
    dialback_secret: str = ""  # XEP-0185 key secret; empty: random per start (share in a cluster)
    bidi: bool = True  # XEP-0288 bidirectional streams
    connect_timeout: Annotated[float, Field(gt=0)] = 30.0  # seconds to connect and authenticate
    idle_timeout: Annotated[float, Field(gt=0)] = 300.0  # seconds before an idle stream closes
    max_connections: Positive = 1000  # inbound streams at once
    max_connections_per_domain: Positive = 8  # streams with one remote domain, each direction
    max_queue: Positive = 1000  # stanzas waiting for one outgoing stream before bouncing
    max_stanza_bytes: Positive = 262144  # larger stanzas close the stream (policy-violation)
    blocklist: list[str] = Field(default_factory=list)  # domains (and their subdomains) refused

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, v: dict[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for domain, target in v.items():
            try:
                out[_normalize_domain(domain)] = _check_host_port(target)
            except ValueError as exc:
                raise ValueError(f"{domain}: {exc}") from None
        return out

    @field_validator("nameservers")
    @classmethod
    def _nameservers(cls, v: list[str]) -> list[str]:
        out: list[str] = []
        for server in v:
            server = server.strip()
            try:
                ipaddress.ip_address(server)
                server = f"[{server}]:53" if ":" in server else f"{server}:53"
            except ValueError:
                server = _check_host_port(server)
                host = server.rpartition(":")[0].strip("[]")
                ipaddress.ip_address(host)  # an address, not a name to resolve first
            out.append(server)
        return out

    @field_validator("blocklist")
    @classmethod
    def _blocklist(cls, v: list[str]) -> list[str]:
        return [_normalize_domain(domain) for domain in v]


class ComponentsConfig(_Section):
    """XEP-0114 external components: one shared secret per component domain."""

    bind: str = "127.0.0.1"
    port: Port = 5347  # 0: any free port (tests); the listener runs when secrets is not empty
    secrets: dict[str, str] = Field(default_factory=dict)  # "bot.example.org" = "secret"

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, v: dict[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for domain, secret in v.items():
            try:
                name = _normalize_domain(domain)
            except ValueError as exc:
                raise ValueError(f"{domain}: {exc}") from None
            if not secret:
                raise ValueError(f"{domain}: the secret must not be empty")
            out[name] = secret
        return out


class HTTPConfig(_Section):
    enabled: bool = True
    bind: str = "127.0.0.1"
    port: Port = 5280
    origins: list[str] = Field(default_factory=list)  # "*" = any origin
    # The address browsers use (behind a TLS proxy: "https://chat.example.org"): the base of
    # upload URLs and of the XEP-0156 links; empty: http://<server.domain>:<port>.
    public_url: str = ""
    # WebSocket and BOSH streams count as encrypted (SASL PLAIN, c2s.require_tls): "auto" is
    # true when ``bind`` is a loopback address, i.e. only a local TLS proxy can reach us.
    consider_secure: Literal["auto"] | bool = "auto"
    metrics: bool = True  # /metrics (Prometheus text format)
    metrics_allow: list[Network] = Field(default_factory=lambda: _default_exempt())
    healthz: bool = True  # /healthz
    websocket_ping: NonNegative = 30  # seconds between WebSocket pings; 0: none
    bosh_max_wait: Positive = 60  # longest a BOSH request is held (XEP-0124 'wait')
    bosh_max_hold: Positive = 1  # most BOSH requests held at once ('hold')
    bosh_inactivity: Positive = 60  # seconds without a request before a BOSH session ends
    bosh_polling: NonNegative = 2  # shortest interval between empty polling requests
    bosh_max_body_bytes: Positive = 524288  # largest BOSH request body

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, v: str) -> str:
        v = v.strip().rstrip("/")
        if v and (not v.startswith(("http://", "https://")) or "?" in v or "#" in v):
            raise ValueError(f"expected 'http(s)://host[:port][/path]', got {v!r}")
        return v

    @field_validator("metrics_allow", mode="before")
    @classmethod
    def _metrics_allow(cls, v: Any) -> Any:
        return _networks(v)

    def is_secure(self) -> bool:
        """Whether WebSocket and BOSH streams count as encrypted (see ``consider_secure``)."""
        if self.consider_secure != "auto":
            return bool(self.consider_secure)
        try:
            return ipaddress.ip_address(self.bind).is_loopback
        except ValueError:
            return self.bind == "localhost"

    @field_validator("origins")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        out = []
        for origin in v:
            origin = origin.strip().rstrip("/")
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ValueError(f"expected '*' or 'http(s)://host[:port]', got {origin!r}")
            out.append(origin.lower())
        return out


class StorageConfig(_Section):
    url: str = ""  # empty: sqlite+aiosqlite:///<data_dir>/xmppd.db

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        v = v.strip()
        if v:
            scheme = v.partition("://")[0]
            if scheme not in STORAGE_SCHEMES or "://" not in v:
                raise ValueError(f"scheme must be one of {', '.join(STORAGE_SCHEMES)}")
        return v


class TLSConfig(_Section):
    cert: str = ""  # empty: self-signed under <data_dir>/tls/, generated once
    key: str = ""  # empty with cert set: the key is in the cert file

    @model_validator(mode="after")
    def _pair(self) -> TLSConfig:
        if self.key and not self.cert:
            raise ValueError("tls.cert: required when tls.key is set")
        return self


def _default_exempt() -> list[Network]:
    return [ipaddress.IPv4Network("127.0.0.0/8"), ipaddress.IPv6Network("::1/128")]


def _networks(v: Any) -> Any:
    """CIDR strings to networks (lists of them; anything else is left to pydantic)."""
    if not isinstance(v, list):
        return v
    out: list[Any] = []
    for item in v:
        if isinstance(item, str):
            try:
                item = ipaddress.ip_network(item.strip())
            except ValueError as exc:
                raise ValueError(str(exc)) from None
        out.append(item)
    return out


def in_networks(address: str, networks: list[Network]) -> bool:
    """Whether an IP address (as a string; IPv4-mapped IPv6 counts as IPv4) is in ``networks``."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in networks if net.version == ip.version)


class RegistrationConfig(_Section):
    enabled: bool = True
    rate_limit: Positive = 5  # registrations per IP per period
    rate_period: Positive = 600  # seconds
    exempt: list[Network] = Field(default_factory=lambda: _default_exempt())

    @field_validator("exempt", mode="before")
    @classmethod
    def _exempt(cls, v: Any) -> Any:
        return _networks(v)

    def is_exempt(self, address: str) -> bool:
        """Whether an IP address (as a string) is exempt from the registration limit."""
        return in_networks(address, self.exempt)


class AuthConfig(_Section):
    mechanisms: list[str] = Field(default_factory=lambda: list(AUTH_MECHANISMS))
    scram_iterations: Positive = 4096
    max_failures_per_ip: Positive = 10
    max_failures_per_account: Positive = 5
    failure_window: Positive = 300  # seconds
    lockout: Positive = 60  # seconds

    @field_validator("mechanisms")
    @classmethod
    def _mechanisms(cls, v: list[str]) -> list[str]:
        out: list[str] = []
        for mech in v:
            name = mech.strip().upper()
            if name not in AUTH_MECHANISMS:
                raise ValueError(f"unknown mechanism {mech!r}, known: {', '.join(AUTH_MECHANISMS)}")
            if name not in out:
                out.append(name)
        if not out:
            raise ValueError("at least one mechanism is needed")
        return out


class MucConfig(_Section):
    """XEP-0045 Multi-User Chat service."""

    domain: str = ""  # empty: conference.<server.domain>
    max_occupants: Positive = 1000  # per room; a room's own limit may be lower
    max_history: NonNegative = 50  # most messages a room keeps for the history sent on joining
    rate: NonNegative = 20  # messages per second a room accepts on average; 0 = unlimited
    burst: Positive = 50  # messages a room accepts at once above that rate

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        return _normalize_domain(v) if v.strip() else ""


class UploadConfig(_Section):
    """XEP-0363 HTTP File Upload."""

    domain: str = ""  # empty: upload.<server.domain>
    max_size: Positive = 10485760
    quota: NonNegative = 524288000  # bytes one user may hold (files + open slots); 0: no limit
    slot_expiry: Positive = 300  # seconds a PUT URL stays valid
    retention: NonNegative = 2592000  # seconds an uploaded file is kept; 0: forever
    cleanup_interval: Annotated[float, Field(gt=0)] = 3600.0  # seconds between cleanups

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        return _normalize_domain(v) if v.strip() else ""


class ClusterConfig(_Section):
    redis_url: str = ""  # empty: single node
    node: str = ""  # empty: derived by the cluster layer (e.g. host name + pid)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, v: str) -> str:
        v = v.strip()
        if v and v.partition("://")[0] not in REDIS_SCHEMES:
            raise ValueError(f"scheme must be one of {', '.join(REDIS_SCHEMES)}")
        return v


class LimitsConfig(_Section):
    max_stanza_bytes: Positive = 262144
    max_depth: Positive = 64
    max_attributes: Positive = 64
    max_offline_messages: Positive = 1000
    max_resources_per_user: Positive = 10
    stanzas_per_second: NonNegative = 0  # per connection; 0: unlimited
    max_vcard_bytes: Positive = 65536  # a vCard a client stores (XEP-0054)
    max_pep_item_bytes: Positive = 131072  # one PEP item's payload (XEP-0163)
    max_pep_items: Positive = 256  # items one PEP node keeps ("max")
    max_pep_nodes: Positive = 256  # PEP nodes per user
    max_private_bytes: Positive = 262144  # a user's private XML, all of it (XEP-0049)


class MamConfig(_Section):
    """XEP-0313 message archives."""

    default_policy: Literal["always", "roster", "never"] = "always"  # XEP-0441, until a user sets
    retention: NonNegative = 0  # seconds a message stays archived; 0: forever
    cleanup_interval: Annotated[float, Field(gt=0)] = 3600.0  # seconds between retention sweeps
    page_size: Positive = 50  # results of a query without RSM <max/>
    max_page_size: Positive = 250  # the most results one query returns, whatever <max/> says


class PushConfig(_Section):
    """XEP-0357 push notifications: what the server tells the clients' app servers."""

    include_body: bool = False  # the message text goes to the app server (a third party)
    include_sender: bool = False  # the sender's JID goes to the app server
    important_body: str = ""  # stands in for a body not sent (Prosody's "New Message!"); "": none
    max_registrations: Positive = 5  # app servers (JID + node) one account may enable
    min_interval: Annotated[float, Field(ge=0)] = 5.0  # seconds between pushes to one app server
    max_errors: Positive = 16  # transient failures in a row after which a registration is dropped


DEFAULT_MODULES = (
    "disco",
    "ping",
    "version",
    "time",
    "last",
    "register",
    "roster",
    "presence",
    "messages",
    "offline",
    "push",
    "mam",
    "stream_mgmt",
    "carbons",
    "csi",
    "blocking",
    "vcard",
    "pep",
    "avatars",
    "private",
    "bookmarks",
    "http_upload",
    "muc",
)


class ModulesConfig(_Section):
    enabled: list[str] = Field(default_factory=lambda: list(DEFAULT_MODULES))

    @field_validator("enabled")
    @classmethod
    def _enabled(cls, v: list[str]) -> list[str]:
        out: list[str] = []
        for name in v:
            name = name.strip()
            if not name:
                raise ValueError("empty module name")
            if name not in out:
                out.append(name)
        return out
