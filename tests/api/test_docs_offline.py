"""``/api/docs`` works offline: Swagger UI's assets come from the node, nothing from a CDN."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveNode, require_peer

CHROMIUM = "/usr/bin/chromium"
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|url\s*:\s*["'](?:https?:)?//""")


async def test_the_docs_page_references_only_the_nodes_own_assets(client: Any) -> None:
    r = await client.get("/api/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert not EXTERNAL.search(page), page
    assert "http://" not in page and "https://" not in page
    refs = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page)
    assert "/api/docs/assets/swagger-ui-bundle.js" in refs
    assert "/api/docs/assets/swagger-ui.css" in refs
    for ref in refs:
        asset = await client.get(ref)
        assert asset.status_code == 200 and len(asset.content) > 100, ref
    assert "'/api/openapi.json'" in page


@pytest.mark.peer
def test_swagger_ui_renders_the_api_in_chromium_with_no_request_leaving_the_node(
    tmp_path: Path,
) -> None:
    require_peer(Path(CHROMIUM).exists(), "Debian's chromium")
    from playwright.sync_api import sync_playwright

    node = LiveNode(tmp_path / "data")
    outside: list[str] = []
    try:
        node.wait_ready()
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--disable-sync", "--no-first-run"],
            )  # fmt: skip
            try:
                page = browser.new_page()

                def route(r: Any) -> None:
                    if r.request.url.startswith(node.base):
                        r.continue_()
                    else:  # as if offline: nothing else is reachable
                        outside.append(r.request.url)
                        r.abort()

                page.route("**/*", route)
                page.goto(node.base + "/api/docs")
                page.wait_for_selector(".opblock", timeout=60_000)  # operations rendered
                operations = page.locator(".opblock").count()
                title = page.locator(".info .title").inner_text()
            finally:
                browser.close()
    finally:
        node.stop()
    assert outside == []
    assert operations > 50 and "cloudcc" in title
