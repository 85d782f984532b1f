"""Serve the built web app at ``/`` beside the API (same origin, so no CORS and one cookie jar).

The build (``web/``, ``npm run build``) lands in ``static/`` inside this package, so a node
installed from a wheel serves it without Node.js. Hashed files under ``/assets/`` are cached
for a year (their name changes with their content); ``index.html`` is revalidated on every
load so a new build is picked up at once. Any other path a browser asks for is a route of the
single-page app and gets ``index.html`` (SPA fallback). ``file.gz`` beside a file (made by the
build) is sent to clients that accept gzip.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from starlette.datastructures import Headers
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

STATIC_DIR = Path(__file__).parent / "static"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# Paths the node answers itself; everything else under GET is the web app.
_NODE_PREFIXES = ("/api/", "/healthz", "/readyz")

_NOT_BUILT = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>cloudcc</title></head><body><main><h1>cloudcc</h1>
<p>The web app is not built on this node. From a source checkout run <code>./dev serve</code>
(it builds <code>web/</code> with Node.js), or install a cloudcc package that contains it.
The API is at <a href="/api/docs">/api/docs</a>.</p></main></body></html>"""


class WebApp:
    """ASGI middleware: GET and HEAD outside the node's own paths are served from ``static``."""

    def __init__(self, app: ASGIApp, root: Path = STATIC_DIR) -> None:
        self.app = app
        self.root = root.resolve()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or scope["path"].startswith(_NODE_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        response = self.respond(scope["path"], Headers(scope=scope))
        await response(scope, receive, send)

    def respond(self, path: str, headers: Headers) -> Response:
        index = self.root / "index.html"
        if not index.is_file():
            return HTMLResponse(_NOT_BUILT, status_code=503, headers={"Cache-Control": "no-store"})
        target = (self.root / path.lstrip("/")).resolve()
        if not target.is_relative_to(self.root):
            return Response(status_code=404)
        if target.is_file() and target.suffix != ".gz":
            cache = IMMUTABLE if path.startswith("/assets/") else REVALIDATE
            return _file(target, cache, headers)
        if path.startswith("/assets/") or Path(path).suffix:
            # A missing asset is a 404, not the app: a stale page must not parse HTML as JS.
            return Response(status_code=404, headers={"Cache-Control": "no-store"})
        return _file(index, REVALIDATE, headers)


def _file(path: Path, cache: str, request_headers: Headers) -> FileResponse:
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if media_type.startswith("text/") or media_type in ("application/javascript", "image/svg+xml"):
        media_type = f"{media_type}; charset=utf-8" if "charset" not in media_type else media_type
    headers = {"Cache-Control": cache, "Vary": "Accept-Encoding"}
    gz = path.with_name(path.name + ".gz")
    if "gzip" in request_headers.get("accept-encoding", "") and gz.is_file():
        headers["Content-Encoding"] = "gzip"
        return FileResponse(gz, media_type=media_type, headers=headers)
    return FileResponse(path, media_type=media_type, headers=headers)
