"""Persistence for the server: repositories over SQLAlchemy async, on SQLite or PostgreSQL.

Callers see only `Storage`, its repositories and the plain values in `storage.types`;
nothing outside this package imports SQLAlchemy.
"""

from storage.engine import Storage, open_storage
from storage.types import RosterItem, ScramCredentials, UnknownUser, UserExists, overloaded
from storage.unavailable import StorageUnavailable

__all__ = ["RosterItem", "ScramCredentials", "Storage", "StorageUnavailable", "UnknownUser",
           "UserExists", "open_storage", "overloaded"]
