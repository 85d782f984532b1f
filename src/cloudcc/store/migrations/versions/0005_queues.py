"""queues: repair stored strategies the engine does not have; voicemail mailboxes and messages

Queues created with ``preferred_agent`` as their strategy (the API accepted it; the engine has
no such strategy, so the tenant's routing failed to load) route by ``longest_idle``, the
default: a preferred agent is the engine's per-contact overlay on any strategy, not one.

Voicemail gets ``mailboxes`` (one per queue or agent, with its maximum length, silence and
end key) and ``voicemail_messages`` (each message, its recording and whether it was read).

Revision ID: 0005_queues
Revises: 0007_recovery
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_queues"
down_revision: str | None = "0007_recovery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: cloudcc.routing.model.Strategy at this revision (a migration must not import the code).
_STRATEGIES = ("longest_idle", "most_skilled", "least_occupied", "round_robin", "ring_all")


def upgrade() -> None:
    queues = sa.table("queues", sa.column("strategy", sa.String))
    op.execute(
        queues.update().where(queues.c.strategy.not_in(_STRATEGIES)).values(strategy="longest_idle")
    )
    op.create_table(
        "mailboxes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("owner_type", sa.String(length=8), nullable=False),
        sa.Column("owner_id", sa.String(length=32), nullable=False),
        sa.Column("max_seconds", sa.Integer(), nullable=False),
        sa.Column("silence_seconds", sa.Integer(), nullable=False),
        sa.Column("end_key", sa.String(length=1), nullable=False),
        sa.Column("greeting", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_mailboxes_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailboxes")),
        sa.UniqueConstraint(
            "tenant_id", "owner_type", "owner_id", name=op.f("uq_mailboxes_tenant_id")
        ),
    )
    op.create_index(op.f("ix_mailboxes_tenant_id"), "mailboxes", ["tenant_id"], unique=False)
    op.create_table(
        "voicemail_messages",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("mailbox_id", sa.String(length=32), nullable=False),
        sa.Column("contact_id", sa.String(length=40), nullable=False),
        sa.Column("caller", sa.String(length=200), nullable=False),
        sa.Column("recording_id", sa.String(length=32), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("ended_by", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_voicemail_messages_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_voicemail_messages_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_voicemail_messages")),
    )
    op.create_index(
        "ix_voicemail_messages_box",
        "voicemail_messages",
        ["tenant_id", "mailbox_id", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_voicemail_messages_box", table_name="voicemail_messages")
    op.drop_table("voicemail_messages")
    op.drop_index(op.f("ix_mailboxes_tenant_id"), table_name="mailboxes")
    op.drop_table("mailboxes")
    # The repaired strategies were never valid: nothing to restore.
