"""Not-ready reason codes and disposition codes of a tenant (agents:write to change, agents:read
to list): the state API and wrap-up accept only these (and the built-in reasons)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from cloudcc.api.crud import crud_router
from cloudcc.api.schemas import UNSET, Body, Out, Paging

Code = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
Label = Annotated[str, StringConstraints(max_length=200)]
NotReadyState = Literal["busy", "rest", "study"]
Limit = Annotated[int, Field(ge=1, le=86_400)]


class ReasonCodeCreate(Body):
    code: Code = Field(description="what the state API names: lowercase letters, digits, _ . -")
    label: Label = ""
    cec_state: NotReadyState = Field(
        "busy", description="the CTI state it reports: busy (7), rest (8) or study (9)"
    )
    max_seconds: Limit | None = Field(
        None, description="time limit; when it runs out: ready (auto_ready) or an overrun event"
    )
    auto_ready: bool = Field(False, description="back to ready when max_seconds runs out")


class ReasonCodeUpdate(Body):
    code: Code = UNSET
    label: Label = UNSET
    cec_state: NotReadyState = UNSET
    max_seconds: Limit | None = UNSET
    auto_ready: bool = UNSET


class ReasonCodeOut(Out):
    id: str
    code: str
    label: str
    cec_state: str
    max_seconds: int | None
    auto_ready: bool
    created_at: datetime
    updated_at: datetime


class ReasonCodeFilter(Paging):
    code: Code | None = None
    cec_state: NotReadyState | None = None


class DispositionCreate(Body):
    code: Code
    label: Label = ""


class DispositionUpdate(Body):
    code: Code = UNSET
    label: Label = UNSET


class DispositionOut(Out):
    id: str
    code: str
    label: str
    created_at: datetime
    updated_at: datetime


class DispositionFilter(Paging):
    code: Code | None = None


routers = [
    crud_router(
        "/reason-codes",
        "reason_code",
        lambda c: c.reason_codes,
        ReasonCodeCreate,
        ReasonCodeUpdate,
        ReasonCodeOut,
        ReasonCodeFilter,
        "reason codes",
    ),
    crud_router(
        "/disposition-codes",
        "disposition_code",
        lambda c: c.dispositions,
        DispositionCreate,
        DispositionUpdate,
        DispositionOut,
        DispositionFilter,
        "disposition codes",
    ),
]
