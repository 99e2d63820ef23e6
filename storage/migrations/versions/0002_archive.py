"""Message archives (XEP-0313) and archiving preferences (XEP-0441).

Revision ID: 0002_archive
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_archive"
down_revision: str | None = "0001"
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
        "archive",
        sa.Column("seq", _ID, autoincrement=True, nullable=False),
        *_owner("archive"),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("ts", _WHEN, nullable=False),
        sa.Column("with_jid", sa.String, nullable=False),
        sa.Column("with_resource", sa.String, nullable=True),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("xml", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_archive"),
        sa.UniqueConstraint("username", "id", name="uq_archive_username_id"),
    )
    # Every page is a range scan of one of these (see storage/archive.py).
    op.create_index("ix_archive_username_ts_seq", "archive", ["username", "ts", "seq"])
    op.create_index(
        "ix_archive_username_with_jid_ts_seq", "archive", ["username", "with_jid", "ts", "seq"]
    )
    op.create_index("ix_archive_ts", "archive", ["ts"])  # the retention sweep
    op.create_table(
        "archive_prefs",
        *_owner("archive_prefs"),
        sa.Column("policy", sa.String(6), nullable=False),
        sa.Column("always", sa.Text, nullable=False),
        sa.Column("never", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("username", name="pk_archive_prefs"),
    )


def downgrade() -> None:
    op.drop_table("archive_prefs")
    op.drop_index("ix_archive_ts", table_name="archive")
    op.drop_index("ix_archive_username_with_jid_ts_seq", table_name="archive")
    op.drop_index("ix_archive_username_ts_seq", table_name="archive")
    op.drop_table("archive")
