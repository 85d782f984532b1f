"""The relational schema. Every tenant-owned row carries ``tenant_id``; every query filters by it.

The same models serve SQLite (the embedded default) and PostgreSQL; Alembic migrations under
``store/migrations`` are generated from them and checked against them by the test suite.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id() -> str:
    """A 32-hex-digit id that sorts by creation time (48-bit ms clock + 80 random bits)."""
    return f"{int(time.time() * 1000):012x}{os.urandom(10).hex()}"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps are stored in UTC and always read back time-zone aware (SQLite drops it)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | str | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # ISO 8601 text from a JSON body
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use UTC-aware ones")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads it as a class attribute
        dict[str, Any]: JSON,
        list[Any]: JSON,
        datetime: UTCDateTime,
    }


class _Stamped:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Tenant(_Stamped, Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    sip_domain: Mapped[str] = mapped_column(String(253), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    status: Mapped[str] = mapped_column(String(16), default="active")
    max_seats: Mapped[int] = mapped_column(Integer, default=50)
    max_concurrent_calls: Mapped[int] = mapped_column(Integer, default=100)
    rate_limit_rps: Mapped[float | None] = mapped_column(Float, nullable=True)
    recording_retention_days: Mapped[int] = mapped_column(Integer, default=90)
    webhook_secret: Mapped[str] = mapped_column(String(128))
    # Where calls may go (contacts/destinations.py): the outside numbers the tenant may dial
    # through its trunks, and the SIP addresses its admins allow as direct destinations.
    dial_plan: Mapped[dict[str, Any]] = mapped_column(default=dict)
    sip_destinations: Mapped[list[Any]] = mapped_column(default=list)
    # SRTP (SDES over SIP/TLS) on SIP legs: off, optional, required (contacts/sdes.py)
    srtp_policy: Mapped[str] = mapped_column(String(16), default="optional")


class Role(_Stamped, Base):
    __tablename__ = "roles"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(500), default="")
    permissions: Mapped[list[Any]] = mapped_column(default=list)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)


class User(_Stamped, Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("tenant_id", "username"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    username: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role_id: Mapped[str] = mapped_column(ForeignKey("roles.id"))
    status: Mapped[str] = mapped_column(String(16), default="active")
    token_version: Mapped[int] = mapped_column(Integer, default=0)


class Agent(_Stamped, Base):
    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("tenant_id", "extension"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    extension: Mapped[str] = mapped_column(String(32))
    # RFC 7616 §3.4.2 H(username:realm:password) for both algorithms; the password itself is
    # never stored. The realm is the tenant's SIP domain.
    sip_ha1_md5: Mapped[str] = mapped_column(String(32))
    sip_ha1_sha256: Mapped[str] = mapped_column(String(64))
    # Sealed with the node key: a phone may be challenged with another realm (an IP-addressed
    # registration), for which the HA1s above do not fit.
    sip_password_enc: Mapped[str] = mapped_column(Text)
    skills: Mapped[dict[str, Any]] = mapped_column(default=dict)
    max_chats: Mapped[int] = mapped_column(Integer, default=3)
    status: Mapped[str] = mapped_column(String(16), default="active")
    # A phone the admin assigned (a SIP URI): the agent may sign in with it.
    device: Mapped[str | None] = mapped_column(String(200), nullable=True)


class SkillQueue(_Stamped, Base):
    __tablename__ = "queues"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(500), default="")
    required_skills: Mapped[dict[str, Any]] = mapped_column(default=dict)
    strategy: Mapped[str] = mapped_column(String(32), default="longest_idle")
    ring_timeout_seconds: Mapped[int] = mapped_column(Integer, default=20)
    wrapup_seconds: Mapped[int] = mapped_column(Integer, default=30)
    max_wait_seconds: Mapped[int] = mapped_column(Integer, default=600)
    capacity: Mapped[int] = mapped_column(Integer, default=100)
    service_level_seconds: Mapped[int] = mapped_column(Integer, default=20)
    priority: Mapped[int] = mapped_column(Integer, default=5)
    overflow: Mapped[dict[str, Any]] = mapped_column(default=dict)
    music_on_hold: Mapped[str] = mapped_column(String(200), default="default")
    announce_position: Mapped[bool] = mapped_column(Boolean, default=True)
    announce_interval_seconds: Mapped[int] = mapped_column(Integer, default=30)


class BusinessHours(_Stamped, Base):
    __tablename__ = "business_hours"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    weekly: Mapped[dict[str, Any]] = mapped_column(default=dict)
    holidays: Mapped[list[Any]] = mapped_column(default=list)


class Trunk(_Stamped, Base):
    __tablename__ = "trunks"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(253))
    port: Mapped[int] = mapped_column(Integer, default=5060)
    transport: Mapped[str] = mapped_column(String(8), default="udp")
    username: Mapped[str | None] = mapped_column(String(128), nullable=True)
    password_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    allowed_ips: Mapped[list[Any]] = mapped_column(default=list)
    registration: Mapped[bool] = mapped_column(Boolean, default=False)
    max_channels: Mapped[int] = mapped_column(Integer, default=30)
    caller_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    priority: Mapped[int] = mapped_column(Integer, default=100)  # calls out try lower first
    outbound: Mapped[bool] = mapped_column(Boolean, default=True)  # carries calls out
    # The peer (a PBX) authenticates to us with username/password (digest) and may register.
    inbound_auth: Mapped[bool] = mapped_column(Boolean, default=False)


class ProvisionedNumber(_Stamped, Base):
    """A number the platform operator gave a tenant (a DID of the platform's carriers)."""

    __tablename__ = "provisioned_numbers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)


class PhoneNumber(_Stamped, Base):
    """A tenant's number and where its calls go. An incoming call is matched on number and
    trunk: a provisioned number (``provisioned_numbers``) answers calls from any of its
    tenant's trunks, or from its ``trunk`` only when bound; a number the tenant brings itself
    is always bound to one of its own trunks, so several tenants may hold the same digits."""

    __tablename__ = "phone_numbers"
    __table_args__ = (UniqueConstraint("tenant_id", "number"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    trunk_id: Mapped[str | None] = mapped_column(
        ForeignKey("trunks.id", ondelete="SET NULL"), nullable=True
    )
    target_type: Mapped[str] = mapped_column(String(16), default="queue")
    target: Mapped[str | None] = mapped_column(String(64), nullable=True)
    business_hours_id: Mapped[str | None] = mapped_column(
        ForeignKey("business_hours.id", ondelete="SET NULL"), nullable=True
    )


class ApiKey(_Stamped, Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    access_key: Mapped[str] = mapped_column(String(40), unique=True)
    secret_enc: Mapped[str] = mapped_column(Text)
    role_id: Mapped[str] = mapped_column(ForeignKey("roles.id"))
    status: Mapped[str] = mapped_column(String(16), default="active")
    rate_limit_rps: Mapped[float | None] = mapped_column(Float, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_tenant_seq", "tenant_id", "seq"),)

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[str] = mapped_column(String(32), unique=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    actor_name: Mapped[str] = mapped_column(String(200), default="")
    action: Mapped[str] = mapped_column(String(32))
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    changes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(300), nullable=True)


class FlowRecord(_Stamped, Base):
    """An IVR flow: its editable draft and, in ``flow_versions``, every published version."""

    __tablename__ = "flows"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))  # the document's id; numbers bind to it
    draft: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    draft_revision: Mapped[int] = mapped_column(Integer, default=0)
    draft_saved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    draft_saved_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    draft_based_on: Mapped[int | None] = mapped_column(Integer, nullable=True)
    published_version: Mapped[int | None] = mapped_column(Integer, nullable=True)


class FlowVersionRecord(Base):
    __tablename__ = "flow_versions"
    __table_args__ = (UniqueConstraint("flow_id", "number"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    flow_id: Mapped[str] = mapped_column(ForeignKey("flows.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    published_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    restored_from: Mapped[int | None] = mapped_column(Integer, nullable=True)


class ContactRecord(Base):
    """A contact: inserted when it starts, updated as it goes, complete when it ends (the CDR)."""

    __tablename__ = "contacts"
    __table_args__ = (
        Index("ix_contacts_tenant_created", "tenant_id", "created_at"),
        Index("ix_contacts_tenant_agent", "tenant_id", "agent_id"),
        Index("ix_contacts_state", "state"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    node: Mapped[str] = mapped_column(String(64), default="")  # the node that anchors it
    channel: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(16))
    customer: Mapped[str] = mapped_column(String(200))
    dialed: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))
    disposition: Mapped[str | None] = mapped_column(String(32), nullable=True)
    end_cause: Mapped[str | None] = mapped_column(String(32), nullable=True)
    queue: Mapped[str | None] = mapped_column(String(64), nullable=True)
    agent_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ivr_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    queue_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    ring_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    talk_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    hold_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    wrapup_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    total_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    path: Mapped[list[Any]] = mapped_column(default=list)
    transfers: Mapped[list[Any]] = mapped_column(default=list)
    recordings: Mapped[list[Any]] = mapped_column(default=list)
    wrapup_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    wrapup_notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    quality: Mapped[dict[str, Any]] = mapped_column(default=dict)
    legs: Mapped[list[Any]] = mapped_column(default=list)


class RecordingRecord(Base):
    __tablename__ = "recordings"
    __table_args__ = (Index("ix_recordings_tenant_started", "tenant_id", "started_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    contact_id: Mapped[str] = mapped_column(String(40), index=True)
    agent_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    path: Mapped[str] = mapped_column(String(500))  # relative to the recordings directory
    channels: Mapped[int] = mapped_column(Integer, default=2)
    state: Mapped[str] = mapped_column(String(16), default="recording")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    duration_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    legs: Mapped[list[Any]] = mapped_column(default=list)
    # why a ``failed`` recording could not be written (read-only or full storage)
    failure_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)


# The event layer's tables (webhook subscriptions and deliveries), a tenant's not-ready reason
# and disposition codes, node recovery's (heartbeats, SIP dialogs, agents' sign-ins), the
# authentication guards' and voicemail's (mailboxes and messages) live with their packages.
import cloudcc.cluster.tables  # noqa: E402
import cloudcc.events.tables  # noqa: E402
import cloudcc.recovery.tables  # noqa: E402
import cloudcc.store.codes  # noqa: E402
import cloudcc.tenancy.tables  # noqa: E402
import cloudcc.voicemail.tables  # noqa: E402,F401
