"""The event stream (WebSocket ``/events/ws``, long-poll ``/events``) and webhook subscriptions.

Thin: authenticates, turns query parameters into a ``Selection``, and moves messages between
``cloudcc.events`` and the socket. The protocol is described in ``docs/events.md``.
"""

# No "from __future__ import annotations": FastAPI reads the signatures at definition.

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, FastAPI, Header, Path, Query, Response, WebSocket, status
from pydantic import BaseModel, Field, StringConstraints
from starlette.websockets import WebSocketDisconnect, WebSocketState

from cloudcc.api import schemas as s
from cloudcc.api.context import ApiContext
from cloudcc.api.crud import ERRORS, IdPath, crud_router
from cloudcc.api.security import Authenticated, Ctx
from cloudcc.errors import AuthenticationError, Invalid, PermissionDenied, RateLimited
from cloudcc.events import model
from cloudcc.events.model import Selection, select_for
from cloudcc.events.service import EventsService
from cloudcc.events.stream import CutOff, Feed
from cloudcc.tenancy.auth import AuthService
from cloudcc.tenancy.credentials import KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from cloudcc.tenancy.model import Principal, PrincipalKind

PREFIX = "/api/v1"

# WebSocket close codes (RFC 6455 §7.4.2 leaves 4000-4999 to applications).
CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_RATE_LIMITED = 4429
CLOSE_TOO_SLOW = 1013  # "try again later": resume from the last seq received


def _service(ctx: ApiContext) -> EventsService:
    service: EventsService = ctx.extra["events"]
    return service


# --- wire shapes --------------------------------------------------------------------------

SinceText = Annotated[int, Field(ge=0, le=2**62)]
TypesText = Annotated[str, StringConstraints(max_length=2000)]
ScopeText = Literal["tenant", "supervisor", "agent"]


class EventOut(BaseModel):
    seq: int
    type: str
    at: float
    data: dict[str, Any]


class EventsPoll(s.Strict):
    since: SinceText | None = Field(
        None, description="the last seq received; omitted: only events from now on"
    )
    wait: float = Field(0, ge=0, le=30, description="seconds to wait for a first event")
    limit: int = Field(100, ge=1, le=1000)
    scope: ScopeText | None = None
    agent_id: s.Id | None = None
    types: TypesText | None = Field(None, description="comma-separated, * wildcards: contact.*")


class EventsPage(BaseModel):
    events: list[EventOut] = Field(
        description="events in seq order; a stream.gap message first when some were lost"
    )
    next: int = Field(description="pass as since= on the next poll")
    last_seq: int


EventTypes = Annotated[
    list[Annotated[str, StringConstraints(min_length=1, max_length=100)]],
    Field(min_length=1, max_length=50),
]
Url = Annotated[str, StringConstraints(min_length=8, max_length=2000)]


class WebhookCreate(s.Body):
    url: Url
    event_types: EventTypes = Field(description="event types, * as a wildcard: contact.*")
    active: bool = True
    description: s.Description = ""


class WebhookUpdate(s.Body):
    url: Url = s.UNSET
    event_types: EventTypes = s.UNSET
    active: bool = s.UNSET
    description: s.Description = s.UNSET


class WebhookOut(s.Out):
    id: str
    url: str
    event_types: list[str]
    active: bool
    description: str
    created_at: datetime
    updated_at: datetime


class WebhookFilter(s.Paging):
    active: bool | None = None


class DeliveryFilter(s.Strict):
    status: Literal["pending", "delivered", "failed"] | None = None
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=1_000_000)


class DeliveryOut(BaseModel):
    id: str
    subscription_id: str
    event_seq: int
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    log: list[dict[str, Any]]
    payload: dict[str, Any]
    created_at: datetime
    completed_at: datetime | None


# --- long-poll ----------------------------------------------------------------------------

stream = APIRouter(tags=["events"], responses=ERRORS)


