"""cluster state: agents' wrap-up kept across a routing move; SIP registrations shared

An agent in wrap-up keeps it when its tenant's routing moves to another node
(``agent_sign_ins.wrap_up``); the phones registered with one node are reachable from every
node (``sip_bindings``, RFC 3327 Path through the SIP edge).

Revision ID: 0010_cluster_state
Revises: 0008_ops
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_cluster_state"
down_revision: str | None = "0008_ops"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("agent_sign_ins", schema=None) as batch_op:
        batch_op.add_column(sa.Column("wrap_up", sa.JSON(), nullable=True))
    op.create_table(
        "sip_bindings",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("aor", sa.String(length=500), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("agent_id", sa.String(length=32), nullable=False),
        sa.Column("contact", sa.String(length=1000), nullable=False),
        sa.Column("received", sa.String(length=300), nullable=True),
        sa.Column("transport", sa.String(length=8), nullable=False),
        sa.Column("path", sa.JSON(), nullable=False),
        sa.Column("q", sa.Float(), nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("registered_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_sip_bindings_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sip_bindings")),
    )
    with op.batch_alter_table("sip_bindings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sip_bindings_node"), ["node"], unique=False)
        batch_op.create_index(
            "ix_sip_bindings_tenant_agent", ["tenant_id", "agent_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("sip_bindings")
    with op.batch_alter_table("agent_sign_ins", schema=None) as batch_op:
        batch_op.drop_column("wrap_up")
