"""The node serves the built web app at / beside the API: caching, gzip, SPA fallback."""

from __future__ import annotations

import gzip
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from cloudcc.web.serve import IMMUTABLE, REVALIDATE, WebApp


def _api(request: object) -> JSONResponse:
    return JSONResponse({"api": True}, status_code=404)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>app</title>")
    (tmp_path / "favicon.svg").write_text("<svg/>")
    js = "console.log('hello');" * 50
    (tmp_path / "assets" / "index-abc123.js").write_text(js)
    (tmp_path / "assets" / "index-abc123.js.gz").write_bytes(gzip.compress(js.encode()))
    return tmp_path


def _client(root: Path) -> httpx.AsyncClient:
    app = WebApp(Starlette(routes=[Route("/api/{rest:path}", _api, methods=["GET", "POST"])]), root)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cc.test")


async def test_hashed_assets_are_immutable_and_index_is_revalidated(site: Path) -> None:
    async with _client(site) as c:
        r = await c.get("/assets/index-abc123.js", headers={"Accept-Encoding": "identity"})
        assert r.status_code == 200 and r.headers["cache-control"] == IMMUTABLE
        assert r.headers["content-type"].startswith("text/javascript")
        assert "content-encoding" not in r.headers
        index = await c.get("/")
        assert index.headers["cache-control"] == REVALIDATE and "<title>app" in index.text
        icon = await c.get("/favicon.svg")
        assert icon.headers["cache-control"] == REVALIDATE


async def test_gzip_is_sent_to_clients_that_accept_it(site: Path) -> None:
    async with _client(site) as c:
        r = await c.get("/assets/index-abc123.js", headers={"Accept-Encoding": "gzip, br"})
        assert r.headers["content-encoding"] == "gzip" and r.headers["vary"] == "Accept-Encoding"
        assert int(r.headers["content-length"]) < len(r.text)  # httpx decoded it
        assert r.text.startswith("console.log")


async def test_app_routes_fall_back_to_index_but_missing_assets_are_404(site: Path) -> None:
    async with _client(site) as c:
        for path in ("/agent", "/supervisor/queues", "/admin"):
            r = await c.get(path)
            assert r.status_code == 200 and "<title>app" in r.text, path
        assert (await c.get("/assets/index-old999.js")).status_code == 404
        assert (await c.get("/robots.txt")).status_code == 404
        assert (await c.get("/assets/../../etc/passwd")).status_code in (200, 404)
        assert "root:" not in (await c.get("/%2e%2e/%2e%2e/etc/passwd")).text
        assert (await c.get("/index.html.gz")).status_code == 404


async def test_api_paths_and_other_methods_reach_the_api(site: Path) -> None:
    async with _client(site) as c:
        assert (await c.get("/api/v1/nothing")).json() == {"api": True}
        assert (await c.post("/api/v1/nothing")).json() == {"api": True}


async def test_a_node_without_a_build_says_how_to_get_one(tmp_path: Path) -> None:
    async with _client(tmp_path / "none") as c:
        r = await c.get("/")
        assert r.status_code == 503 and "./dev serve" in r.text and "/api/docs" in r.text
