"""Call control, agent sessions, contact records and recordings (the PaaS voice surface)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field, StringConstraints, field_validator
from sqlalchemy import func, select

from cloudcc.api.crud import ERRORS, IdPath
from cloudcc.api.schemas import Body, IsoDateTime, PageOut, Paging
from cloudcc.api.security import Authenticated, Ctx
from cloudcc.contacts.agents import SUPERVISION
from cloudcc.errors import Conflict, Invalid, NotFound, PermissionDenied
from cloudcc.store.tables import Agent, ContactRecord, RecordingRecord
from cloudcc.tenancy.model import Actor, Permission
from cloudcc.timefmt import with_iso_times

router = APIRouter(tags=["calls"], responses=ERRORS)

ContactId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
TargetName = Annotated[str, StringConstraints(min_length=1, max_length=128)]
TargetType = Literal["agent", "queue", "flow", "external"]


def _voice(ctx: Any) -> Any:
    voice = ctx.extra.get("voice")
    if voice is None:
        raise Invalid("this node runs no voice service (SIP is disabled)")
    return voice


def _own_agent(actor: Actor, agent_id: str) -> None:
    """Agents act on themselves; changing another agent needs agents:state."""
    p = actor.principal
    if p.agent_id == agent_id or p.can(Permission.AGENTS_STATE):
        return
    raise PermissionDenied("changing another agent's state needs agents:state")


async def _agent_in_tenant(ctx: Any, actor: Actor, agent_id: str) -> str:
    if agent_id == "me":
        if not actor.principal.agent_id:
            raise NotFound("you are not an agent")
        return actor.principal.agent_id
    async with ctx.db.session() as s:
        found = await s.scalar(
            select(Agent.id).where(Agent.tenant_id == actor.tenant_id, Agent.id == agent_id)
        )
    if found is None:
        raise NotFound(f"agent {agent_id} not found")
    return str(found)


AgentRef = Annotated[str, StringConstraints(pattern=r"^([0-9a-f]{32}|me)$")]


# --- agent sessions ------------------------------------------------------------------------


class LoginIn(Body):
    device: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        None,
        description="a SIP URI to ring: the device an admin assigned the agent, or any "
        "(needs agents:device); default: the agent's registered softphone or phone, else "
        "its assigned device",
    )
    ready: bool = True
    replace: bool = Field(
        False,
        description="take over a session signed in from another client; that client's event "
        "stream is told (agent.state_changed to offline, reason replaced)",
    )
    heartbeat_seconds: int | None = Field(
        None,
        ge=5,
        le=3600,
        description="supervise this client session: without a heartbeat (POST "
        "/agents/{id}/heartbeat), an events poll or an open event stream of the agent's own "
        "for this long, the agent is signed out (reason disconnected); none: not supervised",
    )


class StateIn(Body):
    state: Literal["ready", "not_ready"]
    reason: Annotated[str, StringConstraints(max_length=64)] | None = None


class ForceIn(Body):
    action: Literal["busy", "idle", "rest", "sign_out"]
    seconds: float | None = Field(None, gt=0, le=86_400)


class AgentStatus(BaseModel):
    agent_id: str
    state: str
    cti_code: int
    reason: str | None
    since: float
    device: str | None
    heartbeat_seconds: float | None = Field(
        description="the client session's heartbeat timeout; null: not supervised"
    )
    contacts: list[str]


@router.post("/agents/{agent_id}/login", response_model=AgentStatus, operation_id="agent_login")
async def agent_login(actor: Authenticated, ctx: Ctx, agent_id: AgentRef, body: LoginIn) -> Any:
    """Sign an agent in (ready, or not ready) with a phone the node can reach: its
    registered softphone or phone, its assigned device, or a SIP URI (agents:device)."""
    aid = await _agent_in_tenant(ctx, actor, agent_id)
    _own_agent(actor, aid)
    voice = _voice(ctx)
    await voice.agents.sign_in(
        actor,
        aid,
        body.device,
        body.ready,
        replace=body.replace,
        heartbeat_seconds=body.heartbeat_seconds,
    )
    return await voice.agent_status(actor.tenant_id, aid)


@router.post(
    "/agents/{agent_id}/heartbeat", response_model=AgentStatus, operation_id="agent_heartbeat"
)
async def agent_heartbeat(actor: Authenticated, ctx: Ctx, agent_id: AgentRef) -> Any:
    """The agent's client is still there (a session signed in with ``heartbeat_seconds``);
    409 once the agent has been signed out, whatever the reason."""
    aid = await _agent_in_tenant(ctx, actor, agent_id)
    _own_agent(actor, aid)
    voice = _voice(ctx)
    await voice.agents.heartbeat(actor.tenant_id, aid)
    return await voice.agent_status(actor.tenant_id, aid)


@router.post("/agents/{agent_id}/logout", response_model=AgentStatus, operation_id="agent_logout")
async def agent_logout(actor: Authenticated, ctx: Ctx, agent_id: AgentRef) -> Any:
    aid = await _agent_in_tenant(ctx, actor, agent_id)
    _own_agent(actor, aid)
    voice = _voice(ctx)
    await voice.agent_logout(actor.tenant_id, aid)
    return await voice.agent_status(actor.tenant_id, aid)


@router.put("/agents/{agent_id}/state", response_model=AgentStatus, operation_id="agent_state")
async def agent_state(actor: Authenticated, ctx: Ctx, agent_id: AgentRef, body: StateIn) -> Any:
    """Ready, or not ready with a reason code (break, lunch, training, ...)."""
    aid = await _agent_in_tenant(ctx, actor, agent_id)
    _own_agent(actor, aid)
    voice = _voice(ctx)
    await voice.agent_presence(actor.tenant_id, aid, body.state == "ready", body.reason)
    return await voice.agent_status(actor.tenant_id, aid)


@router.post("/agents/{agent_id}/force", response_model=AgentStatus, operation_id="force_agent")
async def force_agent(actor: Authenticated, ctx: Ctx, agent_id: AgentRef, body: ForceIn) -> Any:
    """A supervisor forces an agent busy, idle, to rest, or signs it out."""
    if not actor.principal.can(Permission.AGENTS_STATE):
        raise PermissionDenied("forcing an agent's state needs agents:state")
    aid = await _agent_in_tenant(ctx, actor, agent_id)
    voice = _voice(ctx)
    await voice.agents.force_by(actor, aid, body.action, body.seconds)
    return await voice.agent_status(actor.tenant_id, aid)


@router.get("/agents/{agent_id}/status", response_model=AgentStatus, operation_id="agent_status")
async def agent_status(actor: Authenticated, ctx: Ctx, agent_id: AgentRef) -> Any:
    aid = await _agent_in_tenant(ctx, actor, agent_id)
    if aid != actor.principal.agent_id and not actor.principal.can(Permission.AGENTS_READ):
        raise PermissionDenied("this needs agents:read")
    return await _voice(ctx).agent_status(actor.tenant_id, aid)


class AgentFigures(BaseModel):
    agent_id: str
    day_start: datetime = Field(description="midnight in the tenant's time zone")
    at: datetime
    handled: int = Field(
        description="contacts answered and finished (wrap-up included) by the agent since the "
        "day's start"
    )
    average_handle_seconds: float | None = Field(
        description="talk (hold included) plus after-call work, averaged; null: none handled"
    )
    talk_seconds: float
    wrapup_seconds: float
    time_in_state: dict[str, float] = Field(
        description="seconds per state since the day's start (or since this node started, if "
        "later), up to ``at``; signed out is left out"
    )


@router.get("/agents/{agent_id}/figures", response_model=AgentFigures, operation_id="agent_figures")
async def agent_figures(actor: Authenticated, ctx: Ctx, agent_id: AgentRef) -> Any:
    """An agent's figures of the day: contacts handled, average handle time, time per state.
    An agent reads its own; another agent's need reports:read."""
    aid = await _agent_in_tenant(ctx, actor, agent_id)
    if aid != actor.principal.agent_id and not actor.principal.can(Permission.REPORTS_READ):
        raise PermissionDenied("another agent's figures need reports:read")
    voice = _voice(ctx)
    now = voice.clock()
    zone = ZoneInfo(await voice.tenant_timezone(actor.tenant_id))
    day_start = datetime.fromtimestamp(now, zone).replace(hour=0, minute=0, second=0, microsecond=0)
    async with ctx.db.session() as s:
        handled, talk, wrap = (
            await s.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(ContactRecord.talk_seconds), 0.0),
                    func.coalesce(func.sum(ContactRecord.wrapup_seconds), 0.0),
                ).where(
                    ContactRecord.tenant_id == actor.tenant_id,
                    ContactRecord.agent_id == aid,
                    ContactRecord.answered_at.is_not(None),
                    ContactRecord.ended_at.is_not(None),  # not the one in progress
                    ContactRecord.created_at >= day_start,
                )
            )
        ).one()
    status = await voice.agent_status(actor.tenant_id, aid)
    times = voice.agents.state_log.time_in_state(
        actor.tenant_id, aid, day_start.timestamp(), now, (status["since"], status["state"])
    )
    return {
        "agent_id": aid,
        "day_start": day_start,
        "at": datetime.fromtimestamp(now, zone),
        "handled": handled,
        "average_handle_seconds": round((talk + wrap) / handled, 1) if handled else None,
        "talk_seconds": round(talk, 1),
        "wrapup_seconds": round(wrap, 1),
        "time_in_state": times,
    }


