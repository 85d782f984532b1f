"""recordings say why they failed

A recording whose file could not be created or written (read-only or full storage) is
kept with state ``failed`` and the reason in ``failure_reason``.

Revision ID: 0008_ops
Revises: 0009_media
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_ops"
down_revision: str | None = "0009_media"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.add_column(sa.Column("failure_reason", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.drop_column("failure_reason")
