"""Offline messages double as the delivery journal: the stanza-id, and who holds a row.

A row whose ``held`` is set is a message written to a stream-management session and not yet
acknowledged by its client; ``held`` names the server process that holds it (its incarnation),
so a process that died leaves rows that its successor hands back to offline delivery. The
stanza-id (XEP-0359, the recipient's) is unique per user: a message is stored once.

Revision ID: 0009_offline_journal
Revises: 0008_fast
Create Date: 2025-01-09
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_offline_journal"
down_revision: str | None = "0008_fast"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("offline_messages") as batch:
        batch.add_column(sa.Column("stanza_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("held", sa.String(64), nullable=True))
    op.create_index("ix_offline_messages_username_stanza_id", "offline_messages",
                    ["username", "stanza_id"], unique=True)
    op.create_index("ix_offline_messages_held", "offline_messages", ["held"])


def downgrade() -> None:
    op.drop_index("ix_offline_messages_held", "offline_messages")
    op.drop_index("ix_offline_messages_username_stanza_id", "offline_messages")
    with op.batch_alter_table("offline_messages") as batch:
        batch.drop_column("held")
        batch.drop_column("stanza_id")
