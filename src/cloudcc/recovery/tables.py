"""Tables of node recovery: the nodes' heartbeats, the SIP dialogs each node holds, and the
agents' sign-ins.

Imported by the store so that Alembic sees them. Nodes and dialogs belong to the platform
(a node serves every tenant); an agent's sign-in carries its ``tenant_id``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cloudcc.store.tables import Base, UTCDateTime, utcnow


class NodeRecord(Base):
    """A node's life: when it started, the last moment it was known alive, a clean stop."""

    __tablename__ = "nodes"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    pid: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    alive_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SipDialogRecord(Base):
    """A SIP dialog a node holds (RFC 3261 §12): enough to send its BYE from another process."""

    __tablename__ = "sip_dialogs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # digest of the dialog id
    node: Mapped[str] = mapped_column(String(64), index=True)
    call_id: Mapped[str] = mapped_column(String(255))
    dialog: Mapped[dict[str, Any]] = mapped_column(default=dict)  # Dialog.snapshot()
    peer: Mapped[list[Any] | None] = mapped_column(nullable=True)  # [transport, host, port]
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AgentSignIn(Base):
    """An agent signed in on a node: restored when the node restarts."""

    __tablename__ = "agent_sign_ins"

    agent_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    device: Mapped[str | None] = mapped_column(String(500), nullable=True)
    ready: Mapped[bool] = mapped_column(Boolean, default=True)
    reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    #: In wrap-up (after-call work): [[contact id, channel, queue id or null, ends at (epoch
    #: seconds)], ...]; a node taking the tenant's routing over keeps it for the time left.
    wrap_up: Mapped[list[Any] | None] = mapped_column(nullable=True)