@stream.get(
    "/events",
    response_model=EventsPage,
    operation_id="poll_events",
    summary="Events after a position (long-poll)",
)
async def poll_events(
    actor: Authenticated,
    ctx: Ctx,
    query: Annotated[EventsPoll, Query()],
    last_event_id: Annotated[str | None, Header()] = None,
) -> Any:
    """The caller's events after ``since`` in seq order, waiting up to ``wait`` seconds for
    the first one. Poll again with ``since=next``: nothing is skipped or repeated."""
    selection = select_for(actor.principal, query.scope, query.agent_id, query.types)
    since = query.since if query.since is not None else _since_header(last_event_id)
    service = _service(ctx)
    _client_presence(ctx, actor.principal, "client_seen")
    try:
        messages, next_position = await service.poll(
            actor.tenant_id, selection, since, wait=query.wait, limit=query.limit
        )
    finally:
        _client_presence(ctx, actor.principal, "client_seen")  # the wait counted too
    body = {
        "events": [m.to_dict() if not isinstance(m, dict) else m for m in messages],
        "next": next_position,
        "last_seq": ctx.bus.last_seq(actor.tenant_id),
    }
    return Response(orjson.dumps(body, default=str), media_type="application/json")


def _since_header(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        since = int(value)
    except ValueError:
        raise Invalid("Last-Event-ID must be the seq of the last event received") from None
    if since < 0:
        raise Invalid("Last-Event-ID must not be negative")
    return since


# --- WebSocket ----------------------------------------------------------------------------


@dataclass
class _Credentials:
    principal: Principal
    token: str | None  # checked again while the stream lasts
    first: dict[str, Any]  # the first message when it carried the credentials
    access_key: str | None = None  # a signed API key's, checked again too

    async def recheck(self, auth: AuthService) -> None:
        """Raise AuthenticationError once the token is revoked or the key disabled."""
        if self.token:
            await auth.from_token(self.token)
        elif self.access_key:
            await auth.from_access_key(self.access_key)


@stream.websocket("/events/ws")
async def event_stream(websocket: WebSocket) -> None:
    """The caller's events as JSON text messages; see docs/events.md."""
    ctx: ApiContext = websocket.app.state.ctx
    service = _service(ctx)
    await websocket.accept()
    try:
        creds = await _authenticate(websocket, ctx, service.auth_timeout)
        if creds is None:
            return  # gone before saying who it is
        params = {**dict(websocket.query_params), **creds.first}
        selection = select_for(
            creds.principal,
            _text(params.get("scope")),
            _text(params.get("agent_id")),
            _text(params.get("types")),
        )
        since = _since(params, websocket.headers.get("last-event-id"))
        _rate_limit(ctx, creds.principal)
        feed = service.open(
            creds.principal.tenant_id,
            selection,
            since,
            principal=creds.principal.id,
            seats=creds.principal.tenant_seats,
        )
    except AuthenticationError as exc:
        await _close(websocket, CLOSE_UNAUTHENTICATED, exc.detail)
        return
    except PermissionDenied as exc:
        await _close(websocket, CLOSE_FORBIDDEN, exc.detail)
        return
    except RateLimited as exc:
        await _close(websocket, CLOSE_RATE_LIMITED, exc.detail)
        return
    except Invalid as exc:
        await _close(websocket, CLOSE_BAD_REQUEST, exc.detail)
        return
    _client_presence(ctx, creds.principal, "stream_opened")
    try:
        await _Pump(websocket, ctx, service, feed, selection, creds).run()
    finally:
        service.release(feed)
        _client_presence(ctx, creds.principal, "stream_closed")


def _client_presence(ctx: ApiContext, principal: Principal, what: str) -> None:
    """An agent's own poll or stream keeps its client session alive (see agent_heartbeat)."""
    voice = ctx.extra.get("voice")
    if voice is not None and principal.agent_id:
        getattr(voice.agents, what)(principal.tenant_id, principal.agent_id)


class _Pump:
    """Moves a feed to the socket; reads the client's pings and notices its departure."""

    def __init__(
        self,
        websocket: WebSocket,
        ctx: ApiContext,
        service: EventsService,
        feed: Feed,
        selection: Selection,
        creds: _Credentials,
    ) -> None:
        self.ws = websocket
        self.ctx = ctx
        self.service = service
        self.feed = feed
        self.selection = selection
        self.creds = creds
        self.sent = feed.started_at  # the seq of the last message the client was sent
        self.lock = asyncio.Lock()

    async def run(self) -> None:
        reader = asyncio.create_task(self.read())
        writer = asyncio.create_task(self.write())
        try:
            await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, writer):
                task.cancel()
            results = await asyncio.gather(reader, writer, return_exceptions=True)
        failure = results[1]
        if isinstance(failure, CutOff):
            await _close(
                self.ws,
                CLOSE_TOO_SLOW,
                f"too slow: reconnect with since={self.sent} to resume",
            )
        elif isinstance(failure, AuthenticationError):
            await _close(self.ws, CLOSE_UNAUTHENTICATED, failure.detail)
        elif isinstance(failure, TimeoutError):
            pass  # the peer stopped reading; its transport is closed when we return
        elif isinstance(failure, Exception) and not isinstance(failure, WebSocketDisconnect):
            raise failure

    async def send(self, message: Any, seq: int) -> None:
        async with self.lock:
            async with asyncio.timeout(self.service.send_timeout):
                await self.ws.send_text(self.service.encode(message))
            self.sent = seq

    async def write(self) -> None:
        feed = self.feed
        heartbeat = self.service.heartbeat_seconds
        hello = model.control(
            model.HELLO,
            feed.started_at,
            {
                **self.selection.describe(),
                "tenant_id": feed.tenant_id,
                "last_seq": self.ctx.bus.last_seq(feed.tenant_id),
                "heartbeat": heartbeat,
            },
        )
        await self.send(hello, feed.started_at)
        # The first check comes a random part of the period early: streams opened together
        # (1,000 agents signing in at the start of a shift) do not all ask at once.
        checked = time.monotonic() - random.uniform(0, 0.5) * self.service.revalidate_seconds
        while True:
            message = await feed.next(heartbeat)
            # Busy or idle, the credentials are asked again every revalidate_seconds.
            if time.monotonic() - checked > self.service.revalidate_seconds:
                await self.creds.recheck(self.ctx.auth)
                checked = time.monotonic()
            if message is None:
                position = feed.idle_position()
                await self.send(model.control(model.HEARTBEAT, position, {}), position)
                continue
            seq = message["seq"] if isinstance(message, dict) else message.seq
            await self.send(message, seq)

    async def read(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if not text:
                continue
            try:
                body = orjson.loads(text)
            except orjson.JSONDecodeError:
                continue
            if isinstance(body, dict) and body.get("type") == "ping":
                async with self.lock:
                    pong = model.control(model.PONG, self.sent, {"echo": body.get("data")})
                    async with asyncio.timeout(self.service.send_timeout):
                        await self.ws.send_text(model.encode(pong))


async def _authenticate(websocket: WebSocket, ctx: ApiContext, wait: float) -> _Credentials | None:
    """From the handshake (bearer header, access_token query, signed API key headers) or, when
    it has none, from a first message ``{"type": "auth", "access_token": ...}``."""
    headers = websocket.headers
    authorization = headers.get("authorization")
    query_token = websocket.query_params.get("access_token")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("use 'Authorization: Bearer <token>'")
        return _Credentials(await ctx.auth.from_token(token.strip()), token.strip(), {})
    if query_token:
        return _Credentials(await ctx.auth.from_token(query_token), query_token, {})
    if KEY_HEADER in headers:
        timestamp = headers.get(TIMESTAMP_HEADER)
        signature = headers.get(SIGNATURE_HEADER)
        if not timestamp or not signature:
            raise AuthenticationError(
                f"signed requests need {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} headers"
            )
        path = websocket.url.path
        if websocket.url.query:
            path += "?" + websocket.url.query
        principal = await ctx.auth.from_signature(
            headers[KEY_HEADER], timestamp, signature, "GET", path, b""
        )
        return _Credentials(principal, None, {}, access_key=headers[KEY_HEADER])
    try:
        async with asyncio.timeout(wait):
            message = await websocket.receive()
    except TimeoutError:
        raise AuthenticationError(
            f'no credentials: send {{"type": "auth", "access_token": ...}} within {wait:g} s'
        ) from None
    if message["type"] == "websocket.disconnect":
        return None
    try:
        first = orjson.loads(message.get("text") or b"")
    except orjson.JSONDecodeError:
        first = None
    if (
        not isinstance(first, dict)
        or first.get("type") != "auth"
        or not isinstance(first.get("access_token"), str)
    ):
        raise AuthenticationError(
            "authenticate first: a bearer token, a signed API key, or a first message "
            '{"type": "auth", "access_token": "..."}'
        )
    token = first["access_token"]
    options = {
        k: first[k]
        for k in ("since", "last_event_id", "scope", "agent_id", "types")
        if first.get(k) is not None
    }
    return _Credentials(await ctx.auth.from_token(token), token, options)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):  # types as a JSON list in the first message
        value = ",".join(str(v) for v in value)
    if not isinstance(value, str):
        raise Invalid("scope, agent_id and types are text")
    return value


