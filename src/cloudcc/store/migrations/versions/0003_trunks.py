"""trunks, numbers and where calls may go

Trunks gain a priority (failover order), an outbound flag and inbound digest; tenants a dial
plan and their allowed SIP destinations; the platform operator provisions numbers
(``provisioned_numbers``), and a number is unique per tenant (several tenants may bring the
same digits on their own trunks). Numbers held before this revision stay with their tenants:
they are recorded as provisioned to them.

Revision ID: 0003_trunks
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_trunks"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "provisioned_numbers",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_provisioned_numbers_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provisioned_numbers")),
        sa.UniqueConstraint("number", name=op.f("uq_provisioned_numbers_number")),
    )
    with op.batch_alter_table("provisioned_numbers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_provisioned_numbers_tenant_id"), ["tenant_id"], unique=False
        )
    # Every number held so far was claimed by its tenant: it keeps it, now as provisioned.
    op.execute(
        "INSERT INTO provisioned_numbers (id, number, tenant_id, created_at, updated_at) "
        "SELECT id, number, tenant_id, created_at, updated_at FROM phone_numbers"
    )
    with op.batch_alter_table("phone_numbers", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_phone_numbers_number"), type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_phone_numbers_tenant_id"), ["tenant_id", "number"]
        )
        batch_op.create_index(batch_op.f("ix_phone_numbers_number"), ["number"], unique=False)

    with op.batch_alter_table("trunks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("priority", sa.Integer(), nullable=False, server_default="100")
        )
        batch_op.add_column(
            sa.Column("outbound", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.add_column(
            sa.Column("inbound_auth", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dial_plan", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(
            sa.Column("sip_destinations", sa.JSON(), nullable=False, server_default="[]")
        )


def downgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("sip_destinations")
        batch_op.drop_column("dial_plan")
    with op.batch_alter_table("trunks", schema=None) as batch_op:
        batch_op.drop_column("inbound_auth")
        batch_op.drop_column("outbound")
        batch_op.drop_column("priority")
    with op.batch_alter_table("phone_numbers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_phone_numbers_number"))
        batch_op.drop_constraint(batch_op.f("uq_phone_numbers_tenant_id"), type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_phone_numbers_number"), ["number"])
    with op.batch_alter_table("provisioned_numbers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_provisioned_numbers_tenant_id"))
    op.drop_table("provisioned_numbers")
