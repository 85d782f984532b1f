"""The ASGI application: routers, error translation and the guards in front of them."""

from __future__ import annotations

from fastapi import FastAPI

from cloudcc import __version__
from cloudcc.api import admin, dispatch, problems, prompts
from cloudcc.api import events as api_events
from cloudcc.api.admission import Admission
from cloudcc.api.context import ApiContext
from cloudcc.api.docs import install_docs
from cloudcc.web.serve import WebApp


def create_app(ctx: ApiContext) -> FastAPI:
    app = FastAPI(
        title="cloudcc",
        version=__version__,
        summary="Open-source cloud contact center: admin, call control and events API",
        openapi_url="/api/openapi.json",
        docs_url=None,  # served by install_docs from local assets
        redoc_url=None,
    )
    app.state.ctx = ctx
    problems.install(app)
    install_docs(app)
    for router in admin.routers:
        app.include_router(router, prefix=admin.PREFIX)
    for router in api_events.routers:
        app.include_router(router, prefix=api_events.PREFIX)
    # Requests go straight to the routes of their resource, not through every router.
    dispatch.install(app)

    # /healthz and /readyz are answered in front of this app (cloudcc.health).
    app.add_middleware(Admission, ctx=ctx, larger={"/api/v1/prompts/": prompts.MAX_PROMPT_BYTES})
    # The web app at / (GET outside /api/): the same origin as the API. Outside admission:
    # static files without credentials, which would otherwise share one office's per-address
    # cap of anonymous requests (headers still have their deadline in ``serving``).
    app.add_middleware(WebApp)
    return app
