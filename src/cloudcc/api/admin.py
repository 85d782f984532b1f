"""The admin API under /api/v1: auth, tenants, the directory, IAM and the audit log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from cloudcc.api import calls, codes, flows, pool, prompts, voicemail, webphone
from cloudcc.api import schemas as s
from cloudcc.api.crud import ERRORS, IdPath, crud_router
from cloudcc.api.security import Authenticated, Ctx

PREFIX = "/api/v1"
# The routers are mounted on the app one by one (see ``routers``): one level of nesting keeps
# route matching cheap on the hot read paths.

auth = APIRouter(tags=["auth"], responses=ERRORS)


@auth.post("/auth/login", response_model=s.TokenOut, operation_id="login")
async def login(body: s.LoginIn, ctx: Ctx, request: Request) -> Any:
    """Exchange a tenant, username and password for a bearer token."""
    client = request.client
    return await ctx.auth.login(
        body.tenant,
        body.username,
        body.password,
        client.host if client else None,
        request.headers.get("user-agent"),
    )


@auth.post("/users/{id}/unlock", response_model=s.UnlockOut, operation_id="unlock_user")
async def unlock_user(actor: Authenticated, ctx: Ctx, id: IdPath) -> Any:
    """Clear the user's failed logins and lift its lock (see docs/api.md, login throttling)."""
    return await ctx.auth.unlock(actor, id)


@auth.get("/me", response_model=s.MeOut, operation_id="whoami")
async def me(actor: Authenticated) -> Any:
    p = actor.principal
    return {
        "tenant_id": p.tenant_id,
        "kind": p.kind.value,
        "id": p.id,
        "name": p.name,
        "role": p.role,
        "agent_id": p.agent_id,
        "permissions": sorted(p.permissions),
    }


tenants = APIRouter(tags=["tenants"], responses=ERRORS)


@tenants.get("/tenant", response_model=s.TenantOut, operation_id="get_own_tenant")
async def get_own_tenant(actor: Authenticated, ctx: Ctx) -> Any:
    return await ctx.tenants.get(actor)


@tenants.patch("/tenant", response_model=s.TenantOut, operation_id="update_own_tenant")
async def update_own_tenant(actor: Authenticated, ctx: Ctx, body: s.TenantUpdate) -> Any:
    return await ctx.tenants.update(actor, body.model_dump(exclude_unset=True))


@tenants.post(
    "/tenant/webhook-secret",
    response_model=s.WebhookSecretOut,
    operation_id="rotate_webhook_secret",
)
async def rotate_webhook_secret(actor: Authenticated, ctx: Ctx) -> Any:
    return {"webhook_secret": await ctx.tenants.rotate_webhook_secret(actor)}


@tenants.get("/tenants", response_model=s.PageOut[s.TenantOut], operation_id="list_tenants")
async def list_tenants(actor: Authenticated, ctx: Ctx, query: Annotated[s.Paging, Query()]) -> Any:
    """Every tenant (platform operator only)."""
    return (await ctx.tenants.list(actor, query.limit, query.offset)).__dict__


@tenants.post("/tenants", response_model=s.TenantOut, status_code=201, operation_id="create_tenant")
async def create_tenant(actor: Authenticated, ctx: Ctx, body: s.TenantCreate) -> Any:
    """Create a tenant with its built-in roles and first admin (platform operator only)."""
    return await ctx.tenants.create(actor, **body.model_dump())


@tenants.get("/tenants/{id}", response_model=s.TenantOut, operation_id="get_tenant")
async def get_tenant(actor: Authenticated, ctx: Ctx, id: IdPath) -> Any:
    return await ctx.tenants.get(actor, id)


@tenants.patch("/tenants/{id}", response_model=s.TenantOut, operation_id="update_tenant")
async def update_tenant(actor: Authenticated, ctx: Ctx, id: IdPath, body: s.TenantUpdate) -> Any:
    return await ctx.tenants.update(actor, body.model_dump(exclude_unset=True), id)


audit = APIRouter(tags=["audit"], responses=ERRORS)


@audit.get("/audit-log", response_model=s.PageOut[s.AuditOut], operation_id="query_audit_log")
async def query_audit_log(
    actor: Authenticated, ctx: Ctx, query: Annotated[s.AuditFilter, Query()]
) -> Any:
    """Who changed what, when and from where; newest first."""
    page = await ctx.audit.query(actor, **query.model_dump(exclude={"q"}, exclude_none=True))
    return page.__dict__


routers: list[APIRouter] = [
    auth,
    tenants,
    audit,
    flows.tools,
    flows.router,
    calls.router,
    webphone.router,
    prompts.router,
    prompts.speech,
    pool.router,
    voicemail.router,
]
routers += codes.routers
routers += [
    crud_router(
        "/agents",
        "agent",
        lambda c: c.agents,
        s.AgentCreate,
        s.AgentUpdate,
        s.AgentOut,
        s.AgentFilter,
        "agents",
    ),
    crud_router(
        "/queues",
        "queue",
        lambda c: c.queues,
        s.QueueCreate,
        s.QueueUpdate,
        s.QueueOut,
        s.QueueFilter,
        "queues",
    ),
    crud_router(
        "/numbers",
        "number",
        lambda c: c.numbers,
        s.NumberCreate,
        s.NumberUpdate,
        s.NumberOut,
        s.NumberFilter,
        "numbers",
    ),
    crud_router(
        "/trunks",
        "trunk",
        lambda c: c.trunks,
        s.TrunkCreate,
        s.TrunkUpdate,
        s.TrunkOut,
        s.TrunkFilter,
        "trunks",
    ),
    crud_router(
        "/business-hours",
        "business_hours",
        lambda c: c.hours,
        s.HoursCreate,
        s.HoursUpdate,
        s.HoursOut,
        s.HoursFilter,
        "business hours",
    ),
    crud_router(
        "/users",
        "user",
        lambda c: c.users,
        s.UserCreate,
        s.UserUpdate,
        s.UserOut,
        s.UserFilter,
        "users",
    ),
    crud_router(
        "/roles",
        "role",
        lambda c: c.roles,
        s.RoleCreate,
        s.RoleUpdate,
        s.RoleOut,
        s.RoleFilter,
        "roles",
    ),
    crud_router(
        "/api-keys",
        "api_key",
        lambda c: c.api_keys,
        s.ApiKeyCreate,
        s.ApiKeyUpdate,
        s.ApiKeyOut,
        s.ApiKeyFilter,
        "API keys",
        created_out=s.ApiKeyCreated,
    ),
]
