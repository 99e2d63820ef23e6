"""The server itself: its domain and data directory, storage, the cluster link, resource limits."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from xmpp_server.config.types import NonNegative, Positive, Section, normalize_domain

STORAGE_SCHEMES = ("sqlite+aiosqlite", "postgresql+asyncpg")
REDIS_SCHEMES = ("redis", "rediss", "unix")


class ServerConfig(Section):
    domain: str = "localhost"
    data_dir: Path = Path("data")
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    # The event loop of ``xmppd serve``: uvloop when installed ("auto"), or one chosen.
    event_loop: Literal["auto", "asyncio", "uvloop"] = "auto"
    # The local admin endpoint that ``xmppd`` commands ask (``xmppd room list``): a Unix
    # socket only the server's user reaches. Empty: <data_dir>/admin.sock.
    admin_socket: str = ""

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        return normalize_domain(v)

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

    @field_validator("log_level", "event_loop", mode="before")
    @classmethod
    def _log_level(cls, v: Any) -> Any:
        return v.strip().lower() if isinstance(v, str) else v


class StorageConfig(Section):
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


class ClusterConfig(Section):
    redis_url: str = ""  # empty: a single node
    node: str = ""  # this node's name; empty: the host name (with --workers, plus "-<n>")
    # Seconds a node's lease lasts unless renewed (five times per period): a node that
    # cannot renew stops serving, and the others take over after it.
    lease_ttl: Annotated[float, Field(ge=0.5)] = 5.0

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, v: str) -> str:
        v = v.strip()
        if v and v.partition("://")[0] not in REDIS_SCHEMES:
            raise ValueError(f"scheme must be one of {', '.join(REDIS_SCHEMES)}")
        return v


class LimitsConfig(Section):
    max_stanza_bytes: Positive = 262144
    max_depth: Positive = 64
    max_attributes: Positive = 64
    max_offline_messages: Positive = 1000
    max_resources_per_user: Positive = 10
    # Per client stream, after login: faster clients are read from more slowly (nothing is
    # dropped); bursts of as many at once pass. 0: unlimited.
    stanzas_per_second: NonNegative = 0
    # Output waiting for a client that does not read (TCP, TLS, WebSocket, BOSH): above
    # this the stream is closed with policy-violation. Well above max_stanza_bytes.
    max_output_buffer_bytes: Annotated[int, Field(ge=65536)] = 4194304
    max_vcard_bytes: Positive = 65536  # a vCard a client stores (XEP-0054)
    max_pep_item_bytes: Positive = 131072  # one PEP item's payload (XEP-0163)
    max_pep_items: Positive = 256  # items one PEP node keeps ("max")
    max_pep_nodes: Positive = 256  # PEP nodes per user
    max_private_bytes: Positive = 262144  # a user's private XML, all of it (XEP-0049)
