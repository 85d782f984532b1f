"""Webhook subscriptions (tenant-scoped CRUD with audit) and the record of their deliveries."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudcc.bus import LocalBus
from cloudcc.errors import Invalid, NotFound, QuotaExceeded
from cloudcc.events.model import TypeFilter
from cloudcc.events.tables import WebhookDelivery, WebhookSubscription
from cloudcc.events.targets import TargetPolicy
from cloudcc.store.db import Database
from cloudcc.store.tables import utcnow
from cloudcc.tenancy.crud import Resource
from cloudcc.tenancy.model import Actor, Page, Permission

DELIVERY_STATUSES = ("pending", "delivered", "failed")


class WebhookResource(Resource):
    """A URL and the event types (with ``*`` wildcards) it receives, signed with the tenant's
    webhook secret. Reading needs events:tenant (or webhooks:write); changing, webhooks:write."""

    kind = "webhook"
    model = WebhookSubscription
    read_permission = Permission.EVENTS_TENANT
    write_permission = Permission.WEBHOOKS_WRITE
    search_columns = ("url", "description")
    filter_columns = ("active",)
    secret_inputs = frozenset()

    def __init__(
        self, db: Database, bus: LocalBus, policy: TargetPolicy, max_per_tenant: int = 100
    ) -> None:
        super().__init__(db, bus)
        self.policy = policy
        self.max_per_tenant = max_per_tenant

    def authorize(self, actor: Actor, permission: Permission) -> None:
        p = actor.principal
        if permission is Permission.EVENTS_TENANT and p.can(Permission.WEBHOOKS_WRITE):
            return
        super().authorize(actor, permission)

    async def prepare_create(
        self, s: AsyncSession, actor: Actor, data: dict[str, Any]
    ) -> dict[str, Any]:
        count = await s.scalar(
            select(func.count())
            .select_from(WebhookSubscription)
            .where(WebhookSubscription.tenant_id == actor.tenant_id)
        )
        if (count or 0) >= self.max_per_tenant:
            raise QuotaExceeded(f"a tenant has at most {self.max_per_tenant} webhooks")
        return await self._checked(data)

    async def prepare_update(
        self, s: AsyncSession, actor: Actor, row: Any, data: dict[str, Any]
    ) -> dict[str, Any]:
        return await self._checked(data)

    async def _checked(self, data: dict[str, Any]) -> dict[str, Any]:
        values = dict(data)
        if "url" in values:
            await self.policy.check(values["url"])
        if "event_types" in values:
            values["event_types"] = list(TypeFilter(values["event_types"]).patterns)
        return values

    async def deliveries(
        self,
        actor: Actor,
        subscription_id: str,
        *,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page:
        """The subscription's deliveries, newest first."""
        self.authorize(actor, self.read_permission)
        if status is not None and status not in DELIVERY_STATUSES:
            raise Invalid(f"status is one of {', '.join(DELIVERY_STATUSES)}")
        d = WebhookDelivery
        async with self.db.session() as s:
            await self.load(s, actor.tenant_id, subscription_id)  # 404 for another tenant's
            conds = [d.tenant_id == actor.tenant_id, d.subscription_id == subscription_id]
            if status is not None:
                conds.append(d.status == status)
            total = await s.scalar(select(func.count()).select_from(d).where(*conds))
            rows = (
                await s.scalars(
                    select(d).where(*conds).order_by(d.seq.desc()).limit(limit).offset(offset)
                )
            ).all()
        return Page(
            items=[delivery_view(r) for r in rows],
            total=int(total or 0),
            limit=limit,
            offset=offset,
        )

    async def redeliver(self, actor: Actor, subscription_id: str, delivery_id: str) -> None:
        """Queue a finished delivery again (it keeps its place by sequence)."""
        self.authorize(actor, self.write_permission)
        d = WebhookDelivery
        async with self.db.transaction() as s:
            await self.load(s, actor.tenant_id, subscription_id)
            row = await s.scalar(
                select(d).where(
                    d.tenant_id == actor.tenant_id,
                    d.subscription_id == subscription_id,
                    d.id == delivery_id,
                )
            )
            if row is None:
                raise NotFound(f"delivery {delivery_id} not found")
            if row.status == "pending":
                raise Invalid("the delivery is still pending")
            row.status = "pending"
            row.attempts = 0
            row.completed_at = None
            row.next_attempt_at = utcnow()
        self.bus.publish(
            actor.tenant_id, "webhook.redelivery", {"id": subscription_id, "delivery": delivery_id}
        )


def delivery_view(row: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": row.id,
        "subscription_id": row.subscription_id,
        "event_seq": row.event_seq,
        "event_type": row.event_type,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at if row.status == "pending" else None,
        "last_status": row.last_status,
        "last_error": row.last_error,
        "log": row.log,
        "payload": orjson.loads(row.body),
        "created_at": row.created_at,
        "completed_at": row.completed_at,
    }