# --- live contacts and call control --------------------------------------------------------


class TransferIn(Body):
    target_type: TargetType
    target: TargetName


class ConsultIn(Body):
    target_type: Literal["agent", "queue", "external"]
    target: TargetName


class DtmfIn(Body):
    digits: Annotated[str, StringConstraints(pattern=r"^[0-9A-Da-d*#]{1,32}$")]


class RecordIn(Body):
    action: Literal["start", "pause", "resume", "stop"]


class WrapupIn(Body):
    code: Annotated[str, StringConstraints(max_length=64)] | None = None
    notes: Annotated[str, StringConstraints(max_length=4000)] | None = None
    done: bool = True


class MonitorIn(Body):
    mode: Literal["listen", "whisper", "barge"]
    device: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        None,
        description="the supervisor's phone (SIP URI): its own registered phone, its agent's "
        "assigned device, an address among the tenant's sip_destinations, or any (needs "
        "agents:device); default: the phone of its own agent seat",
    )


class CallIn(Body):
    to: Annotated[str, StringConstraints(pattern=r"^(\+?[0-9*#]{1,32}|sips?:[^\s]{3,200})$")]
    agent_id: AgentRef | None = None
    queue: TargetName | None = None
    flow: TargetName | None = None


class CallOut(BaseModel):
    contact_id: str


