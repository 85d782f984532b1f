"""node recovery: heartbeats, SIP dialogs, agents' sign-ins

A node records when it was last known alive, every SIP dialog it holds (so that a restart
after a crash can send their BYEs) and its agents' sign-ins (restored on restart).

Revision ID: 0007_recovery
Revises: 0003_trunks
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_recovery"
down_revision: str | None = "0004_agents"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("alive_at", _TS, nullable=False),
        sa.Column("stopped_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_nodes")),
    )
    op.create_table(
        "sip_dialogs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("call_id", sa.String(length=255), nullable=False),
        sa.Column("dialog", sa.JSON(), nullable=False),
        sa.Column("peer", sa.JSON(), nullable=True),
        sa.Column("opened_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sip_dialogs")),
    )
    with op.batch_alter_table("sip_dialogs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sip_dialogs_node"), ["node"], unique=False)
    op.create_table(
        "agent_sign_ins",
        sa.Column("agent_id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("device", sa.String(length=500), nullable=True),
        sa.Column("ready", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_agent_sign_ins_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_agent_sign_ins")),
    )
    with op.batch_alter_table("agent_sign_ins", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_agent_sign_ins_tenant_id"), ["tenant_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("agent_sign_ins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agent_sign_ins_tenant_id"))
    op.drop_table("agent_sign_ins")
    with op.batch_alter_table("sip_dialogs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sip_dialogs_node"))
    op.drop_table("sip_dialogs")
    op.drop_table("nodes")
