"""The supervisor's audio through the browser softphone, in a real Chromium: a supervisor with
an agent extension connects the page's softphone (JsSIP over WebSocket), chooses Listen on a
live SIPp call, the node rings the browser (WebRTC, ICE-lite, DTLS-SRTP), the page answers it
and its inbound audio carries the call's speech. Also the wallboard's filters by queue and by
skill (the model groups agents by skill; it has no teams)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import LiveNode, free_port
from tests.voice.conftest import Api
from tests.voice.peers import SippAgentPhone, kill_group, start_sipp_call
from tests.web.conftest import axe_violations, new_page, require_build, screenshot, sign_in

pytestmark = [pytest.mark.peer, pytest.mark.slow]

SUPERVISOR = {"extension": "1009", "sip_password": "sup-3r-visor-9"}
# Every peer connection the page makes, so the test can read its inbound audio statistics
# (the page keeps its own; nothing in the app is there for the test).
CAPTURE_PEERS = """
window.ccPeers = [];
const Native = window.RTCPeerConnection;
window.RTCPeerConnection = function (...args) {
  const pc = new Native(...args);
  window.ccPeers.push(pc);
  return pc;
};
window.RTCPeerConnection.prototype = Native.prototype;
"""
INBOUND = """async () => {
  let packets = 0, energy = 0;
  for (const pc of window.ccPeers) {
    (await pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "audio") {
        packets += s.packetsReceived || 0;
        energy += s.totalAudioEnergy || 0;
      }
    });
  }
  return { packets, energy };
}"""


@pytest.fixture(scope="module")
def ws_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNode]:
    """A node with SIP over WebSocket on, so the page offers the browser softphone."""
    require_build()
    node = LiveNode(
        tmp_path_factory.mktemp("supervisor") / "data",
        env={"CLOUDCC_SIP__WS_PORT": str(free_port())},
    )
    try:
        node.wait_ready()
        yield node
    finally:
        node.stop()


def _supervisor_page(browser: Any, node: LiveNode, lang: str = "en") -> Any:
    page = new_page(browser, node.base, lang)
    page.add_init_script(CAPTURE_PEERS)
    sign_in(page, node.demo["tenant"], SUPERVISOR["extension"], SUPERVISOR["sip_password"])
    page.get_by_test_id("stream-status").wait_for()
    page.goto("/supervisor")
    page.get_by_test_id("monitor-phone").wait_for()
    return page


def test_a_supervisor_listens_to_a_live_call_in_the_browser(ws_node, browser, tmp_path):
    api = Api(ws_node)
    # A supervisor with its own extension (no skills: it is offered no calls).
    api.post(
        "/agents",
        {"name": "Sue Supervisor", "role": "supervisor", "skills": {}, **SUPERVISOR},
    )
    phone = SippAgentPhone(tmp_path / "phone", scenario="agent_uas_talking.xml").start()
    api.patch(f"/agents/{api.agents['1001']['id']}", {"device": phone.uri})
    api.login("1001", phone.uri)
    page = _supervisor_page(browser, ws_node)
    zh = None
    caller = None
    try:
        panel = page.get_by_test_id("monitor-phone")
        panel.get_by_role("radio", name="This browser").check()
        panel.locator("input[name=monitor-sip-password]").fill(SUPERVISOR["sip_password"])
        panel.get_by_role("button", name="Connect the softphone").click()
        badge = page.get_by_test_id("monitor-browser-state")
        badge.filter(has_text="Softphone connected as 1009").wait_for(timeout=20_000)

        caller = start_sipp_call(
            tmp_path / "sipp", ws_node.sip_port, digit="2", dtmf_after_ms=2500, talk_ms=60_000
        )
        row = page.get_by_test_id("live-contacts").locator("tr[data-contact]")
        row.filter(has_text="Alice").wait_for(timeout=30_000)  # talking with agent 1001
        assert page.evaluate(INBOUND)["packets"] == 0
        row.get_by_role("button", name="Listen").click()
        page.locator("[data-testid=monitor-browser-state][data-in-call=true]").wait_for(
            timeout=20_000
        )
        page.get_by_role("status").filter(has_text="Listen: done").wait_for(timeout=20_000)
        # The browser hears the call: packets with audio energy in its inbound RTP.
        deadline = time.monotonic() + 15
        heard = page.evaluate(INBOUND)
        while time.monotonic() < deadline and not (
            heard["packets"] > 100 and heard["energy"] > 0.01
        ):
            time.sleep(0.5)
            heard = page.evaluate(INBOUND)
        assert heard["packets"] > 100 and heard["energy"] > 0.01, heard
        screenshot(page, "supervisor-browser-listening-en")
        assert axe_violations(page) == []

        # Barge in: the same browser call, another mode (no new INVITE).
        row.get_by_role("button", name="Barge in").click()
        page.get_by_role("status").filter(has_text="Barge in: done").wait_for()
        (contact,) = api.live()
        (leg,) = [leg for leg in contact["legs"] if leg["role"] == "supervisor"]
        assert leg["monitor_mode"] == "barge" and leg["state"] == "up", leg
        # Each supervision is in the audit log, by the supervisor, on the contact.
        audit = api.get("/audit-log", params={"resource_type": "contact"})["items"]
        done = {e["action"] for e in audit if e["resource_id"] == contact["contact_id"]}
        assert {"listen", "barge"} <= done, audit

        # Stop: the node hangs up the browser's call.
        row.get_by_role("button", name="Stop").click()
        page.locator("[data-testid=monitor-browser-state][data-in-call=false]").wait_for(
            timeout=15_000
        )

        zh = _supervisor_page(browser, ws_node, "zh-CN")
        zh.get_by_test_id("monitor-phone").get_by_role("radio", name="本浏览器").check()
        zh.locator("input[name=monitor-sip-password]").wait_for()
        screenshot(zh, "supervisor-browser-zh-CN")
        assert axe_violations(zh) == []
    finally:
        page.context.close()
        if zh is not None:
            zh.context.close()
        if caller is not None:
            kill_group(caller)
        phone.stop()


def test_the_wallboard_filters_by_queue_and_by_skill(ws_node, browser):
    api = Api(ws_node)
    # Carol serves only sales (support 0 < the support queue's minimum of 1).
    api.post(
        "/agents",
        {
            "name": "Carol Seller",
            "extension": "1010",
            "sip_password": "carol-sells-10",
            "skills": {"sales": 4},
        },
    )
    demo = ws_node.demo
    page = new_page(browser, ws_node.base)
    try:
        sign_in(page, demo["tenant"], "admin", demo["admin"]["password"])
        page.get_by_test_id("stream-status").wait_for()
        page.goto("/supervisor")
        queues = page.get_by_test_id("queues")
        agents = page.get_by_test_id("agents")
        agents.locator("[data-agent='1010']").wait_for()
        queues.locator("[data-queue=support]").wait_for()

        page.get_by_role("combobox", name="Show queues").focus()
        page.keyboard.press("ArrowDown")  # opens the options
        page.get_by_role("option", name="support", exact=True).click()
        page.keyboard.press("Escape")
        queues.locator("[data-queue=sales]").wait_for(state="detached")
        agents.locator("[data-agent='1010']").wait_for(state="detached")
        assert queues.locator("[data-queue=support]").is_visible()
        assert agents.locator("[data-agent='1001']").is_visible()
        screenshot(page, "supervisor-filter-queue-en")

        # Afresh (filters are the page's, not kept), by skill: the sales queue and the agents
        # with sales, Carol among them.
        page.reload()
        agents.locator("[data-agent='1010']").wait_for()
        page.get_by_role("combobox", name="Show skills").focus()
        page.keyboard.press("ArrowDown")  # opens the options
        page.get_by_role("option", name="sales", exact=True).click()
        page.keyboard.press("Escape")
        queues.locator("[data-queue=support]").wait_for(state="detached")
        agents.locator("[data-agent='1010']").wait_for()
        assert queues.locator("[data-queue=sales]").is_visible()
        assert axe_violations(page) == []
    finally:
        page.context.close()
