"""HTTP File Upload slots and files (XEP-0363).

Revision ID: 0006_uploads
Revises: 0005
Create Date: 2025-01-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_uploads"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than imported from storage.models: a migration is a fixed snapshot.
_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("username", sa.String, nullable=False),
        sa.Column("filename", sa.String, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("content_type", sa.String, nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("expires_at", _WHEN, nullable=False),
        sa.Column("stored_at", _WHEN, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_uploads"),
        sa.ForeignKeyConstraint(
            ["username"],
            ["users.username"],
            name="fk_uploads_username_users",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_uploads_username", "uploads", ["username"])
    op.create_index("ix_uploads_stored_at", "uploads", ["stored_at"])


def downgrade() -> None:
    op.drop_table("uploads")
