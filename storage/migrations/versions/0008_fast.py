"""FAST login tokens (XEP-0484).

Revision ID: 0008_fast
Revises: 0007_push
Create Date: 2025-01-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_fast"
down_revision: str | None = "0007_push"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than imported from storage.models: a migration is a fixed snapshot.
_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "fast_tokens",
        sa.Column("username", sa.String, nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("slot", sa.String(8), nullable=False),
        sa.Column("mechanism", sa.String, nullable=False),
        sa.Column("secret", sa.LargeBinary, nullable=False),
        sa.Column("issued_at", _WHEN, nullable=False),
        sa.Column("expires_at", _WHEN, nullable=False),
        sa.Column("last_count", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("username", "client", "slot", name="pk_fast_tokens"),
        sa.ForeignKeyConstraint(
            ["username"],
            ["users.username"],
            name="fk_fast_tokens_username_users",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("fast_tokens")
