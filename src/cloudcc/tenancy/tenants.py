"""Tenants: creation by the platform operator (or self-service sign-up), settings and quotas."""

from __future__ import annotations

import re
import secrets
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudcc.bus import LocalBus
from cloudcc.store.db import Database
from cloudcc.store.tables import Role, Tenant, User
from cloudcc.tenancy import audit
from cloudcc.tenancy.credentials import hash_password_off_loop
from cloudcc.tenancy.exceptions import Conflict, Invalid, NotFound, PermissionDenied
from cloudcc.tenancy.model import (
    BUILTIN_ROLES,
    PLATFORM_ROLE,
    Actor,
    Page,
    Permission,
    system_actor,
)

PLATFORM_SLUG = "platform"
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")

# What a tenant admin may change about its own tenant; quotas belong to the platform.
SELF_SERVICE_FIELDS = frozenset(
    {
        "name",
        "timezone",
        "recording_retention_days",
        "dial_plan",
        "sip_destinations",
        "srtp_policy",
    }
)
PLATFORM_FIELDS = SELF_SERVICE_FIELDS | {
    "status",
    "max_seats",
    "max_concurrent_calls",
    "rate_limit_rps",
}


def tenant_view(t: Tenant) -> dict[str, Any]:
    return {
        "id": t.id,
        "slug": t.slug,
        "name": t.name,
        "sip_domain": t.sip_domain,
        "timezone": t.timezone,
        "status": t.status,
        "max_seats": t.max_seats,
        "max_concurrent_calls": t.max_concurrent_calls,
        "rate_limit_rps": t.rate_limit_rps,
        "recording_retention_days": t.recording_retention_days,
        "dial_plan": t.dial_plan or {},
        "sip_destinations": t.sip_destinations or [],
        "srtp_policy": t.srtp_policy or "optional",
        "created_at": t.created_at,
        "updated_at": t.updated_at,
    }


def validate_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise Invalid(f"unknown time zone {name!r}", errors=[{"field": "timezone"}]) from exc
    return name


