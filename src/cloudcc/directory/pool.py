"""The platform's number pool: the operator provisions numbers (DIDs) to tenants.

A tenant admin creates a number (``/numbers``) only when the operator provisioned it to the
tenant, or on one of the tenant's own trunks (bring your own number). The operator sees and
changes the whole pool; a tenant sees the numbers provisioned to it, and nothing of others.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, select

from cloudcc.bus import LocalBus
from cloudcc.store.db import Database
from cloudcc.store.tables import PhoneNumber, ProvisionedNumber, Tenant
from cloudcc.tenancy import audit
from cloudcc.tenancy.exceptions import Conflict, NotFound, PermissionDenied
from cloudcc.tenancy.model import Actor, Page, Permission


def held_as_provisioned() -> ColumnElement[bool]:
    """A tenant's number and the pool's entry name the same digits and the same tenant."""
    return and_(
        PhoneNumber.number == ProvisionedNumber.number,
        PhoneNumber.tenant_id == ProvisionedNumber.tenant_id,
    )


def _view(row: ProvisionedNumber, in_use: bool) -> dict[str, Any]:
    return {
        "id": row.id,
        "number": row.number,
        "tenant_id": row.tenant_id,
        "in_use": in_use,
        "created_at": row.created_at,
    }


class NumberPool:
    def __init__(self, db: Database, bus: LocalBus) -> None:
        self.db = db
        self.bus = bus

    @staticmethod
    def _operator(actor: Actor) -> bool:
        return actor.principal.can(Permission.PLATFORM_TENANTS)

    async def list(
        self,
        actor: Actor,
        *,
        tenant_id: str | None = None,
        number: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page:
        """The whole pool for the operator; a tenant's own provisioned numbers otherwise."""
        if not self._operator(actor):
            if not actor.principal.can(Permission.NUMBERS_READ):
                raise PermissionDenied("this needs the permission numbers:read")
            tenant_id = actor.tenant_id
        query = select(ProvisionedNumber)
        if tenant_id is not None:
            query = query.where(ProvisionedNumber.tenant_id == tenant_id)
        if number is not None:
            query = query.where(ProvisionedNumber.number == number)
        in_use = select(PhoneNumber.id).where(held_as_provisioned()).exists()
        async with self.db.session() as s:
            total = await s.scalar(select(func.count()).select_from(query.subquery()))
            rows = (
                await s.execute(
                    query.add_columns(in_use)
                    .order_by(ProvisionedNumber.number)
                    .limit(limit)
                    .offset(offset)
                )
            ).all()
        return Page([_view(r, used) for r, used in rows], int(total or 0), limit, offset)

    async def provision(self, actor: Actor, number: str, tenant_id: str) -> dict[str, Any]:
        """Give ``number`` to a tenant (operator only)."""
        if not self._operator(actor):
            raise PermissionDenied("provisioning numbers needs platform:tenants")
        async with self.db.transaction() as s:
            if await s.get(Tenant, tenant_id) is None:
                raise NotFound(f"tenant {tenant_id} not found")
            holder = await s.scalar(
                select(ProvisionedNumber.tenant_id).where(ProvisionedNumber.number == number)
            )
            if holder is not None:
                raise Conflict(
                    f"number {number} is provisioned to tenant {holder}; remove it from the "
                    "pool first"
                )
            row = ProvisionedNumber(number=number, tenant_id=tenant_id)
            s.add(row)
            await s.flush()
            audit.record(
                s, actor, "provision", "number", row.id, {"number": number}, tenant_id=tenant_id
            )
            view = _view(row, False)
        self.bus.publish(tenant_id, "number.provisioned", {"id": row.id, "number": number})
        return view

    async def get(self, actor: Actor, id: str) -> dict[str, Any]:
        async with self.db.session() as s:
            row = await s.get(ProvisionedNumber, id)
            if row is None or not (self._operator(actor) or row.tenant_id == actor.tenant_id):
                raise NotFound(f"provisioned number {id} not found")
            if not self._operator(actor) and not actor.principal.can(Permission.NUMBERS_READ):
                raise PermissionDenied("this needs the permission numbers:read")
            used = await s.scalar(
                select(PhoneNumber.id).where(
                    PhoneNumber.number == row.number, PhoneNumber.tenant_id == row.tenant_id
                )
            )
            return _view(row, used is not None)

    async def withdraw(self, actor: Actor, id: str) -> None:
        """Take a number back from its tenant (operator only). The tenant's number goes
        with it unless the tenant bound it to one of its own trunks (then it stays as a
        number the tenant brings itself)."""
        if not self._operator(actor):
            raise PermissionDenied("withdrawing numbers needs platform:tenants")
        async with self.db.transaction() as s:
            row = await s.get(ProvisionedNumber, id)
            if row is None:
                raise NotFound(f"provisioned number {id} not found")
            tenant_id, number = row.tenant_id, row.number
            gone = (
                await s.scalars(
                    select(PhoneNumber.id).where(
                        PhoneNumber.tenant_id == tenant_id,
                        PhoneNumber.number == number,
                        PhoneNumber.trunk_id.is_(None),
                    )
                )
            ).all()
            await s.execute(delete(PhoneNumber).where(PhoneNumber.id.in_(gone)))
            await s.delete(row)
            audit.record(
                s,
                actor,
                "withdraw",
                "number",
                id,
                {"number": number, "deleted_numbers": list(gone)},
                tenant_id=tenant_id,
            )
        for number_id in gone:
            self.bus.publish(tenant_id, "number.deleted", {"id": number_id})
        self.bus.publish(tenant_id, "number.withdrawn", {"id": id, "number": number})
