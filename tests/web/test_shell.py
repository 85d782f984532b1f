"""The web app in a real Chromium: sign-in, the shell by role, both languages, axe-core."""

from __future__ import annotations

import httpx
import pytest

from tests.web.conftest import axe_violations, new_page, screenshot, sign_in

pytestmark = [pytest.mark.peer]


def test_the_node_serves_the_app_with_caching_headers(web_node):
    index = httpx.get(web_node.base + "/agent")
    assert index.status_code == 200 and index.headers["cache-control"] == "no-cache"
    script = index.text.split('src="', 1)[1].split('"', 1)[0]
    assert script.startswith("/assets/")
    asset = httpx.get(web_node.base + script, headers={"Accept-Encoding": "gzip"})
    assert asset.status_code == 200 and asset.headers["content-encoding"] == "gzip"
    assert "immutable" in asset.headers["cache-control"]
    # The API keeps its own answers (a problem document), never the app's index.
    missing = httpx.get(web_node.base + "/api/v1/no-such-thing")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith(
        "application/problem+json"
    )


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_sign_in_page_and_admin_shell_in_each_language(web_node, browser, lang):
    demo = web_node.demo
    page = new_page(browser, web_node.base, lang)
    try:
        page.goto("/")
        assert page.evaluate("document.documentElement.lang") == lang
        heading = {"en": "Sign in", "zh-CN": "登录"}[lang]
        page.get_by_role("heading", name=heading).wait_for()
        screenshot(page, f"signin-{lang}")
        assert axe_violations(page) == []

        # A wrong password: the API's sentence, and still the sign-in page.
        sign_in(page, demo["tenant"], "admin", "wrong-password")
        page.get_by_role("alert").wait_for()
        assert page.url.endswith("/")

        sign_in(page, demo["tenant"], "admin", demo["admin"]["password"])
        page.get_by_test_id("stream-status").filter(
            has_text={"en": "Live", "zh-CN": "实时"}[lang]
        ).wait_for()
        assert page.url.endswith("/supervisor")  # an admin monitors too: the first area
        tabs = page.get_by_role("tab").all_inner_texts()
        assert (
            tabs
            == {"en": ["Supervisor", "Administration"], "zh-CN": ["班长监控", "系统管理"]}[lang]
        )
        page.get_by_role("heading", name=tabs[0]).wait_for()
        screenshot(page, f"shell-admin-{lang}")
        assert axe_violations(page) == []

        # Switching the language in the app changes the page and is remembered.
        other = "zh-CN" if lang == "en" else "en"
        page.get_by_text({"en": "简体中文", "zh-CN": "English"}[lang]).click()
        page.wait_for_function(f"document.documentElement.lang === '{other}'")
        page.reload()
        assert page.evaluate("document.documentElement.lang") == other
    finally:
        page.context.close()


def test_an_agent_sees_only_the_agent_area_and_sign_out_returns_to_sign_in(web_node, browser):
    demo = web_node.demo
    agent = demo["agents"][0]
    page = new_page(browser, web_node.base)
    try:
        sign_in(page, demo["tenant"], agent["web_username"], agent["web_password"])
        page.get_by_role("heading", name="Agent workspace").wait_for()
        assert page.url.endswith("/agent")
        assert page.get_by_role("tab").all_inner_texts() == ["Agent workspace"]
        # An agent typing the supervisor's address lands back in its own area.
        page.goto("/supervisor")
        page.wait_for_url("**/agent")
        page.get_by_role("button", name="Sign out").click()
        page.get_by_role("heading", name="Sign in").wait_for()
    finally:
        page.context.close()


def test_a_revoked_token_returns_to_sign_in_with_a_message(web_node, browser):
    demo = web_node.demo
    page = new_page(browser, web_node.base)
    try:
        sign_in(page, demo["tenant"], "admin", demo["admin"]["password"])
        page.get_by_test_id("stream-status").filter(has_text="Live").wait_for()
        # The token in this tab is replaced by garbage: the next API answer is a 401.
        page.evaluate(
            """() => { const s = JSON.parse(sessionStorage.getItem('cloudcc.session'));
                       s.token = 'not-a-token'; sessionStorage.setItem('cloudcc.session', JSON.stringify(s)); }"""
        )
        page.reload()
        page.get_by_text("Your session ended").wait_for()
    finally:
        page.context.close()
