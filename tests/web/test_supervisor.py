"""The supervisor's wallboard in a real Chromium: a SIPp customer waiting in a queue shows in
the queue's row and the live contacts from the event stream; an agent's state change shows;
force an agent's state and force a hang-up from the page."""

from __future__ import annotations

from typing import Any

import pytest

from tests.voice.conftest import Api
from tests.voice.peers import kill_group, start_sipp_call
from tests.web.conftest import axe_violations, new_page, screenshot, sign_in

pytestmark = [pytest.mark.peer, pytest.mark.slow]


def _waiting(page: Any, queue: str) -> str:
    return str(page.locator(f"[data-queue={queue}] [data-testid=waiting]").inner_text())


def test_the_wallboard_shows_a_queued_call_and_the_supervisor_acts(web_node, browser, tmp_path):
    api = Api(web_node)
    demo = web_node.demo
    page = new_page(browser, web_node.base)
    zh = new_page(browser, web_node.base, "zh-CN")
    caller = None
    try:
        sign_in(page, demo["tenant"], "admin", demo["admin"]["password"])
        page.locator("[data-queue=support]").wait_for()
        assert _waiting(page, "support") == "0"

        # An agent signs in (not ready): its row follows the event.
        # (Signing in needs a reachable device: an admin assigns it a desk phone.)
        api.patch(f"/agents/{api.agents['1002']['id']}", {"device": "sip:desk-1002@127.0.0.1:5999"})
        api.login("1002", ready=False)
        row = page.locator("[data-agent='1002'] [data-testid=agent-state]")
        row.filter(has_text="Not ready").wait_for()

        caller = start_sipp_call(
            tmp_path / "sipp", web_node.sip_port, digit="2", dtmf_after_ms=2500, talk_ms=60_000
        )
        page.locator("[data-queue=support] [data-testid=waiting]").filter(has_text="1").wait_for(
            timeout=30_000
        )
        page.get_by_test_id("live-contacts").filter(has_text="+15550").wait_for()
        page.get_by_test_id("total-waiting").filter(has_text="1 waiting").wait_for()
        screenshot(page, "supervisor-en")
        assert axe_violations(page) == []

        sign_in(zh, demo["tenant"], "admin", demo["admin"]["password"])
        zh.locator("[data-queue=support] [data-testid=waiting]").filter(has_text="1").wait_for()
        screenshot(zh, "supervisor-zh-CN")
        assert axe_violations(zh) == []

        # Force the agent to rest, then force the waiting call off.
        page.get_by_role("button", name="Force Bob Agent").click()
        page.get_by_role("menuitem", name="Rest").click()
        row.filter(has_text="Rest").wait_for()
        page.get_by_role("button", name="Force hang-up").click()
        page.locator("[data-queue=support] [data-testid=waiting]").filter(has_text="0").wait_for()
        page.get_by_test_id("live-contacts").wait_for(state="detached")
    finally:
        page.context.close()
        zh.context.close()
        if caller is not None:
            kill_group(caller)