class OperationOut(BaseModel):
    model_config = {"extra": "allow"}


_MISSING_NODES = {
    "Cloudcc-Missing-Nodes": {
        "description": "cluster nodes that did not answer within 2 s (their contacts are left "
        "out); absent when every node answered",
        "schema": {"type": "string"},
    }
}


@router.get(
    "/contacts/live",
    operation_id="live_contacts",
    responses={200: {"description": "the live contacts", "headers": _MISSING_NODES}},
)
async def live_contacts(actor: Authenticated, ctx: Ctx, response: Response) -> list[dict[str, Any]]:
    """Contacts in progress (IVR, queued, ringing, talking, wrap-up), on every node of a
    cluster. Nodes that do not answer within 2 s are named in the ``Cloudcc-Missing-Nodes``
    header, their contacts left out."""
    p = actor.principal
    every = p.can(Permission.CALLS_CONTROL) or p.can(Permission.CALLS_MONITOR)
    if not every and not (p.can(Permission.CALLS_OWN) and p.agent_id):
        raise PermissionDenied("this needs calls:control or calls:own")
    live, missing = await _voice(ctx).live_everywhere(actor.tenant_id)
    if missing:
        response.headers["Cloudcc-Missing-Nodes"] = ", ".join(missing)
    items: list[dict[str, Any]] = with_iso_times(live)
    # an agent's own: the contacts it handles, and those it handed on and still wraps up
    mine = [c for c in items if c["agent_id"] == p.agent_id or p.agent_id in c.get("wrapping", ())]
    return items if every else mine


