"""IVR flows: drafts, validation, publishing, versions and rollback (``/api/v1/flows``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from cloudcc.api import schemas as s
from cloudcc.api.crud import ERRORS, IdPath
from cloudcc.api.security import Authenticated, Ctx
from cloudcc.ivr import flow_json_schema

router = APIRouter(prefix="/flows", tags=["flows"], responses=ERRORS)
# Beside /flows, not under it: /flows/{id} must not also match these literal names.
tools = APIRouter(tags=["flows"], responses=ERRORS)
VersionNumber = Annotated[int, Path(ge=1, le=s.MAX_INT)]


@tools.get("/flow-schema", operation_id="flow_schema")
async def flow_schema() -> dict[str, Any]:
    """The JSON Schema of a flow document, for flow editors."""
    return flow_json_schema()


@tools.post("/flow-validation", response_model=s.ValidationOut, operation_id="validate_flow")
async def validate(actor: Authenticated, ctx: Ctx, body: s.ValidateIn) -> Any:
    """Every problem of a document, each naming its node, without storing anything."""
    problems = await ctx.flows.validate(actor, body.document)
    return {"valid": not problems, "problems": problems}


@router.get("", response_model=s.PageOut[s.FlowSummary], operation_id="list_flows")
async def list_flows(actor: Authenticated, ctx: Ctx, q: Annotated[s.Paging, Query()]) -> Any:
    return (await ctx.flows.page(actor, q.limit, q.offset)).__dict__


@router.post("", response_model=s.FlowSummary, status_code=201, operation_id="create_flow")
async def create_flow(actor: Authenticated, ctx: Ctx, body: s.FlowCreate) -> Any:
    """A new flow; the document becomes its first draft (publish it to put it in service)."""
    return await ctx.flows.create(actor, body.document)


@router.get("/{id}", response_model=s.FlowDetail, operation_id="get_flow")
async def get_flow(actor: Authenticated, ctx: Ctx, id: IdPath) -> Any:
    return await ctx.flows.get(actor, id)


@router.delete("/{id}", status_code=204, operation_id="delete_flow")
async def delete_flow(actor: Authenticated, ctx: Ctx, id: IdPath) -> Response:
    await ctx.flows.delete(actor, id)
    return Response(status_code=204)


@router.put("/{id}/draft", response_model=s.FlowSummary, operation_id="save_flow_draft")
async def save_draft(actor: Authenticated, ctx: Ctx, id: IdPath, body: s.DraftSave) -> Any:
    """Replace the draft (drafts may be invalid; publishing validates)."""
    return await ctx.flows.save_draft(actor, id, body.document, body.expected_revision)


@router.delete("/{id}/draft", response_model=s.FlowSummary, operation_id="discard_flow_draft")
async def discard_draft(actor: Authenticated, ctx: Ctx, id: IdPath) -> Any:
    return await ctx.flows.discard_draft(actor, id)


@router.post("/{id}/publish", response_model=s.FlowSummary, operation_id="publish_flow")
async def publish(actor: Authenticated, ctx: Ctx, id: IdPath, body: s.PublishIn) -> Any:
    """Validate the draft and make it the published version (422 lists each node's problem)."""
    return await ctx.flows.publish(actor, id, body.expected_revision)


@router.post("/{id}/rollback", response_model=s.FlowSummary, operation_id="rollback_flow")
async def rollback(actor: Authenticated, ctx: Ctx, id: IdPath, body: s.RollbackIn) -> Any:
    """Publish again an earlier version (a new version number; history is kept)."""
    return await ctx.flows.rollback(actor, id, body.to_version)


@router.get(
    "/{id}/versions", response_model=list[s.FlowVersionOut], operation_id="list_flow_versions"
)
async def versions(actor: Authenticated, ctx: Ctx, id: IdPath) -> Any:
    return await ctx.flows.versions(actor, id)


@router.get(
    "/{id}/versions/{number}",
    response_model=s.FlowVersionDetail,
    operation_id="get_flow_version",
)
async def version(actor: Authenticated, ctx: Ctx, id: IdPath, number: VersionNumber) -> Any:
    return await ctx.flows.version(actor, id, number)


@router.post(
    "/{id}/versions/{number}/edit", response_model=s.FlowSummary, operation_id="edit_flow_version"
)
async def edit_version(actor: Authenticated, ctx: Ctx, id: IdPath, number: VersionNumber) -> Any:
    """Start the draft from an earlier version's document."""
    return await ctx.flows.edit_version(actor, id, number)
