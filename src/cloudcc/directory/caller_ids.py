"""The caller IDs a tenant's calls out may present (the rule: ``cloudcc.ivr.caller_id``): its
own numbers, provisioned to it or brought on its own trunk, and its trunks' caller IDs."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudcc.store.tables import PhoneNumber, Trunk


async def tenant_caller_ids(s: AsyncSession, tenant_id: str) -> frozenset[str]:
    numbers = await s.scalars(select(PhoneNumber.number).where(PhoneNumber.tenant_id == tenant_id))
    trunks = await s.scalars(
        select(Trunk.caller_id).where(Trunk.tenant_id == tenant_id, Trunk.caller_id.is_not(None))
    )
    return frozenset(numbers.all()) | frozenset(str(c) for c in trunks.all())
