"""The ASGI application: routers, error translation and the guards in front of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from cloudcc import __version__
from cloudcc.api import admin, problems, prompts
from cloudcc.api import events as api_events
from cloudcc.api.context import ApiContext
from cloudcc.api.middleware import BodySizeLimit, InFlightLimit
from cloudcc.web.serve import WebApp


def create_app(ctx: ApiContext, ready: Callable[[], bool] = lambda: True) -> FastAPI:
    app = FastAPI(
        title="cloudcc",
        version=__version__,
        summary="Open-source cloud contact center: admin, call control and events API",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.ctx = ctx
    problems.install(app)
    for router in admin.routers:
        app.include_router(router, prefix=admin.PREFIX)
    for router in api_events.routers:
        app.include_router(router, prefix=api_events.PREFIX)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        ok = ready()
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    # The web app at / (GET outside /api/): the same origin as the API.
    app.add_middleware(WebApp)
    limits = ctx.settings.limits
    app.add_middleware(
        BodySizeLimit,
        max_bytes=limits.max_body_bytes,
        larger={"/api/v1/prompts/": prompts.MAX_PROMPT_BYTES},
    )
    app.add_middleware(InFlightLimit, limit=limits.max_in_flight)
    return app
