"""The number pool under /api/v1/number-pool: the platform operator provisions numbers to
tenants; a tenant admin sees the numbers provisioned to its tenant."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response, status

from cloudcc.api import schemas as s
from cloudcc.api.crud import ERRORS, IdPath, query_model
from cloudcc.api.security import Authenticated, Ctx

router = APIRouter(tags=["number pool"], responses=ERRORS)

_parse_filters, _parameters = query_model(s.PoolFilter)


@router.get(
    "/number-pool",
    response_model=s.PageOut[s.ProvisionedOut],
    operation_id="list_provisioned_numbers",
    openapi_extra={"parameters": _parameters},
)
async def list_provisioned(
    actor: Authenticated, ctx: Ctx, query: Annotated[s.Paging, Depends(_parse_filters)]
) -> Any:
    """Provisioned numbers: all of them for the platform operator, a tenant's own else."""
    assert isinstance(query, s.PoolFilter)
    page = await ctx.number_pool.list(
        actor,
        tenant_id=query.tenant_id,
        number=query.number,
        limit=query.limit,
        offset=query.offset,
    )
    return page.__dict__


@router.post(
    "/number-pool",
    response_model=s.ProvisionedOut,
    status_code=status.HTTP_201_CREATED,
    operation_id="provision_number",
)
async def provision(actor: Authenticated, ctx: Ctx, body: s.ProvisionIn) -> Any:
    """Provision a number to a tenant (platform operator only)."""
    return await ctx.number_pool.provision(actor, body.number, body.tenant_id)


@router.get(
    "/number-pool/{id}", response_model=s.ProvisionedOut, operation_id="get_provisioned_number"
)
async def get_provisioned(actor: Authenticated, ctx: Ctx, id: IdPath) -> Any:
    return await ctx.number_pool.get(actor, id)


@router.delete(
    "/number-pool/{id}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="withdraw_number",
)
async def withdraw(actor: Authenticated, ctx: Ctx, id: IdPath) -> Response:
    """Take a number back (platform operator only); the tenant's number goes with it unless
    it is bound to one of the tenant's trunks."""
    await ctx.number_pool.withdraw(actor, id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