class TenantService:
    def __init__(self, db: Database, bus: LocalBus, sip_domain_suffix: str = "cloudcc.local"):
        self.db = db
        self.bus = bus
        self.sip_domain_suffix = sip_domain_suffix

    async def create(
        self,
        actor: Actor | None,
        *,
        slug: str,
        name: str,
        admin_username: str,
        admin_password: str,
        timezone: str = "UTC",
        sip_domain: str | None = None,
        max_seats: int = 50,
        max_concurrent_calls: int = 100,
    ) -> dict[str, Any]:
        """A new tenant with its built-in roles and first admin user.

        ``actor`` is the platform operator; None means the node itself (first start, sign-up).
        """
        if actor is not None and not actor.principal.can(Permission.PLATFORM_TENANTS):
            raise PermissionDenied("creating tenants needs platform:tenants")
        if not SLUG_RE.match(slug):
            raise Invalid(
                "slug must be lowercase letters, digits and dashes", errors=[{"field": "slug"}]
            )
        validate_timezone(timezone)
        domain = sip_domain or f"{slug}.{self.sip_domain_suffix}"
        async with self.db.transaction() as s:
            clash = await s.scalar(
                select(Tenant.id).where((Tenant.slug == slug) | (Tenant.sip_domain == domain))
            )
            if clash:
                raise Conflict(f"a tenant with slug {slug!r} or SIP domain {domain!r} exists")
            tenant = Tenant(
                slug=slug,
                name=name,
                sip_domain=domain,
                timezone=timezone,
                max_seats=max_seats,
                max_concurrent_calls=max_concurrent_calls,
                webhook_secret=secrets.token_urlsafe(32),
            )
            s.add(tenant)
            await s.flush()
            roles = await self._seed_roles(s, tenant.id, platform=slug == PLATFORM_SLUG)
            admin_role = roles[PLATFORM_ROLE if slug == PLATFORM_SLUG else "admin"]
            admin = User(
                tenant_id=tenant.id,
                username=admin_username,
                display_name="Administrator",
                password_hash=await hash_password_off_loop(admin_password),
                role_id=admin_role.id,
            )
            s.add(admin)
            await s.flush()
            who = actor or system_actor(tenant.id)
            audit.record(s, who, "create", "tenant", tenant.id, {"slug": slug, "name": name})
            view = tenant_view(tenant)
        self.bus.publish(tenant.id, "tenant.created", {"id": tenant.id})
        return {**view, "admin_user_id": admin.id}

    async def _seed_roles(self, s: AsyncSession, tenant_id: str, platform: bool) -> dict[str, Role]:
        roles: dict[str, Role] = {}
        for name, (description, perms) in BUILTIN_ROLES.items():
            roles[name] = Role(
                tenant_id=tenant_id,
                name=name,
                description=description,
                permissions=sorted(p.value for p in perms),
                builtin=True,
            )
        if platform:
            roles[PLATFORM_ROLE] = Role(
                tenant_id=tenant_id,
                name=PLATFORM_ROLE,
                description="Operates the platform: creates and manages tenants",
                permissions=sorted(p.value for p in Permission),
                builtin=True,
            )
        s.add_all(roles.values())
        await s.flush()
        return roles

    async def by_slug(self, slug: str) -> Tenant | None:
        async with self.db.session() as s:
            return await s.scalar(select(Tenant).where(Tenant.slug == slug))

    async def get(self, actor: Actor, tenant_id: str | None = None) -> dict[str, Any]:
        """The caller's own tenant, or any tenant for the platform operator."""
        target = tenant_id or actor.tenant_id
        if target != actor.tenant_id and not actor.principal.can(Permission.PLATFORM_TENANTS):
            raise NotFound(f"tenant {target} not found")
        if target == actor.tenant_id and not actor.principal.can(Permission.TENANT_READ):
            raise PermissionDenied("this needs the permission tenant:read")
        async with self.db.session() as s:
            tenant = await s.get(Tenant, target)
        if tenant is None:
            raise NotFound(f"tenant {target} not found")
        return tenant_view(tenant)

    async def list(self, actor: Actor, limit: int = 50, offset: int = 0) -> Page:
        if not actor.principal.can(Permission.PLATFORM_TENANTS):
            raise PermissionDenied("listing tenants needs platform:tenants")
        async with self.db.session() as s:
            rows = (
                await s.scalars(select(Tenant).order_by(Tenant.id).limit(limit).offset(offset))
            ).all()
            total = len((await s.scalars(select(Tenant.id))).all())
        return Page([tenant_view(t) for t in rows], total, limit, offset)

    async def update(
        self, actor: Actor, data: dict[str, Any], tenant_id: str | None = None
    ) -> dict[str, Any]:
        target = tenant_id or actor.tenant_id
        platform = actor.principal.can(Permission.PLATFORM_TENANTS)
        if target != actor.tenant_id and not platform:
            raise NotFound(f"tenant {target} not found")
        if not platform and not actor.principal.can(Permission.TENANT_WRITE):
            raise PermissionDenied("this needs the permission tenant:write")
        allowed = PLATFORM_FIELDS if platform else SELF_SERVICE_FIELDS
        refused = sorted(set(data) - allowed)
        if refused:
            raise PermissionDenied("you may not change: " + ", ".join(refused))
        if "timezone" in data:
            validate_timezone(data["timezone"])
        async with self.db.transaction() as s:
            tenant = await s.get(Tenant, target)
            if tenant is None:
                raise NotFound(f"tenant {target} not found")
            changes = {}
            for key, value in data.items():
                if key == "dial_plan":  # a partial plan changes the keys it names
                    value = {**(tenant.dial_plan or {}), **value}
                if getattr(tenant, key) != value:
                    changes[key] = [getattr(tenant, key), value]
                    setattr(tenant, key, value)
            if changes:
                audit.record(s, actor, "update", "tenant", tenant.id, changes, tenant_id=target)
            await s.flush()
            view = tenant_view(tenant)
        if changes:
            self.bus.publish(target, "tenant.updated", {"id": target, "fields": sorted(changes)})
        return view

    async def rotate_webhook_secret(self, actor: Actor) -> str:
        if not actor.principal.can(Permission.WEBHOOKS_WRITE):
            raise PermissionDenied("this needs the permission webhooks:write")
        secret = secrets.token_urlsafe(32)
        async with self.db.transaction() as s:
            tenant = await s.get(Tenant, actor.tenant_id)
            assert tenant is not None
            tenant.webhook_secret = secret
            audit.record(s, actor, "rotate_secret", "tenant", tenant.id, {"webhook_secret": "***"})
        self.bus.publish(actor.tenant_id, "tenant.webhook_secret_rotated", {"id": actor.tenant_id})
        return secret
