"""authentication guards: seen signed requests and login throttles

Revision ID: 0006_security
Revises: 0007_recovery
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_security"
down_revision: str | None = "0005_queues"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "seen_requests",
        sa.Column("access_key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("access_key", "value", name=op.f("pk_seen_requests")),
    )
    op.create_index("ix_seen_requests_expires", "seen_requests", ["expires_at"])
    op.create_table(
        "login_throttles",
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reported", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_login_throttles")),
    )


def downgrade() -> None:
    op.drop_table("login_throttles")
    op.drop_index("ix_seen_requests_expires", table_name="seen_requests")
    op.drop_table("seen_requests")
