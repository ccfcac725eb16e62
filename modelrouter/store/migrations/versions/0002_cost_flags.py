"""Cost flags on the call log: price_unknown and usage_estimated.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add both flags; rows already stored read false."""
    for name in ("price_unknown", "usage_estimated"):
        op.add_column(
            "calls", sa.Column(name, sa.Boolean, nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    """Drop both flags."""
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("usage_estimated")
        batch.drop_column("price_unknown")
