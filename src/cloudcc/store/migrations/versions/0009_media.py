"""a tenant's SRTP policy for SIP legs (SDES over TLS): off, optional or required

Revision ID: 0009_media
Revises: 0007_recovery
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_media"
down_revision: str | None = "0006_security"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "srtp_policy", sa.String(length=16), nullable=False, server_default="optional"
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("srtp_policy")
