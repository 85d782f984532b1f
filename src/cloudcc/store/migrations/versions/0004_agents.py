"""agent sessions: reason codes, disposition codes, assigned devices

Tenants define their own not-ready reason codes (CEC state, time limit, auto-ready) and the
disposition codes of wrap-up; an admin may assign an agent a phone (``agents.device``).

Revision ID: 0004_agents
Revises: 0003_trunks
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_agents"
down_revision: str | None = "0003_trunks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _stamps() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "reason_codes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("cec_state", sa.String(length=16), nullable=False),
        sa.Column("max_seconds", sa.Integer(), nullable=True),
        sa.Column("auto_ready", sa.Boolean(), nullable=False),
        *_stamps(),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_reason_codes_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reason_codes")),
        sa.UniqueConstraint("tenant_id", "code", name=op.f("uq_reason_codes_tenant_id")),
    )
    with op.batch_alter_table("reason_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reason_codes_tenant_id"), ["tenant_id"], unique=False)
    op.create_table(
        "disposition_codes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        *_stamps(),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_disposition_codes_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disposition_codes")),
        sa.UniqueConstraint("tenant_id", "code", name=op.f("uq_disposition_codes_tenant_id")),
    )
    with op.batch_alter_table("disposition_codes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_disposition_codes_tenant_id"), ["tenant_id"], unique=False
        )
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("device", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_column("device")
    with op.batch_alter_table("disposition_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_disposition_codes_tenant_id"))
    op.drop_table("disposition_codes")
    with op.batch_alter_table("reason_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reason_codes_tenant_id"))
    op.drop_table("reason_codes")
