"""Profiles and personal eventing: vCards, private XML, PEP nodes and items.

Revision ID: 0004
Revises: 0003
Create Date: 2025-01-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
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
        "vcards",
        *_owner("vcards"),
        sa.Column("xml", sa.Text, nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("username", name="pk_vcards"),
    )
    op.create_table(
        "private_xml",
        *_owner("private_xml"),
        sa.Column("key", sa.String, nullable=False),
        sa.Column("xml", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("username", "key", name="pk_private_xml"),
    )
    op.create_table(
        "pep_nodes",
        *_owner("pep_nodes"),
        sa.Column("node", sa.String, nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("username", "node", name="pk_pep_nodes"),
    )
    op.create_table(
        "pep_items",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("username", sa.String, nullable=False),
        sa.Column("node", sa.String, nullable=False),
        sa.Column("item_id", sa.String, nullable=False),
        sa.Column("xml", sa.Text, nullable=False),
        sa.Column("published_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_pep_items"),
        sa.ForeignKeyConstraint(
            ["username", "node"],
            ["pep_nodes.username", "pep_nodes.node"],
            name="fk_pep_items_username_pep_nodes",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "username", "node", "item_id", name="uq_pep_items_username_node_item_id"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_pep_items_username_node_id", "pep_items", ["username", "node", "id"])


def downgrade() -> None:
    op.drop_index("ix_pep_items_username_node_id", table_name="pep_items")
    for table in ("pep_items", "pep_nodes", "private_xml", "vcards"):
        op.drop_table(table)
