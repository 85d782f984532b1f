"""Voicemail: the mailboxes of queues and agents, and the messages callers left in them.

Thin: the rules (defaults, who may see what, tenant scoping) are ``VoicemailService``'s.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field, StringConstraints

from cloudcc.api.crud import ERRORS, IdPath
from cloudcc.api.schemas import UNSET, Body, PageOut, Strict
from cloudcc.api.security import Authenticated, Ctx
from cloudcc.voicemail.service import VoicemailService

router = APIRouter(tags=["voicemail"], responses=ERRORS)

OwnerType = Literal["queue", "agent"]


def _service(ctx: Any) -> VoicemailService:
    service: VoicemailService = ctx.extra["voicemail"]
    return service


class MailboxIn(Body):
    max_seconds: int = Field(
        UNSET, ge=5, le=600, description="a message ends at this length (default 120)"
    )
    silence_seconds: int = Field(
        UNSET,
        ge=0,
        le=60,
        description="a message ends after this much silence once the caller has spoken; "
        "0: silence does not end it (default 5)",
    )
    end_key: str = Field(
        UNSET, pattern=r"^[0-9*#]$", description="the key that ends a message (default #)"
    )
    greeting: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = Field(
        UNSET,
        description="what the caller hears before the tone (spoken); null: the default "
        "'Please leave a message after the tone...'",
    )


class MailboxOut(BaseModel):
    id: str | None = Field(description="null while the mailbox has its defaults and no message")
    owner_type: OwnerType
    owner_id: str
    max_seconds: int
    silence_seconds: int
    end_key: str
    greeting: str | None


class MailboxListed(MailboxOut):
    messages: int
    unread: int


class MessageOut(BaseModel):
    id: str
    mailbox_id: str
    owner_type: OwnerType
    owner_id: str
    contact_id: str
    caller: str
    recording_id: str
    duration_seconds: float
    ended_by: Literal["key", "silence", "max_length", "hangup"]
    created_at: datetime
    read: bool
    read_at: datetime | None


class MessageFilter(Strict):
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=1_000_000)
    mailbox_id: str | None = Field(None, max_length=32)
    unread: bool | None = Field(None, description="true: unread only; false: read only")


class MessageChange(Body):
    read: bool


@router.get("/mailboxes", response_model=list[MailboxListed], operation_id="list_mailboxes")
async def list_mailboxes(actor: Authenticated, ctx: Ctx) -> Any:
    """Mailboxes configured or holding messages (an agent: its own), with message counts."""
    return await _service(ctx).mailboxes(actor)


@router.get(
    "/mailboxes/{owner_type}/{owner_id}", response_model=MailboxOut, operation_id="get_mailbox"
)
async def get_mailbox(
    actor: Authenticated, ctx: Ctx, owner_type: OwnerType, owner_id: IdPath
) -> Any:
    """The settings of a queue's or an agent's mailbox (the defaults until configured)."""
    return await _service(ctx).mailbox(actor, owner_type, owner_id)


@router.put(
    "/mailboxes/{owner_type}/{owner_id}",
    response_model=MailboxOut,
    operation_id="configure_mailbox",
)
async def configure_mailbox(
    actor: Authenticated, ctx: Ctx, owner_type: OwnerType, owner_id: IdPath, body: MailboxIn
) -> Any:
    """Set how a queue's or an agent's mailbox takes messages (needs voicemail:write)."""
    data = body.model_dump(exclude_unset=True)
    return await _service(ctx).configure(actor, owner_type, owner_id, data)


@router.get("/voicemail", response_model=PageOut[MessageOut], operation_id="list_voicemail")
async def list_voicemail(
    actor: Authenticated, ctx: Ctx, query: Annotated[MessageFilter, Query()]
) -> Any:
    """Messages, newest first: every mailbox with voicemail:read, else the agent's own."""
    page = await _service(ctx).messages(
        actor,
        mailbox_id=query.mailbox_id,
        unread=query.unread,
        limit=query.limit,
        offset=query.offset,
    )
    return page.__dict__


@router.get("/voicemail/{message_id}", response_model=MessageOut, operation_id="get_voicemail")
async def get_voicemail(actor: Authenticated, ctx: Ctx, message_id: IdPath) -> Any:
    return await _service(ctx).message(actor, message_id)


@router.patch("/voicemail/{message_id}", response_model=MessageOut, operation_id="mark_voicemail")
async def mark_voicemail(
    actor: Authenticated, ctx: Ctx, message_id: IdPath, body: MessageChange
) -> Any:
    """Mark a message read or unread (voicemail:write, or the agent whose mailbox it is)."""
    return await _service(ctx).mark(actor, message_id, body.read)


@router.delete("/voicemail/{message_id}", status_code=204, operation_id="delete_voicemail")
async def delete_voicemail(actor: Authenticated, ctx: Ctx, message_id: IdPath) -> Response:
    """Delete a message and its audio (voicemail:write, or the agent whose mailbox it is)."""
    await _service(ctx).delete(actor, message_id)
    return Response(status_code=204)


@router.get(
    "/voicemail/{message_id}/audio",
    operation_id="voicemail_audio",
    response_class=FileResponse,
    responses={200: {"content": {"audio/wav": {}}, "description": "the WAV file"}},
)
async def voicemail_audio(actor: Authenticated, ctx: Ctx, message_id: IdPath) -> Response:
    """The message as WAV (8 kHz mono)."""
    path = await _service(ctx).audio(actor, message_id)
    return FileResponse(path, media_type="audio/wav", filename=f"voicemail-{message_id}.wav")
