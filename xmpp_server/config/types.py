"""What the configuration sections share: the base model, field types and validators.

Every key has a default; unknown keys are errors (``extra="forbid"``); values are validated
once, at load. ``xmpp_server.config`` builds the root model from the sections and loads the file.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

ENV_PREFIX = "XMPPD_"

Port = Annotated[int, Field(ge=0, le=65535)]
Positive = Annotated[int, Field(gt=0)]
NonNegative = Annotated[int, Field(ge=0)]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(ValueError):
    """A bad configuration. ``str()`` is one line naming the key."""


class Section(BaseModel):
    """One TOML table of the configuration file."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, validate_default=True)


def normalize_domain(value: str) -> str:
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


def default_exempt() -> list[Network]:
    """The loopback networks: the default of address lists that trust the local host."""
    return [ipaddress.IPv4Network("127.0.0.0/8"), ipaddress.IPv6Network("::1/128")]


def parse_networks(v: Any) -> Any:
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
