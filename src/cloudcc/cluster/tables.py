"""Tables of a cluster's shared state: the SIP registrations every node can reach.

Imported by the store so that Alembic sees them (migration 0010_cluster_state).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from cloudcc.store.tables import Base, UTCDateTime, utcnow


class SipBindingRecord(Base):
    """A contact an agent's phone registered with one node (RFC 3261 §10.3), with the Path
    it came through (RFC 3327): another node reaches the phone through the same proxies."""

    __tablename__ = "sip_bindings"
    __table_args__ = (Index("ix_sip_bindings_tenant_agent", "tenant_id", "agent_id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # digest of node, aor, contact
    node: Mapped[str] = mapped_column(String(64), index=True)  # the node that holds its flow
    aor: Mapped[str] = mapped_column(String(500))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    agent_id: Mapped[str] = mapped_column(String(32))
    contact: Mapped[str] = mapped_column(String(1000))
    received: Mapped[str | None] = mapped_column(String(300), nullable=True)  # host:port
    transport: Mapped[str] = mapped_column(String(8), default="UDP")
    path: Mapped[list[Any]] = mapped_column(default=list)
    q: Mapped[float] = mapped_column(Float, default=1.0)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