async def _op(actor: Actor, ctx: Any, contact_id: str, name: str, **params: Any) -> Any:
    voice = _voice(ctx)
    if name in SUPERVISION:
        return await voice.agents.supervise(actor, contact_id, name, params)
    return await voice.operate(actor, contact_id, name, params)


_SIMPLE = {
    "hold": "Hold: the customer hears music, the agent hears nothing of them",
    "unhold": "Take the customer off hold",
    "mute": "Mute the agent (the customer hears nothing from it)",
    "unmute": "Unmute the agent",
    "hangup": "The agent leaves; the call ends (or the two others stay in a three-way call)",
    "complete-transfer": "Complete a consultative transfer: the consulted party takes over",
    "cancel-consult": "End the consultation and return to the customer",
    "conference": "Make a three-way call of customer, agent and consulted party",
    "leave-conference": "The agent leaves the three-way call; the two others stay",
    "stop-monitor": "The supervisor stops monitoring",
    "intercept": "The monitoring supervisor takes the call over; the agent is released",
    "force-release": "A supervisor ends the contact",
}


def _simple_route(path: str, summary: str) -> None:
    name = path.replace("-", "_")

    async def endpoint(actor: Authenticated, ctx: Ctx, contact_id: ContactId) -> Any:
        return await _op(actor, ctx, contact_id, name)

    router.add_api_route(
        f"/contacts/{{contact_id}}/{path}",
        endpoint,
        methods=["POST"],
        operation_id=f"contact_{name}",
        summary=summary,
        response_model=OperationOut,
    )


for _path, _summary in _SIMPLE.items():
    _simple_route(_path, _summary)


@router.post("/contacts/{contact_id}/dtmf", response_model=OperationOut, operation_id="send_dtmf")
async def send_dtmf(actor: Authenticated, ctx: Ctx, contact_id: ContactId, body: DtmfIn) -> Any:
    return await _op(actor, ctx, contact_id, "dtmf", digits=body.digits)


@router.post(
    "/contacts/{contact_id}/transfer", response_model=OperationOut, operation_id="blind_transfer"
)
async def transfer(actor: Authenticated, ctx: Ctx, contact_id: ContactId, body: TransferIn) -> Any:
    """Blind transfer to an agent, a queue, an IVR flow or an outside number."""
    return await _op(
        actor, ctx, contact_id, "transfer", target_type=body.target_type, target=body.target
    )


@router.post("/contacts/{contact_id}/consult", response_model=OperationOut, operation_id="consult")
async def consult(actor: Authenticated, ctx: Ctx, contact_id: ContactId, body: ConsultIn) -> Any:
    """Hold the customer and call an agent or outside number (then complete or conference)."""
    return await _op(
        actor, ctx, contact_id, "consult", target_type=body.target_type, target=body.target
    )


@router.post("/contacts/{contact_id}/record", response_model=OperationOut, operation_id="record")
async def record(actor: Authenticated, ctx: Ctx, contact_id: ContactId, body: RecordIn) -> Any:
    return await _op(actor, ctx, contact_id, "record", action=body.action)


@router.post("/contacts/{contact_id}/wrapup", response_model=OperationOut, operation_id="wrapup")
async def wrapup(actor: Authenticated, ctx: Ctx, contact_id: ContactId, body: WrapupIn) -> Any:
    """Disposition code and notes; ``done`` ends the agent's after-call work. Once the tenant
    has disposition codes, ``code`` must be one of them. Each agent who handled the contact
    wraps up its own part: one who handed it on (a transfer, leaving a conference) while the
    contact goes on, the last one once it is in wrap-up; each agent leg of the record carries
    its agent's ``wrapup``, the record's ``wrapup_code`` and ``wrapup_notes`` the last one's."""
    await _voice(ctx).agents.check_disposition(actor.tenant_id, body.code)
    return await _op(
        actor, ctx, contact_id, "wrapup", code=body.code, notes=body.notes, done=body.done
    )


