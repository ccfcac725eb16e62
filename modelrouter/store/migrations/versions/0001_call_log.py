"""The call log and the usage roll-ups.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

LATENCY_BUCKETS = 41


def upgrade() -> None:
    """Create ``calls`` and ``usage_rollup`` with their indexes."""
    op.create_table(
        "calls",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("request_id", sa.String(128)),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("surface", sa.String(8), nullable=False),
        sa.Column("endpoint", sa.String(200), nullable=False),
        sa.Column("key_id", sa.String(64)),
        sa.Column("key_name", sa.String(200)),
        sa.Column("team", sa.String(200)),
        sa.Column("route", sa.String(400)),
        sa.Column("requested_model", sa.String(200)),
        sa.Column("model", sa.String(200)),
        sa.Column("provider", sa.String(200)),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("error_code", sa.String(64)),
        sa.Column("stream", sa.Boolean, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("ttft_ms", sa.Float),
        sa.Column("input_tokens", sa.Integer),
        sa.Column("output_tokens", sa.Integer),
        sa.Column("cached_tokens", sa.Integer),
        sa.Column("cost_usd", sa.Float),
        sa.Column("fallbacks", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Text, nullable=False),
        sa.Column("user", sa.String(256)),
        sa.Column("tags", sa.Text),
        sa.Column("request_body", sa.Text),
        sa.Column("response_body", sa.Text),
    )
    op.create_index("ix_calls_ts", "calls", ["ts", "id"])
    op.create_index("ix_calls_model_ts", "calls", ["model", "ts", "id"])
    op.create_index("ix_calls_route_ts", "calls", ["route", "ts", "id"])
    for name, column in [("key", "key_id"), ("team", "team")]:
        op.create_index(
            f"ix_calls_{name}_ts",
            "calls",
            [column, "ts", "id"],
            sqlite_where=sa.text(f"{column} IS NOT NULL"),
            postgresql_where=sa.text(f"{column} IS NOT NULL"),
        )
    op.create_index(
        "ix_calls_errors_ts",
        "calls",
        ["ts", "id"],
        sqlite_where=sa.text("error_code IS NOT NULL"),
        postgresql_where=sa.text("error_code IS NOT NULL"),
    )
    op.create_index(
        "ix_calls_request_id",
        "calls",
        ["request_id"],
        sqlite_where=sa.text("request_id IS NOT NULL"),
        postgresql_where=sa.text("request_id IS NOT NULL"),
    )
    op.create_table(
        "usage_rollup",
        sa.Column("bucket_s", sa.Integer, nullable=False),
        sa.Column("t", sa.BigInteger, nullable=False),
        sa.Column("dim", sa.String(16), nullable=False),
        sa.Column("value", sa.String(200), nullable=False),
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.Column("errors", sa.BigInteger, nullable=False),
        sa.Column("fallbacks", sa.BigInteger, nullable=False),
        sa.Column("input_tokens", sa.BigInteger, nullable=False),
        sa.Column("output_tokens", sa.BigInteger, nullable=False),
        sa.Column("cached_tokens", sa.BigInteger, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("latency_ms_sum", sa.Float, nullable=False),
        *(sa.Column(f"lat_{i:02d}", sa.BigInteger, nullable=False) for i in range(LATENCY_BUCKETS)),
        sa.PrimaryKeyConstraint("bucket_s", "dim", "t", "value", name="pk_usage_rollup"),
    )


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("usage_rollup")
    op.drop_table("calls")
