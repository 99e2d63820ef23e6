"""Blocklists (XEP-0191).

Revision ID: 0003
Revises: 0002_archive
Create Date: 2025-01-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002_archive"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Written out rather than imported from storage.models: a migration is a fixed snapshot.
    op.create_table(
        "blocklist",
        sa.Column("username", sa.String, nullable=False),
        sa.Column("jid", sa.String, nullable=False),
        sa.ForeignKeyConstraint(
            ["username"],
            ["users.username"],
            name="fk_blocklist_username_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("username", "jid", name="pk_blocklist"),
    )


def downgrade() -> None:
    op.drop_table("blocklist")
