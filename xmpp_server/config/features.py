"""Feature settings: registration, authentication, MUC, upload, archives, push, the module list."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from xmpp_server.config.types import (
    Network,
    NonNegative,
    Positive,
    Section,
    default_exempt,
    in_networks,
    normalize_domain,
    parse_networks,
)

#: SASL mechanisms the server implements, strongest first.
AUTH_MECHANISMS = (
    "SCRAM-SHA-256-PLUS",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-256",
    "SCRAM-SHA-1",
    "PLAIN",
)


class RegistrationConfig(Section):
    enabled: bool = True
    rate_limit: Positive = 5  # registrations per IP per period
    rate_period: Positive = 600  # seconds
    exempt: list[Network] = Field(default_factory=default_exempt)

    @field_validator("exempt", mode="before")
    @classmethod
    def _exempt(cls, v: Any) -> Any:
        return parse_networks(v)

    def is_exempt(self, address: str) -> bool:
        """Whether an IP address (as a string) is exempt from the registration limit."""
        return in_networks(address, self.exempt)


class AuthConfig(Section):
    mechanisms: list[str] = Field(default_factory=lambda: list(AUTH_MECHANISMS))
    scram_iterations: Positive = 4096
    # Login throttling (``xmpp_server/auth_throttle.py``), all counted over failure_window:
    max_failures_per_account: Positive = 5  # wrong credentials for one account
    max_failed_accounts_per_ip: Positive = 10  # different accounts failing from one address
    max_refused_per_ip: Positive = 100  # exchanges ended unchecked (aborted, refused, malformed)
    failure_window: Positive = 300  # seconds
    known_address_ttl: Positive = 2592000  # seconds a login exempts (account, address): 30 days
    secret_file: str = ""  # key of unknown accounts' made-up salts; empty: <data_dir>/auth.key

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


class MucConfig(Section):
    """XEP-0045 Multi-User Chat service."""

    domain: str = ""  # empty: conference.<server.domain>
    max_occupants: Positive = 1000  # per room; a room's own limit may be lower
    max_history: NonNegative = 50  # most messages a room keeps for the history sent on joining
    rate: NonNegative = 20  # messages per second a room accepts on average; 0 = unlimited
    burst: Positive = 50  # messages a room accepts at once above that rate
    # XEP-0045 §10.1.2: a room made with the MUC protocol is locked (others get item-not-found)
    # until its owner configures it or accepts the default, or until lock_timeout passes: as
    # Prosody's muc_room_locking and muc_room_lock_timeout, with their defaults.
    lock_new_rooms: bool = True
    lock_timeout: Annotated[float, Field(gt=0)] = 300.0  # seconds

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        return normalize_domain(v) if v.strip() else ""


class UploadConfig(Section):
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
        return normalize_domain(v) if v.strip() else ""


class MamConfig(Section):
    """XEP-0313 message archives."""

    default_policy: Literal["always", "roster", "never"] = "always"  # XEP-0441, until a user sets
    retention: NonNegative = 0  # seconds a message stays archived; 0: forever
    cleanup_interval: Annotated[float, Field(gt=0)] = 3600.0  # seconds between retention sweeps
    page_size: Positive = 50  # results of a query without RSM <max/>
    max_page_size: Positive = 250  # the most results one query returns, whatever <max/> says


class PushConfig(Section):
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
    "delay",
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


class ModulesConfig(Section):
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
