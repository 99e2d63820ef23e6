"""Plain values that cross the storage boundary: no SQLAlchemy types leave this package."""

from __future__ import annotations

from dataclasses import dataclass, field

SUBSCRIPTIONS = ("none", "to", "from", "both")  # RFC 6121 §2.1.2.5


@dataclass(frozen=True)
class ScramCredentials:
    """Salted SCRAM keys for one mechanism (RFC 5802 §3); the password itself is never stored."""

    mechanism: str  # "SCRAM-SHA-1" or "SCRAM-SHA-256"
    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes


@dataclass
class RosterItem:
    """One contact of a user's roster (RFC 6121 §2.1.2)."""

    jid: str  # bare JID string of the contact
    name: str | None = None
    subscription: str = "none"  # none | to | from | both
    ask: bool = False  # outbound subscription request pending ("ask='subscribe'")
    approved: bool = False  # pre-approved inbound subscription (RFC 6121 §3.4)
    groups: list[str] = field(default_factory=list)


class UserExists(Exception):
    """The username is already registered."""


class UnknownUser(LookupError):
    """A per-user write named a user that does not exist."""


def overloaded(exc: BaseException) -> bool:
    """Whether a storage call failed because every database connection stayed busy."""
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    return isinstance(exc, PoolTimeout)
