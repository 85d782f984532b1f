"""Routes for a ``Resource``: list (paged, filtered), create, read, update, delete."""

# No "from __future__ import annotations": FastAPI must see the closure types at definition.

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from cloudcc.api.context import ApiContext
from cloudcc.api.schemas import Id, PageOut, Paging, Problem
from cloudcc.api.security import Authenticated, Ctx
from cloudcc.tenancy.crud import Resource

_PROBLEM = {"application/problem+json": {"schema": Problem.model_json_schema()}}
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": desc, "content": _PROBLEM}
    for code, desc in {
        "400": "malformed request",
        "401": "not authenticated",
        "403": "not permitted",
        "404": "not found in your tenant",
        "409": "conflicts with existing data",
        "413": "body too large",
        "422": "invalid input",
        "429": "rate limited (see Retry-After)",
        "503": "the node is at its request limit (see Retry-After)",
    }.items()
}

IdPath = Annotated[Id, Path(description="the object's id")]


def crud_router(
    path: str,
    name: str,
    resource: Callable[[ApiContext], Resource],
    create: type[BaseModel],
    update: type[BaseModel],
    out: type[BaseModel],
    filters: type[Paging],
    tag: str,
    created_out: type[BaseModel] | None = None,
) -> APIRouter:
    router = APIRouter(prefix=path, tags=[tag], responses=ERRORS)
    page = PageOut[out]  # type: ignore[valid-type]

    parse_query, parameters = query_model(filters)

    @router.get(
        "",
        response_model=page,
        operation_id=f"list_{name}s",
        summary=f"List {tag}",
        openapi_extra={"parameters": parameters},
    )
    async def list_items(
        actor: Authenticated, ctx: Ctx, paging: Annotated[Paging, Depends(parse_query)]
    ) -> Any:
        params = paging.model_dump(exclude={"limit", "offset", "q"}, exclude_none=True)
        result = await resource(ctx).list(
            actor, filters=params, q=paging.q, limit=paging.limit, offset=paging.offset
        )
        # The hot read path: items are the resource's own output rows, so they are encoded
        # directly (orjson) rather than validated again; the tests check them against the
        # schema.
        return Response(orjson.dumps(result.__dict__), media_type="application/json")

    @router.post(
        "",
        response_model=created_out or out,
        status_code=status.HTTP_201_CREATED,
        operation_id=f"create_{name}",
        summary=f"Create a {name}",
    )
    async def create_item(actor: Authenticated, ctx: Ctx, body: create) -> Any:  # type: ignore[valid-type]
        data = _dump(body)
        return await resource(ctx).create(actor, data)

    @router.get("/{id}", response_model=out, operation_id=f"get_{name}", summary=f"Read a {name}")
    async def get_item(actor: Authenticated, ctx: Ctx, id: IdPath) -> Any:
        return await resource(ctx).get(actor, id)

    @router.patch(
        "/{id}", response_model=out, operation_id=f"update_{name}", summary=f"Change a {name}"
    )
    async def update_item(actor: Authenticated, ctx: Ctx, id: IdPath, body: update) -> Any:  # type: ignore[valid-type]
        data = _dump(body)
        return await resource(ctx).update(actor, id, data)

    @router.delete(
        "/{id}",
        status_code=status.HTTP_204_NO_CONTENT,
        operation_id=f"delete_{name}",
        summary=f"Delete a {name}",
    )
    async def delete_item(actor: Authenticated, ctx: Ctx, id: IdPath) -> Response:
        await resource(ctx).delete(actor, id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return router


def query_model(
    model: type[Paging],
) -> tuple[Callable[[Request], Awaitable[Paging]], list[dict[str, Any]]]:
    """A query-string parser for ``model`` and the OpenAPI parameters it documents.

    FastAPI's own query-model support re-inspects every field on every request; on the list
    endpoints (the API's hot path) one pydantic validation of the whole query is much cheaper.
    """
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    parameters = [
        {"name": key, "in": "query", "required": key in required, "schema": prop}
        for key, prop in schema["properties"].items()
    ]

    async def parse(request: Request) -> Paging:
        try:
            return model.model_validate(dict(request.query_params))
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_context=False)]
            ) from exc

    return parse, parameters


def _dump(body: BaseModel) -> dict[str, Any]:
    """What the caller sent, JSON-ready (dates as ISO text) for the store's JSON columns."""
    return body.model_dump(mode="json", exclude_unset=True)