def _since(params: dict[str, Any], header: str | None) -> int | None:
    raw = params.get("since", params.get("last_event_id", header))
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        raise Invalid("since must be the seq of the last event received")
    try:
        since = int(raw)
    except (TypeError, ValueError):
        raise Invalid("since must be the seq of the last event received") from None
    if since < 0:
        raise Invalid("since must not be negative")
    return since


def _rate_limit(ctx: ApiContext, principal: Principal) -> None:
    now = time.monotonic()
    limits = ctx.settings.limits
    wait = ctx.tenant_limiter.check(
        principal.tenant_id, now, principal.tenant_rps or limits.tenant_rps
    )
    if wait:
        raise RateLimited("the tenant's request rate limit is reached", wait)
    if principal.kind is PrincipalKind.API_KEY and principal.id:
        wait = ctx.key_limiter.check(
            principal.id, now, principal.rate_limit_rps or limits.api_key_rps
        )
        if wait:
            raise RateLimited("this API key's request rate limit is reached", wait)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    """Close with ``code``; the reason is cut to the 123 bytes a close frame allows."""
    if websocket.application_state is WebSocketState.DISCONNECTED:
        return
    raw = reason.encode()[:123]
    with contextlib.suppress(RuntimeError, WebSocketDisconnect, TimeoutError, OSError):
        async with asyncio.timeout(5):
            await websocket.close(code, raw.decode(errors="ignore"))


