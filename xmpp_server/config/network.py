"""Listeners and transports: client and server streams, components, HTTP, TLS certificates."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from xmpp_server.config.types import (
    Network,
    NonNegative,
    Port,
    Positive,
    Section,
    default_exempt,
    normalize_domain,
    parse_networks,
)


class C2SConfig(Section):
    bind: str = "127.0.0.1"
    port: Port = 5222  # 0: any free port (tests)
    direct_tls_port: Port = 5223  # 0: disabled
    require_tls: bool = True
    backlog: Positive = 1024
    ping_interval: NonNegative = 60  # 0: no XEP-0199 keepalive pings
    ping_timeout: Positive = 30
    max_connections: Positive = 10000
    # Streams one address may hold at once (TCP, direct TLS, WebSocket and BOSH together):
    # far above an office behind one NAT; behind an HTTP proxy its address is every client's.
    max_connections_per_ip: Positive = 500
    # Seconds from connecting until the client is authenticated and bound (RFC 6120 §6-§7),
    # however busy it keeps the stream; 0: no deadline (silence still counts: ping_interval).
    auth_timeout: NonNegative = 90
    # XEP-0198: how long a dropped session waits to be resumed (0: no resumption), and how
    # many stanzas may wait for the client's acknowledgement before the session is closed
    # (above muc.max_occupants: joining a room sends every occupant's presence at once).
    sm_resume_timeout: Annotated[int, Field(ge=0, le=86400)] = 300
    sm_max_unacked: Annotated[int, Field(ge=2, le=100000)] = 5000
    sm_max_unacked_bytes: Annotated[int, Field(ge=65536)] = 10 * 2**20
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


class S2SConfig(Section):
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
                out[normalize_domain(domain)] = _check_host_port(target)
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
        return [normalize_domain(domain) for domain in v]


class ComponentsConfig(Section):
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
                name = normalize_domain(domain)
            except ValueError as exc:
                raise ValueError(f"{domain}: {exc}") from None
            if not secret:
                raise ValueError(f"{domain}: the secret must not be empty")
            out[name] = secret
        return out


class HTTPConfig(Section):
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
    metrics_allow: list[Network] = Field(default_factory=default_exempt)
    healthz: bool = True  # /healthz (the process serves) and /readyz (and its services answer)
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
        return parse_networks(v)

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


class TLSConfig(Section):
    cert: str = ""  # empty: self-signed under <data_dir>/tls/, generated once
    key: str = ""  # empty with cert set: the key is in the cert file

    @model_validator(mode="after")
    def _pair(self) -> TLSConfig:
        if self.key and not self.cert:
            raise ValueError("tls.cert: required when tls.key is set")
        return self
