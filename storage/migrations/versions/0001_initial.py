"""Initial schema: users, credentials, last activity, rosters, pending requests, offline messages.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than imported from storage.models: a migration is a fixed snapshot.
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_WHEN = sa.DateTime(timezone=True)


def _owner(table: str) -> list[sa.schema.SchemaItem]:
    return [
        sa.Column("username", sa.String, nullable=False),
        sa.ForeignKeyConstraint(
            ["username"],
            ["users.username"],
            name=f"fk_{table}_username_users",
            ondelete="CASCADE",
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("username", sa.String, nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("username", name="pk_users"),
    )
    op.create_table(
        "credentials",
        *_owner("credentials"),
        sa.Column("mechanism", sa.String, nullable=False),
        sa.Column("salt", sa.LargeBinary, nullable=False),
        sa.Column("iterations", sa.Integer, nullable=False),
        sa.Column("stored_key", sa.LargeBinary, nullable=False),
        sa.Column("server_key", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("username", "mechanism", name="pk_credentials"),
    )
    op.create_table(
        "last_activity",
        *_owner("last_activity"),
        sa.Column("logout_at", _WHEN, nullable=False),
        sa.Column("status", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("username", name="pk_last_activity"),
    )
    op.create_table(
        "roster_versions",
        *_owner("roster_versions"),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("username", name="pk_roster_versions"),
    )
    op.create_table(
        "roster_items",
        *_owner("roster_items"),
        sa.Column("jid", sa.String, nullable=False),
        sa.Column("name", sa.String, nullable=True),
        sa.Column("subscription", sa.String(4), nullable=False),
        sa.Column("ask", sa.Boolean, nullable=False),
        sa.Column("approved", sa.Boolean, nullable=False),
        sa.Column("groups", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("username", "jid", name="pk_roster_items"),
    )
    op.create_table(
        "roster_pending",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        *_owner("roster_pending"),
        sa.Column("jid", sa.String, nullable=False),
        sa.Column("xml", sa.Text, nullable=False),
        sa.Column("received_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_roster_pending"),
        sa.UniqueConstraint("username", "jid", name="uq_roster_pending_username_jid"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_roster_pending_username_id", "roster_pending", ["username", "id"])
    op.create_table(
        "offline_messages",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        *_owner("offline_messages"),
        sa.Column("xml", sa.Text, nullable=False),
        sa.Column("stored_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_offline_messages"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_offline_messages_username_id", "offline_messages", ["username", "id"])


def downgrade() -> None:
    for table in (
        "offline_messages",
        "roster_pending",
        "roster_items",
        "roster_versions",
        "last_activity",
        "credentials",
    ):
        op.drop_table(table)
    op.drop_table("users")
