"""Tables of voicemail: mailboxes and their messages.

Imported by the store so that Alembic sees them; every row carries ``tenant_id``. A message's
audio is a recording (``recordings``), so retention and storage treat it like any other.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cloudcc.store.tables import Base, UTCDateTime, _Stamped, new_id


class Mailbox(_Stamped, Base):
    """The mailbox of one queue or one agent (``owner_type`` + ``owner_id``), with how a
    message is taken. A queue or agent without a row has a mailbox with the defaults; the row
    is written when it is configured or receives its first message."""

    __tablename__ = "mailboxes"
    __table_args__ = (UniqueConstraint("tenant_id", "owner_type", "owner_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    owner_type: Mapped[str] = mapped_column(String(8))  # queue | agent
    owner_id: Mapped[str] = mapped_column(String(32))
    max_seconds: Mapped[int] = mapped_column(Integer, default=120)
    silence_seconds: Mapped[int] = mapped_column(Integer, default=5)  # 0: not ended by silence
    end_key: Mapped[str] = mapped_column(String(1), default="#")
    greeting: Mapped[str | None] = mapped_column(String(500), nullable=True)


class VoicemailMessage(Base):
    """One message left by a caller; ``read_at`` is None while it is unread."""

    __tablename__ = "voicemail_messages"
    __table_args__ = (Index("ix_voicemail_messages_box", "tenant_id", "mailbox_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    mailbox_id: Mapped[str] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    contact_id: Mapped[str] = mapped_column(String(40))
    caller: Mapped[str] = mapped_column(String(200), default="")
    recording_id: Mapped[str] = mapped_column(String(32))
    duration_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    #: key (the end key was pressed) | silence | max_length | hangup
    ended_by: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