@router.post("/contacts/{contact_id}/monitor", response_model=OperationOut, operation_id="monitor")
async def monitor(actor: Authenticated, ctx: Ctx, contact_id: ContactId, body: MonitorIn) -> Any:
    """Listen, whisper or barge in; calling again switches mode without dialing again. The
    supervisor's phone: its own (registered, or its agent's assigned device), an address among
    the tenant's sip_destinations, or any SIP URI with agents:device."""
    device = await _voice(ctx).agents.monitoring_device(actor, body.device)
    return await _op(
        actor,
        ctx,
        contact_id,
        "monitor",
        mode=body.mode,
        device=device,
        supervisor_id=actor.principal.agent_id,
    )


@router.post("/calls", response_model=CallOut, status_code=201, operation_id="place_call")
async def place_call(actor: Authenticated, ctx: Ctx, body: CallIn) -> Any:
    """Outbound: from an agent (its phone rings first), or customer-first into a queue or a
    flow (return visits)."""
    p = actor.principal
    agent_id = body.agent_id
    if agent_id == "me":
        agent_id = p.agent_id
    if agent_id:
        aid = await _agent_in_tenant(ctx, actor, agent_id)
        if aid != p.agent_id and not p.can(Permission.CALLS_CONTROL):
            raise PermissionDenied("calling from another agent needs calls:control")
        agent_id = aid
    elif not p.can(Permission.CALLS_CONTROL):
        raise PermissionDenied("customer-first calls need calls:control")
    contact_id = await _voice(ctx).place_call(
        actor.tenant_id, body.to, agent_id=agent_id, queue=body.queue, flow=body.flow
    )
    return {"contact_id": contact_id}


# --- queue statistics ----------------------------------------------------------------------


@router.get("/queues/{queue_id}/stats", operation_id="queue_stats")
async def queue_stats(actor: Authenticated, ctx: Ctx, queue_id: IdPath) -> dict[str, Any]:
    """Waiting contacts, longest wait, agents per state, service level, ASA, abandon rate."""
    if not actor.principal.can(Permission.QUEUES_READ):
        raise PermissionDenied("this needs queues:read")
    await ctx.queues.get(actor, queue_id)  # 404 across tenants
    voice = _voice(ctx)
    report = await voice.acd.query(actor.tenant_id, "queue_report", queue_id)
    if report[0] == "fault":
        raise Conflict(
            f"this queue cannot be routed ({report[1]}); fix it with PATCH /queues/{queue_id} "
            "or delete it (GET /routing/status lists every such row)"
        )
    _, queue, error = report
    stats: dict[str, Any] = _plain(queue)
    stats["health"] = {"ok": error is None, "error": error}
    return stats


@router.get("/routing/status", operation_id="routing_status")
async def routing_status(actor: Authenticated, ctx: Ctx) -> dict[str, Any]:
    """Whether the tenant's routing loaded, and the queue and agent rows it had to leave out
    (each with the reason): those rows route nothing until fixed or deleted."""
    if not actor.principal.can(Permission.QUEUES_READ):
        raise PermissionDenied("this needs queues:read")
    voice = _voice(ctx)
    status: dict[str, Any] = await voice.acd.query(actor.tenant_id, "routing_status")
    return {"ok": not status["faults"], **status}


@router.get("/wallboard", operation_id="wallboard")
async def wallboard(actor: Authenticated, ctx: Ctx) -> dict[str, Any]:
    if not actor.principal.can(Permission.REPORTS_READ):
        raise PermissionDenied("this needs reports:read")
    voice = _voice(ctx)
    board: dict[str, Any] = _plain(await voice.acd.query(actor.tenant_id, "wallboard"))
    return board


