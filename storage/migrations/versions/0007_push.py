"""XEP-0357 push notification registrations.

Revision ID: 0007_push
Revises: 0006_uploads
Create Date: 2025-01-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_push"
down_revision: str | None = "0006_uploads"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Written out rather than imported from storage.models: a migration is a fixed snapshot.
    op.create_table(
        "push_registrations",
        sa.Column("username", sa.String, nullable=False),
        sa.Column("jid", sa.String, nullable=False),
        sa.Column("node", sa.String, nullable=False),
        sa.Column("options", sa.Text, nullable=True),
        sa.Column("enabled_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["username"],
            ["users.username"],
            name="fk_push_registrations_username_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("username", "jid", "node", name="pk_push_registrations"),
    )


def downgrade() -> None:
    op.drop_table("push_registrations")
