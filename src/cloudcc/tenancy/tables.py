"""Tables of the authentication guards: seen signed requests and login throttling.

Shared through the database so that a restart, or another node, sees what this one saw.
Imported by the store so that Alembic sees them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cloudcc.store.tables import Base, UTCDateTime


class SeenRequest(Base):
    """A signed request's nonce (or signature) seen inside the timestamp window."""

    __tablename__ = "seen_requests"
    __table_args__ = (Index("ix_seen_requests_expires", "expires_at"),)

    access_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(64), primary_key=True)  # the nonce or signature
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LoginThrottle(Base):
    """Failed logins of one account name of one tenant (whether or not the user exists)."""

    __tablename__ = "login_throttles"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)  # tag of tenant/username
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reported: Mapped[int] = mapped_column(Integer, default=0)  # failures already in the audit log
