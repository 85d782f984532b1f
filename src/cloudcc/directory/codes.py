"""A tenant's not-ready reason codes and disposition codes (configuration objects).

Reason codes add to the built-in ones (``cloudcc.routing.model.BUILTIN_REASONS``), which
cannot be redefined; the routing engine follows ``reason_code.*`` events.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cloudcc.routing.model import BUILTIN_REASONS
from cloudcc.store.codes import DispositionCodeRow, ReasonCodeRow
from cloudcc.tenancy.crud import Resource
from cloudcc.tenancy.exceptions import Conflict
from cloudcc.tenancy.model import Actor, Permission

BUILTIN_CODES = frozenset(r.code for r in BUILTIN_REASONS)


class _CodeResource(Resource):
    """A tenant's codes: unique per tenant, and never one of the ``reserved`` built-ins."""

    read_permission = Permission.AGENTS_READ
    write_permission = Permission.AGENTS_WRITE
    search_columns = ("code", "label")
    reserved: frozenset[str] = frozenset()

    async def prepare_create(
        self, s: AsyncSession, actor: Actor, data: dict[str, Any]
    ) -> dict[str, Any]:
        return await self.prepare_update(s, actor, None, data)

    async def prepare_update(
        self, s: AsyncSession, actor: Actor, row: Any, data: dict[str, Any]
    ) -> dict[str, Any]:
        if data.get("code") in self.reserved:
            raise Conflict(f"{data['code']!r} is a built-in {self.kind}; choose another code")
        exclude = row.id if row is not None else None
        await self.ensure_unique(s, actor.tenant_id, ["code"], data, exclude_id=exclude)
        return dict(data)


class ReasonCodeResource(_CodeResource):
    kind = "reason_code"
    model = ReasonCodeRow
    filter_columns = ("code", "cec_state")
    reserved = BUILTIN_CODES


class DispositionCodeResource(_CodeResource):
    kind = "disposition_code"
    model = DispositionCodeRow
    filter_columns = ("code",)
