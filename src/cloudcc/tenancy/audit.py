"""The operation (audit) log: who changed what, when, and from where."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudcc.store.db import Database
from cloudcc.store.tables import AuditEntry
from cloudcc.tenancy.exceptions import PermissionDenied
from cloudcc.tenancy.model import Actor, Page, Permission

REDACTED = "***"


def record(
    session: AsyncSession,
    actor: Actor,
    action: str,
    resource_type: str,
    resource_id: str | None,
    changes: dict[str, Any] | None = None,
    *,
    tenant_id: str | None = None,
) -> None:
    """Add an entry to the session; it commits with the change it describes.

    ``tenant_id`` names the tenant whose log gets the entry when it is not the actor's own
    (the platform operator changing a tenant).
    """
    p = actor.principal
    session.add(
        AuditEntry(
            tenant_id=tenant_id or actor.tenant_id,
            actor_type=p.kind.value,
            actor_id=p.id,
            actor_name=p.name,
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            changes=_jsonable(changes or {}),
            ip=actor.ip,
            user_agent=(actor.user_agent or "")[:300] or None,
        )
    )


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def query(
        self,
        actor: Actor,
        *,
        resource_type: str | None = None,
        resource_id: str | None = None,
        actor_id: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page:
        if not actor.principal.can(Permission.AUDIT_READ):
            raise PermissionDenied("reading the audit log needs audit:read")
        conds = [AuditEntry.tenant_id == actor.tenant_id]
        if resource_type:
            conds.append(AuditEntry.resource_type == resource_type)
        if resource_id:
            conds.append(AuditEntry.resource_id == resource_id)
        if actor_id:
            conds.append(AuditEntry.actor_id == actor_id)
        if action:
            conds.append(AuditEntry.action == action)
        if since:
            conds.append(AuditEntry.at >= since)
        if until:
            conds.append(AuditEntry.at < until)
        table = AuditEntry.__table__
        async with self.db.session() as s:
            total = (
                await s.execute(select(func.count()).select_from(table).where(*conds))
            ).scalar()
            rows = await s.execute(
                select(table)
                .where(*conds)
                .order_by(AuditEntry.seq.desc())
                .limit(limit)
                .offset(offset)
            )
            items = [
                {k: v for k, v in row.items() if k not in ("tenant_id", "seq")}
                for row in rows.mappings()
            ]
        return Page(items=items, total=int(total or 0), limit=limit, offset=offset)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
