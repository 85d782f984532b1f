"""A real node serving the built web app, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloudcc.web.serve import STATIC_DIR
from tests.conftest import LiveNode, require_peer

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(os.environ.get("CCTEST_ARTIFACTS", ROOT / "build" / "artifacts")) / "web"
CHROMIUM = "/usr/bin/chromium"
# TOOLS.md §9: the flags that make Debian's browser run headless here, with fake media devices.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
]


def require_build() -> None:
    require_peer((STATIC_DIR / "index.html").is_file(), "the built web app (npm run build)")
    require_peer(AXE.is_file(), "web/node_modules (npm ci)")


@pytest.fixture(scope="module")
def web_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNode]:
    require_build()
    node = LiveNode(tmp_path_factory.mktemp("web") / "data")
    try:
        node.wait_ready()
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_build()
    require_peer(Path(CHROMIUM).exists(), "Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def new_page(browser: Any, base: str, lang: str = "en") -> Any:
    """A fresh browser context (its own storage) whose browser language is ``lang``."""
    context = browser.new_context(
        locale=lang, base_url=base, viewport={"width": 1280, "height": 800}
    )
    context.grant_permissions(["microphone", "notifications"], origin=base)
    page = context.new_page()
    page.set_default_timeout(10_000)
    return page


def sign_in(page: Any, tenant: str, username: str, password: str) -> None:
    page.goto("/")
    page.locator("input[name=tenant]").fill(tenant)
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    page.locator("form button[type=submit]").click()


def axe_violations(page: Any, serious_only: bool = True) -> list[dict[str, Any]]:
    """axe-core from web/node_modules (no CDN): the violations of this page."""
    page.add_script_tag(path=str(AXE))
    violations: list[dict[str, Any]] = page.evaluate("async () => (await axe.run()).violations")
    if serious_only:
        violations = [v for v in violations if v["impact"] in ("serious", "critical")]
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["html"][:200] for n in v["nodes"]],
        }
        for v in violations
    ]


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