# --- webhooks -----------------------------------------------------------------------------

webhooks = crud_router(
    "/webhooks",
    "webhook",
    lambda c: c.extra["webhooks"],
    WebhookCreate,
    WebhookUpdate,
    WebhookOut,
    WebhookFilter,
    "webhooks",
)
deliveries = APIRouter(tags=["webhooks"], responses=ERRORS)


@deliveries.get(
    "/webhooks/{id}/deliveries",
    response_model=s.PageOut[DeliveryOut],
    operation_id="list_webhook_deliveries",
    summary="Deliveries of a webhook, newest first",
)
async def list_deliveries(
    actor: Authenticated, ctx: Ctx, id: IdPath, query: Annotated[DeliveryFilter, Query()]
) -> Any:
    page = await _service(ctx).webhooks.deliveries(
        actor, id, status=query.status, limit=query.limit, offset=query.offset
    )
    return page.__dict__


class RedeliveryOut(BaseModel):
    id: str
    status: Literal["pending"]


@deliveries.post(
    "/webhooks/{id}/deliveries/{delivery_id}/retry",
    response_model=RedeliveryOut,
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="redeliver_webhook",
    summary="Send a finished delivery again",
)
async def redeliver(
    actor: Authenticated,
    ctx: Ctx,
    id: IdPath,
    delivery_id: Annotated[s.Id, Path(description="the delivery's id")],
) -> Any:
    await _service(ctx).webhooks.redeliver(actor, id, delivery_id)
    return {"id": delivery_id, "status": "pending"}


routers: list[APIRouter] = [stream, webhooks, deliveries]


def install(app: FastAPI) -> None:
    """Mount the routers on ``app`` under /api/v1 (the service must be in ``ctx.extra``)."""
    for router in routers:
        app.include_router(router, prefix=PREFIX)
