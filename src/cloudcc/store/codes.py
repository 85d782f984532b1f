"""Tables of a tenant's own codes: not-ready reasons (agent states) and dispositions (the
outcome an agent gives a contact at wrap-up). Every row carries ``tenant_id``."""

from __future__ import annotations

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cloudcc.store.tables import Base, _Stamped, new_id


class ReasonCodeRow(_Stamped, Base):
    """A not-ready reason: the CEC state it reports (busy 7, rest 8, study 9), and an
    optional time limit after which the agent returns to ready (``auto_ready``) or an
    overrun is reported."""

    __tablename__ = "reason_codes"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200), default="")
    cec_state: Mapped[str] = mapped_column(String(16), default="busy")
    max_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    auto_ready: Mapped[bool] = mapped_column(Boolean, default=False)


class DispositionCodeRow(_Stamped, Base):
    """An outcome an agent may give a contact at wrap-up."""

    __tablename__ = "disposition_codes"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200), default="")
