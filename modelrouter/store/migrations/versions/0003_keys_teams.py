"""Virtual keys and run-time teams, and the change counter routers poll.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _limits() -> list[sa.Column[object]]:
    return [
        sa.Column("models", sa.Text),
        sa.Column("rpm", sa.Integer),
        sa.Column("tpm", sa.BigInteger),
        sa.Column("budget_usd", sa.Float),
        sa.Column("budget_period", sa.String(8), nullable=False),
    ]


def upgrade() -> None:
    """Create ``keys``, ``teams`` and ``changes`` (its one row at version 0)."""
    op.create_table(
        "keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("key_prefix", sa.String(16), nullable=False),
        sa.Column("team", sa.String(200)),
        *_limits(),
        sa.Column("expires_at", sa.BigInteger),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger),
        sa.Column("last_used_at", sa.BigInteger),
        sa.Column("previous_hash", sa.String(64)),
        sa.Column("previous_expires_at", sa.BigInteger),
    )
    op.create_index("ux_keys_key_hash", "keys", ["key_hash"], unique=True)
    op.create_table(
        "teams",
        sa.Column("name", sa.String(200), primary_key=True),
        *_limits(),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    changes = op.create_table(
        "changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("version", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(changes, [{"id": 1, "version": 0}])


def downgrade() -> None:
    """Drop the three tables (every virtual key and run-time team with them)."""
    op.drop_table("changes")
    op.drop_table("teams")
    op.drop_index("ux_keys_key_hash", table_name="keys")
    op.drop_table("keys")