def _plain(value: Any) -> Any:
    import dataclasses
    import enum

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(_plain(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


# --- contact records (CDRs) ----------------------------------------------------------------


class ContactFilter(Paging):
    agent_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")] | None = None
    queue: TargetName | None = None
    disposition: Annotated[str, StringConstraints(max_length=32)] | None = None
    customer: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        None,
        description="the customer's number or address, exactly: an agent (calls:own) may read "
        "every earlier contact of a customer whose contact it is offered or handling now",
    )
    since: IsoDateTime | None = None
    until: IsoDateTime | None = None


class ContactOut(BaseModel):
    model_config = {"from_attributes": True}

    id: str
    channel: str
    direction: str
    customer: str
    dialed: str
    state: str
    disposition: str | None
    end_cause: str | None
    queue: str | None
    agent_id: str | None
    created_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    ivr_seconds: float
    queue_seconds: float
    ring_seconds: float
    talk_seconds: float
    hold_seconds: float
    wrapup_seconds: float
    total_seconds: float
    path: list[Any]
    transfers: list[Any]
    recordings: list[Any]
    wrapup_code: str | None
    wrapup_notes: str | None
    attributes: dict[str, Any]
    quality: dict[str, Any]
    legs: list[Any]

    @field_validator("path", "transfers", "legs", "attributes", "quality")
    @classmethod
    def _iso_times(cls, value: Any) -> Any:
        return with_iso_times(value)  # one time format: ISO 8601 with its zone


def _contact_scope(actor: Actor, ctx: Any = None, customer: str | None = None) -> Any:
    p = actor.principal
    conds = [ContactRecord.tenant_id == actor.tenant_id]
    if p.can(Permission.REPORTS_READ) or p.can(Permission.CALLS_CONTROL):
        return conds
    if p.can(Permission.CALLS_OWN) and p.agent_id:
        voice = ctx.extra.get("voice") if ctx is not None else None
        if customer and voice and voice.serves_customer(actor.tenant_id, p.agent_id, customer):
            return conds  # the customer on the agent's line: its whole history
        return [*conds, ContactRecord.agent_id == p.agent_id]
    raise PermissionDenied("reading contact records needs reports:read")


@router.get("/contacts", response_model=PageOut[ContactOut], operation_id="list_contacts")
async def list_contacts(
    actor: Authenticated, ctx: Ctx, query: Annotated[ContactFilter, Query()]
) -> Any:
    """Contact records (CDRs), newest first. An agent reads its own, and every contact of
    the customer (``customer``) whose contact it is offered or handling now."""
    conds = _contact_scope(actor, ctx, query.customer)
    if query.customer:
        conds.append(ContactRecord.customer == query.customer)
    if query.agent_id:
        conds.append(ContactRecord.agent_id == query.agent_id)
    if query.queue:
        conds.append(ContactRecord.queue == query.queue)
    if query.disposition:
        conds.append(ContactRecord.disposition == query.disposition)
    if query.since:
        conds.append(ContactRecord.created_at >= query.since)
    if query.until:
        conds.append(ContactRecord.created_at < query.until)
    if query.q:
        conds.append(ContactRecord.customer.contains(query.q, autoescape=True))
    async with ctx.db.session() as s:
        total = await s.scalar(select(func.count()).select_from(ContactRecord).where(*conds))
        rows = (
            await s.scalars(
                select(ContactRecord)
                .where(*conds)
                .order_by(ContactRecord.created_at.desc())
                .limit(query.limit)
                .offset(query.offset)
            )
        ).all()
    return {"items": rows, "total": total or 0, "limit": query.limit, "offset": query.offset}


@router.get("/contacts/{contact_id}", response_model=ContactOut, operation_id="get_contact")
async def get_contact(actor: Authenticated, ctx: Ctx, contact_id: ContactId) -> Any:
    conds = _contact_scope(actor)
    async with ctx.db.session() as s:
        row = await s.scalar(select(ContactRecord).where(*conds, ContactRecord.id == contact_id))
    if row is None:
        raise NotFound(f"contact {contact_id} not found")
    return row


# --- recordings ----------------------------------------------------------------------------


class RecordingOut(BaseModel):
    model_config = {"from_attributes": True}

    id: str
    contact_id: str
    agent_id: str | None
    channels: int
    state: str
    started_at: datetime
    ended_at: datetime | None
    duration_seconds: float
    bytes: int
    sha256: str | None
    failure_reason: str | None = None  # set when state is "failed": why it was not written


class RecordingFilter(Paging):
    contact_id: ContactId | None = None
    agent_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")] | None = None


def _recording_scope(actor: Actor) -> list[Any]:
    p = actor.principal
    conds: list[Any] = [RecordingRecord.tenant_id == actor.tenant_id]
    if p.can(Permission.RECORDINGS_READ):
        return conds
    if p.can(Permission.CALLS_OWN) and p.agent_id:
        return [*conds, RecordingRecord.agent_id == p.agent_id]
    raise PermissionDenied("this needs recordings:read")


@router.get("/recordings", response_model=PageOut[RecordingOut], operation_id="list_recordings")
async def list_recordings(
    actor: Authenticated, ctx: Ctx, query: Annotated[RecordingFilter, Query()]
) -> Any:
    conds = _recording_scope(actor)
    if query.contact_id:
        conds.append(RecordingRecord.contact_id == query.contact_id)
    if query.agent_id:
        conds.append(RecordingRecord.agent_id == query.agent_id)
    async with ctx.db.session() as s:
        total = await s.scalar(select(func.count()).select_from(RecordingRecord).where(*conds))
        rows = (
            await s.scalars(
                select(RecordingRecord)
                .where(*conds)
                .order_by(RecordingRecord.started_at.desc())
                .limit(query.limit)
                .offset(query.offset)
            )
        ).all()
    return {"items": rows, "total": total or 0, "limit": query.limit, "offset": query.offset}


async def _recording(actor: Actor, ctx: Any, recording_id: str) -> RecordingRecord:
    conds = _recording_scope(actor)
    async with ctx.db.session() as s:
        row: RecordingRecord | None = await s.scalar(
            select(RecordingRecord).where(*conds, RecordingRecord.id == recording_id)
        )
    if row is None:
        raise NotFound(f"recording {recording_id} not found")
    return row


@router.get("/recordings/{recording_id}", response_model=RecordingOut, operation_id="get_recording")
async def get_recording(actor: Authenticated, ctx: Ctx, recording_id: IdPath) -> Any:
    return await _recording(actor, ctx, recording_id)


@router.get(
    "/recordings/{recording_id}/audio",
    operation_id="recording_audio",
    response_class=FileResponse,
    responses={200: {"content": {"audio/wav": {}}, "description": "the WAV file"}},
)
async def recording_audio(
    actor: Authenticated, ctx: Ctx, recording_id: IdPath, request: Request
) -> Response:
    """The recording as WAV; supports Range requests for streaming and seeking."""
    row = await _recording(actor, ctx, recording_id)
    root = ctx.settings.recordings_dir.resolve()
    path = (root / row.path).resolve()
    if not path.is_relative_to(root) or not path.exists():
        raise NotFound(f"the audio of recording {recording_id} is gone")
    return FileResponse(path, media_type="audio/wav", filename=f"{row.contact_id}-{row.id}.wav")


@router.delete("/recordings/{recording_id}", status_code=204, operation_id="delete_recording")
async def delete_recording(actor: Authenticated, ctx: Ctx, recording_id: IdPath) -> Response:
    if not actor.principal.can(Permission.RECORDINGS_DELETE):
        raise PermissionDenied("this needs recordings:delete")
    row = await _recording(actor, ctx, recording_id)
    root = ctx.settings.recordings_dir.resolve()
    path = (root / row.path).resolve()
    if path.is_relative_to(root):
        await asyncio.to_thread(Path(path).unlink, missing_ok=True)
    async with ctx.db.transaction() as s:
        rec = await s.get(RecordingRecord, row.id)
        if rec is not None:
            await s.delete(rec)
        from cloudcc.tenancy import audit

        audit.record(s, actor, "delete", "recording", row.id, {"contact_id": row.contact_id})
    return Response(status_code=204)
