"""queues: repair stored strategies the engine does not have

Queues created with ``preferred_agent`` as their strategy (the API accepted it; the engine has
no such strategy, so the tenant's routing failed to load) route by ``longest_idle``, the
default: a preferred agent is the engine's per-contact overlay on any strategy, not one.

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


def downgrade() -> None:
    pass  # the repaired strategies were never valid: nothing to restore
