"""``/api/docs``: Swagger UI served from this node, so it works offline (no CDN).

The assets are Swagger UI 5's own dist files (it reads OpenAPI 3.1; Apache-2.0), shipped
by the ``swagger-ui-bundle-v2`` package and served under ``/api/docs/assets/``.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

DOCS_URL = "/api/docs"
ASSETS_URL = DOCS_URL + "/assets"


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI for ``app.openapi_url`` at /api/docs (create the app with docs_url=None)."""
    app.mount(ASSETS_URL, StaticFiles(directory=swagger_ui_path), name="swagger-ui-assets")
    openapi_url = app.openapi_url or "/api/openapi.json"

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
            # no validator badge: it would call validator.swagger.io
            swagger_ui_parameters={"validatorUrl": None},
        )
