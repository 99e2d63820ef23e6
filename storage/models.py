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
    # XEP-0359 id the recipient sees (NULL on rows stored before it was kept): stored once
    sa.Column("stanza_id", sa.String(64), nullable=True),
    # the server process holding the row in an unacknowledged XEP-0198 queue; NULL: waiting
    sa.Column("held", sa.String(64), nullable=True),
    sa.Index(None, "username", "id"),
    sa.Index(None, "username", "stanza_id", unique=True),
    sa.Index(None, "held"),
    # never reuse an id: a delivered-then-deleted id must not name a newer message
    sqlite_autoincrement=True,
)

# -- profiles and personal eventing (XEP-0054, XEP-0049, XEP-0163) ----------------------------

vcards = sa.Table(
    "vcards",
    metadata,
    _owner(),
    sa.Column("xml", sa.Text, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("username"),
)

private_xml = sa.Table(
    "private_xml",
    metadata,
    _owner(),
    sa.Column("key", sa.String, nullable=False),  # "{namespace}name" of the stored element
    sa.Column("xml", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("username", "key"),
)

pep_nodes = sa.Table(
    "pep_nodes",
    metadata,
    _owner(),
    sa.Column("node", sa.String, nullable=False),
    sa.Column("config", sa.Text, nullable=False),  # JSON object of the node configuration
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("username", "node"),
)

pep_items = sa.Table(
    "pep_items",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),  # publication order
    sa.Column("username", sa.String, nullable=False),
    sa.Column("node", sa.String, nullable=False),
    sa.Column("item_id", sa.String, nullable=False),
    sa.Column("xml", sa.Text, nullable=False),
    sa.Column("published_at", UTCDateTime, nullable=False),
    sa.ForeignKeyConstraint(
        ["username", "node"], ["pep_nodes.username", "pep_nodes.node"], ondelete="CASCADE"
    ),
    sa.UniqueConstraint("username", "node", "item_id"),
    sa.Index(None, "username", "node", "id"),
    sqlite_autoincrement=True,
)

# XEP-0313 message archives, one per user. `seq` is the arrival order (the writer inserts in the
# order messages were accepted); pages are ranges of (ts, seq) in the two indexes below, and an
# archive id (the XEP-0359 stanza-id, unique per owner) is turned into its (ts, seq) position
# through the unique index. `ts` alone serves the retention sweep across all archives.
archive = sa.Table(
    "archive",
    metadata,
    sa.Column("seq", BigId, primary_key=True, autoincrement=True),
    _owner(),
    sa.Column("id", sa.String(64), nullable=False),
    sa.Column("ts", UTCDateTime, nullable=False),
    sa.Column("with_jid", sa.String, nullable=False),  # bare JID of the other party
    sa.Column("with_resource", sa.String, nullable=True),
    sa.Column("direction", sa.String(3), nullable=False),  # "in" or "out"
    sa.Column("xml", sa.Text, nullable=False),
    sa.UniqueConstraint("username", "id"),
    sa.Index(None, "username", "ts", "seq"),
    sa.Index(None, "username", "with_jid", "ts", "seq"),
    sa.Index(None, "ts"),
)

# XEP-0441 archiving preferences; a user without a row has the configured default.
archive_prefs = sa.Table(
    "archive_prefs",
    metadata,
    _owner(),
    sa.Column("policy", sa.String(6), nullable=False),  # always | never | roster
    sa.Column("always", sa.Text, nullable=False),  # JSON array of JIDs
    sa.Column("never", sa.Text, nullable=False),  # JSON array of JIDs
    sa.PrimaryKeyConstraint("username"),
)

# XEP-0191 blocklists: one row per blocked JID (a prepared JID string: full, bare or domain).
blocklist = sa.Table(
    "blocklist",
    metadata,
    _owner(),
    sa.Column("jid", sa.String, nullable=False),
    sa.PrimaryKeyConstraint("username", "jid"),
)

# -- XEP-0045 multi-user chat: persistent rooms, their affiliations, and the room archive --------

muc_rooms = sa.Table(
    "muc_rooms",
    metadata,
    sa.Column("jid", sa.String, primary_key=True),  # room@service
    sa.Column("config", sa.Text, nullable=False),  # JSON object of the room configuration
    sa.Column("subject", sa.Text, nullable=True),
    sa.Column("subject_by", sa.String, nullable=True),  # nick of who set it
    sa.Column("secret", sa.String, nullable=False),  # per-room salt of XEP-0421 occupant ids
    sa.Column("created_at", UTCDateTime, nullable=False),
)

muc_affiliations = sa.Table(
    "muc_affiliations",
    metadata,
    sa.Column(
        "room",
        sa.String,
        sa.ForeignKey("muc_rooms.jid", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("jid", sa.String, nullable=False),  # bare JID (or domain) of the user
    sa.Column("affiliation", sa.String(7), nullable=False),  # owner admin member outcast
    sa.Column("nick", sa.String, nullable=True),  # reserved nick
    sa.Column("reason", sa.Text, nullable=True),
    sa.PrimaryKeyConstraint("room", "jid"),
    sa.Index(None, "jid"),
)

muc_archive = sa.Table(
    "muc_archive",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    # No foreign key: temporary rooms (not in muc_rooms) archive too, until destroyed.
    sa.Column("room", sa.String, nullable=False),
    sa.Column("stanza_id", sa.String, nullable=False),  # XEP-0359 id the room stamped
    sa.Column("nick", sa.String, nullable=False),
    sa.Column("sender", sa.String, nullable=True),  # real bare JID of the sender
    sa.Column("stored_at", UTCDateTime, nullable=False),
    sa.Column("xml", sa.Text, nullable=False),  # the message as broadcast, without 'to'
    sa.Column("retracted", sa.Boolean, nullable=False),
    sa.UniqueConstraint("room", "stanza_id"),
    sa.Index(None, "room", "id"),
    sqlite_autoincrement=True,
)

# XEP-0363 HTTP File Upload: one row per slot handed out; `stored_at` is set by the PUT.
uploads = sa.Table(
    "uploads",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    _owner(),
    sa.Column("filename", sa.String, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("content_type", sa.String, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("stored_at", UTCDateTime, nullable=True),
    sa.Index(None, "username"),
    sa.Index(None, "stored_at"),
)

# XEP-0357 push notifications: one row per app server (XMPP Push Service JID + node) that an
# account's client enabled; `options` is the publish-options form it gave, serialised.
push_registrations = sa.Table(
    "push_registrations",
    metadata,
    _owner(),
    sa.Column("jid", sa.String, nullable=False),
    sa.Column("node", sa.String, nullable=False),
    sa.Column("options", sa.Text, nullable=True),
    sa.Column("enabled_at", UTCDateTime, nullable=False),  # the last enable of this pair
    sa.PrimaryKeyConstraint("username", "jid", "node"),
)

# XEP-0484 FAST: login tokens of one client (its SASL2 user-agent id, hashed) of an account, in
# two slots, "new" (handed out, not used yet) and "current" (XEP-0484 §7.1). Only the SHA-256
# of a token is kept; `last_count` is the highest replay counter accepted with it.
fast_tokens = sa.Table(
    "fast_tokens",
    metadata,
    _owner(),
    sa.Column("client", sa.String(64), nullable=False),
    sa.Column("slot", sa.String(8), nullable=False),
    sa.Column("mechanism", sa.String, nullable=False),
    sa.Column("secret", sa.LargeBinary, nullable=False),
    sa.Column("issued_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("last_count", sa.BigInteger, nullable=True),
    sa.PrimaryKeyConstraint("username", "client", "slot"),
)
