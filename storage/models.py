"""Table definitions (SQLAlchemy Core), shared by the repositories and the migrations.

The schema itself is created only by the Alembic migrations in `storage/migrations/`; these
Table objects describe it for queries and must be kept in step with the latest migration.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

# Named constraints, so later migrations (SQLite batch mode) can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

# SQLite only autoincrements an "INTEGER PRIMARY KEY"; PostgreSQL gets a 64-bit identity.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes on both dialects (SQLite keeps no offset: it stores naive UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to storage; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _owner() -> sa.Column[str]:
    """The `username` column every per-user table carries; deleting the user deletes the row."""
    return sa.Column(
        "username",
        sa.String,
        sa.ForeignKey("users.username", ondelete="CASCADE"),
        nullable=False,
    )


users = sa.Table(
    "users",
    metadata,
    sa.Column("username", sa.String, primary_key=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

credentials = sa.Table(
    "credentials",
    metadata,
    _owner(),
    sa.Column("mechanism", sa.String, nullable=False),
    sa.Column("salt", sa.LargeBinary, nullable=False),
    sa.Column("iterations", sa.Integer, nullable=False),
    sa.Column("stored_key", sa.LargeBinary, nullable=False),
    sa.Column("server_key", sa.LargeBinary, nullable=False),
    sa.PrimaryKeyConstraint("username", "mechanism"),
)

last_activity = sa.Table(
    "last_activity",
    metadata,
    _owner(),
    sa.Column("logout_at", UTCDateTime, nullable=False),
    sa.Column("status", sa.Text, nullable=True),
    sa.PrimaryKeyConstraint("username"),
)

roster_versions = sa.Table(
    "roster_versions",
    metadata,
    _owner(),
    sa.Column("version", sa.Integer, nullable=False),
    sa.PrimaryKeyConstraint("username"),
)

roster_items = sa.Table(
    "roster_items",
    metadata,
    _owner(),
    sa.Column("jid", sa.String, nullable=False),
    sa.Column("name", sa.String, nullable=True),
    sa.Column("subscription", sa.String(4), nullable=False),
    sa.Column("ask", sa.Boolean, nullable=False),
    sa.Column("approved", sa.Boolean, nullable=False),
    sa.Column("groups", sa.Text, nullable=False),  # JSON array of group names
    sa.PrimaryKeyConstraint("username", "jid"),
)

roster_pending = sa.Table(
    "roster_pending",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _owner(),
    sa.Column("jid", sa.String, nullable=False),
    sa.Column("xml", sa.Text, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("username", "jid"),
    sa.Index(None, "username", "id"),
    sqlite_autoincrement=True,
)

offline_messages = sa.Table(
    "offline_messages",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _owner(),
    sa.Column("xml", sa.Text, nullable=False),
    sa.Column("stored_at", UTCDateTime, nullable=False),
    sa.Index(None, "username", "id"),
    # never reuse an id: a delivered-then-deleted id must not name a newer message
    sqlite_autoincrement=True,
)
