"""The agent workspace in a real Chromium with real calls: a SIPp customer through the demo
IVR into the sales queue rings in the page; the agent's phone (a SIPp UAS) answers; the
page holds, mutes, sends DTMF, hangs up and wraps up through the API, each change shown from
the event stream."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveNode, free_port
from tests.voice.conftest import Api
from tests.voice.peers import SippAgentPhone, kill_group, start_sipp_call
from tests.web.conftest import axe_violations, new_page, require_build, screenshot, sign_in

pytestmark = [pytest.mark.peer, pytest.mark.slow]


@pytest.fixture(scope="module")
def ws_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNode]:
    """A node with SIP over WebSocket on, so the page offers the browser softphone."""
    require_build()
    node = LiveNode(
        tmp_path_factory.mktemp("agent") / "data", env={"CLOUDCC_SIP__WS_PORT": str(free_port())}
    )
    try:
        node.wait_ready()
        yield node
    finally:
        node.stop()


def _agent_page(browser: Any, node: LiveNode, extension: str, lang: str = "en") -> Any:
    demo = node.demo
    agent = next(a for a in demo["agents"] if a["extension"] == extension)
    page = new_page(browser, node.base, lang)
    sign_in(page, demo["tenant"], agent["web_username"], agent["web_password"])
    page.locator("#device-title").wait_for()
    return page


def test_device_sign_in_offers_the_softphone_and_refuses_an_unreachable_phone(ws_node, browser):
    page = _agent_page(browser, ws_node, "1003", "zh-CN")
    try:
        assert page.get_by_role("radio", name="浏览器软电话").is_checked()
        assert page.get_by_role("radio", name="浏览器软电话").is_enabled()
        # An agent without agents:device is not offered a SIP address of its choice.
        assert page.locator("form[aria-labelledby=device-title]").get_by_role("radio").count() == 2
        screenshot(page, "agent-device-zh-CN")
        assert axe_violations(page) == []
        page.get_by_role("radio", name="我的话机（已注册或管理员分配）").check()
        page.locator("form[aria-labelledby=device-title] button[type=submit]").click()
        # No phone registered nor assigned: the API's own sentence; the agent stays out.
        page.get_by_role("alert").filter(has_text="no reachable phone for agent 1003").wait_for()
        assert page.locator("#device-title").is_visible()
    finally:
        page.context.close()


def test_a_queued_call_rings_in_the_page_and_the_agent_handles_it(ws_node, browser, tmp_path):
    api = Api(ws_node)
    # A reason code of the tenant's own shows in the menu beside the built-in ones.
    api.post("/reason-codes", {"code": "coaching", "label": "Coaching", "cec_state": "study"})
    phone = SippAgentPhone(tmp_path / "phone").start()
    caller = None
    # The admin assigns the agent its desk phone (a SIPp UAS that answers).
    api.patch(f"/agents/{api.agents['1001']['id']}", {"device": phone.uri})
    page = _agent_page(browser, ws_node, "1001")
    try:
        page.get_by_role("radio", name="My phone (registered, or assigned by the admin)").check()
        page.locator("form[aria-labelledby=device-title] button[type=submit]").click()
        state = page.get_by_test_id("agent-state")
        state.filter(has_text="Ready").wait_for()
        assert "CEC: idle (1)" in page.get_by_test_id("cec-state").inner_text()

        # Not ready with a reason, then ready again: the bar follows the events.
        page.get_by_role("button", name="Not ready").click()
        page.get_by_role("menuitem", name="Rest").click()
        state.filter(has_text="Not ready · Rest").wait_for()
        assert "CEC: rest (8)" in page.get_by_test_id("cec-state").inner_text()
        page.get_by_role("button", name="Not ready").click()
        page.get_by_role("menuitem", name="Coaching").click()
        state.filter(has_text="Not ready · Coaching").wait_for()
        assert "CEC: study (9)" in page.get_by_test_id("cec-state").inner_text()
        page.get_by_role("button", name="Ready", exact=True).click()
        state.filter(has_text="Ready").wait_for()

        caller = start_sipp_call(
            tmp_path / "sipp", ws_node.sip_port, digit="1", dtmf_after_ms=2500, talk_ms=60_000
        )
        contact = page.get_by_test_id("contact")
        contact.wait_for(timeout=30_000)
        assert "+15550" in contact.inner_text() and "sales" in contact.inner_text()
        page.locator("[data-testid=contact][data-phase=talking]").wait_for(timeout=15_000)
        state.filter(has_text="On a contact").wait_for()

        page.get_by_role("button", name="Hold").click()
        page.get_by_role("button", name="Resume").wait_for()
        page.get_by_text("On hold").wait_for()
        screenshot(page, "agent-in-call-en")
        assert axe_violations(page) == []
        page.get_by_role("button", name="Resume").click()
        page.get_by_role("button", name="Hold").wait_for()
        page.keyboard.press("Alt+M")  # the mute shortcut
        page.get_by_role("button", name="Unmute").wait_for()

        page.get_by_role("button", name="Keypad").click()
        page.get_by_role("group", name="Keypad").get_by_role("button", name="5").click()
        page.keyboard.press("Escape")

        page.get_by_role("button", name="Hang up").click()
        page.locator("[data-testid=contact][data-phase=wrapup]").wait_for()
        state.filter(has_text="Wrap-up").wait_for()
        page.get_by_role("combobox", name="Disposition").click()
        page.get_by_role("option", name="Resolved").click()
        page.get_by_label("Notes").fill("asked about the invoice")
        # The draft survives a reload (and a new sign-in) until it is sent.
        page.reload()
        page.get_by_label("Notes").wait_for()
        assert page.get_by_label("Notes").input_value() == "asked about the invoice"
        screenshot(page, "agent-wrapup-en")
        page.get_by_role("button", name="Finish wrap-up").click()
        page.get_by_test_id("contact").wait_for(state="detached")
        state.filter(has_text="Ready").wait_for()

        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            record = api.contacts()[0]
            if record.get("disposition_code") or record.get("wrapup_code"):
                break
            time.sleep(0.3)
        assert "asked about the invoice" in str(record), record
        assert "resolved" in str(record), record
    finally:
        page.context.close()
        if caller is not None:
            kill_group(caller)
        phone.stop()


def test_screenshots_of_the_agent_workspace_in_both_languages(ws_node, browser, tmp_path: Path):
    api = Api(ws_node)
    api.patch(f"/agents/{api.agents['1002']['id']}", {"device": "sip:desk-1002@127.0.0.1:5999"})
    for lang, ready in (("en", "Ready"), ("zh-CN", "空闲")):
        page = _agent_page(browser, ws_node, "1002", lang)
        try:
            phone = {
                "en": "My phone (registered, or assigned by the admin)",
                "zh-CN": "我的话机（已注册或管理员分配）",
            }[lang]
            page.get_by_role("radio", name=phone).check()
            page.locator("form[aria-labelledby=device-title] button[type=submit]").click()
            page.get_by_test_id("agent-state").filter(has_text=ready).wait_for()
            screenshot(page, f"agent-ready-{lang}")
            assert axe_violations(page) == []
            page.get_by_role(
                "button", name={"en": "Sign out as agent", "zh-CN": "坐席签出"}[lang]
            ).click()
            page.locator("#device-title").wait_for()
        finally:
            page.context.close()


def test_the_browser_softphone_rings_and_answers_a_queued_call(ws_node, browser, tmp_path):
    """JsSIP in the page registers over WebSocket; the node rings it with WebRTC (ICE-lite,
    DTLS-SRTP); the agent answers in the page and hangs up from it."""
    demo = ws_node.demo
    password = next(a for a in demo["agents"] if a["extension"] == "1003")["sip_password"]
    page = _agent_page(browser, ws_node, "1003")
    caller = None
    try:
        page.locator("input[name=sip-password]").fill(password)
        page.locator("form[aria-labelledby=device-title] button[type=submit]").click()
        state = page.get_by_test_id("agent-state")
        state.filter(has_text="Ready").wait_for(timeout=20_000)
        caller = start_sipp_call(
            tmp_path / "sipp", ws_node.sip_port, digit="1", dtmf_after_ms=2500, talk_ms=60_000
        )
        page.get_by_role("button", name="Answer").wait_for(timeout=40_000)
        screenshot(page, "agent-ringing-en")
        page.get_by_role("button", name="Answer").click()
        page.locator("[data-testid=contact][data-phase=talking]").wait_for(timeout=20_000)
        state.filter(has_text="On a contact").wait_for()
        page.get_by_role("button", name="Hang up").click()
        page.locator("[data-testid=contact][data-phase=wrapup]").wait_for()
        page.get_by_role("button", name="Finish wrap-up").click()
        page.get_by_test_id("contact").wait_for(state="detached")
    finally:
        page.context.close()
        if caller is not None:
            kill_group(caller)
