"""Multi-user chat (XEP-0045): persistent rooms, their affiliations, and the room archive.

Revision ID: 0005
Revises: 0004
Create Date: 2025-01-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than imported from storage.models: a migration is a fixed snapshot.
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "muc_rooms",
        sa.Column("jid", sa.String, nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=True),
        sa.Column("subject_by", sa.String, nullable=True),
        sa.Column("secret", sa.String, nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("jid", name="pk_muc_rooms"),
    )
    op.create_table(
        "muc_affiliations",
        sa.Column("room", sa.String, nullable=False),
        sa.Column("jid", sa.String, nullable=False),
        sa.Column("affiliation", sa.String(7), nullable=False),
        sa.Column("nick", sa.String, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("room", "jid", name="pk_muc_affiliations"),
        sa.ForeignKeyConstraint(
            ["room"], ["muc_rooms.jid"], name="fk_muc_affiliations_room_muc_rooms",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_muc_affiliations_jid", "muc_affiliations", ["jid"])
    op.create_table(
        "muc_archive",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("room", sa.String, nullable=False),
        sa.Column("stanza_id", sa.String, nullable=False),
        sa.Column("nick", sa.String, nullable=False),
        sa.Column("sender", sa.String, nullable=True),
        sa.Column("stored_at", _WHEN, nullable=False),
        sa.Column("xml", sa.Text, nullable=False),
        sa.Column("retracted", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_muc_archive"),
        sa.UniqueConstraint("room", "stanza_id", name="uq_muc_archive_room_stanza_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_muc_archive_room_id", "muc_archive", ["room", "id"])


def downgrade() -> None:
    op.drop_table("muc_archive")
    op.drop_table("muc_affiliations")
    op.drop_table("muc_rooms")
