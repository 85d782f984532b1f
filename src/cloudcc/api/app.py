"""The ASGI application: routers, error translation and the guards in front of them."""

from __future__ import annotations

from fastapi import FastAPI

from cloudcc import __version__
from cloudcc.api import admin, problems, prompts
from cloudcc.api import events as api_events
from cloudcc.api.context import ApiContext
from cloudcc.api.middleware import BodySizeLimit, InFlightLimit
from cloudcc.web.serve import WebApp


def create_app(ctx: ApiContext) -> FastAPI:
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

    # /healthz and /readyz are answered in front of this app (cloudcc.health).
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
