"""The agent workspace beyond answering, in a real Chromium with real calls: the pop-up's IVR
path, choices, attributes and the customer's earlier contacts; consultation and conference
from the directory; the agent's figures of the day; a second tab taking over; a network drop
(reconnecting banner) and a lost client heartbeat (signed out, and told why)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import LiveNode
from tests.voice.conftest import Api
from tests.voice.peers import SippAgentPhone, kill_group, sipp_call, start_sipp_call
from tests.voice.test_inbound import wait_until_cdr
from tests.web.conftest import axe_violations, new_page, require_build, screenshot, sign_in

pytestmark = [pytest.mark.peer, pytest.mark.slow]

PHONE = "My phone (registered, or assigned by the admin)"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNode]:
    require_build()
    live = LiveNode(tmp_path_factory.mktemp("workspace") / "data")
    try:
        live.wait_ready()
        yield live
    finally:
        live.stop()


@pytest.fixture
def api(node: LiveNode) -> Iterator[Api]:
    client = Api(node)
    yield client
    for agent in client.agents.values():  # each test leaves every agent signed out
        httpx.post(
            f"{client.base}/agents/{agent['id']}/force",
            json={"action": "sign_out"},
            headers=client.headers,
        )


def _agent_page(browser: Any, node: LiveNode, extension: str, lang: str = "en") -> Any:
    agent = next(a for a in node.demo["agents"] if a["extension"] == extension)
    page = new_page(browser, node.base, lang)
    sign_in(page, node.demo["tenant"], agent["web_username"], agent["web_password"])
    page.locator("#device-title").wait_for()
    return page


def _sign_in_with_phone(page: Any) -> None:
    page.get_by_role("radio", name=PHONE).check()
    page.locator("form[aria-labelledby=device-title] button[type=submit]").click()
    page.get_by_test_id("agent-state").filter(has_text="Ready").wait_for()


def _answered_call(page: Any, node: LiveNode, tmp_path: Any) -> Any:
    """The agent signs in with its phone (a SIPp phone that answers); a SIPp customer presses
    1 (sales) and talks until killed; returns it once the page shows the call answered."""
    _sign_in_with_phone(page)
    caller = start_sipp_call(
        tmp_path / "sipp", node.sip_port, digit="1", dtmf_after_ms=2500, talk_ms=60_000
    )
    try:
        page.locator("[data-testid=contact][data-phase=talking]").wait_for(timeout=40_000)
    except BaseException:
        kill_group(caller)
        raise
    return caller


def test_the_pop_up_shows_the_way_in_the_choices_and_the_customers_earlier_contacts(
    node, api, browser, tmp_path
):
    prefix = "+1555020"
    customer = prefix + "1"  # SIPp appends the call's number
    # An earlier contact of the customer, pressing 1 (sales), answered by Bob (1002).
    phone = SippAgentPhone(tmp_path / "bob").start()
    try:
        api.login("1002", phone.uri)
        sipp_call(tmp_path / "first", node.sip_port, digit="1", caller=prefix)
    finally:
        phone.stop()
    wait_until_cdr(api, lambda c: c["customer"] == customer and c["disposition"] == "answered")
    api.post(f"/agents/{api.agents['1002']['id']}/logout")

    phone = SippAgentPhone(tmp_path / "alice").start()
    api.patch(f"/agents/{api.agents['1001']['id']}", {"device": phone.uri})
    page = _agent_page(browser, node, "1001")
    caller = None
    try:
        _sign_in_with_phone(page)
        figures = page.get_by_test_id("figures")
        figures.wait_for()
        assert page.get_by_test_id("figures-handled").inner_text() == "0"
        caller = start_sipp_call(
            tmp_path / "second", node.sip_port, digit="1", caller=prefix, talk_ms=60_000
        )
        contact = page.get_by_test_id("contact")
        contact.wait_for(timeout=30_000)
        # The way in: the flow with the caller's choice, then the queue.
        path = page.get_by_test_id("ivr-path")
        path.wait_for()
        assert "IVR: demo-main" in path.inner_text()
        assert "main_menu: sales" in path.inner_text()
        assert "Queue: sales" in path.inner_text()
        # The flow's variables as the contact's attributes.
        assert "choice: sales" in page.get_by_test_id("attributes").inner_text()
        # The customer's earlier contact: when, queue, Bob, how it ended.
        row = page.get_by_test_id("history").locator("tbody tr")
        row.first.wait_for()
        assert row.count() == 1
        cells = row.first.inner_text()
        assert "sales" in cells and "Bob Agent" in cells and "Answered" in cells, cells
        page.locator("[data-testid=contact][data-phase=talking]").wait_for(timeout=15_000)
        screenshot(page, "agent-popup-context-en")
        assert axe_violations(page) == []
        # The same in Chinese after a reload (the picture is rebuilt from the live contacts).
        page.evaluate("localStorage.setItem('cloudcc.lang', 'zh-CN')")
        page.reload()
        page.get_by_test_id("ivr-path").filter(has_text="队列: sales").wait_for()
        # rebuilt from the live contact, the path now ends with Alice, by her name
        page.get_by_test_id("ivr-path").filter(has_text="坐席: Alice Agent").wait_for()
        page.get_by_test_id("history").filter(has_text="Bob Agent").wait_for()
        assert "历史联络" in page.get_by_test_id("contact").inner_text()
        screenshot(page, "agent-popup-context-zh-CN")
        assert axe_violations(page) == []
        page.evaluate("localStorage.setItem('cloudcc.lang', 'en')")
        page.reload()

        # Hang up and wrap up: the figures of the day count the contact.
        page.get_by_role("button", name="Hang up").click()
        page.locator("[data-testid=contact][data-phase=wrapup]").wait_for()
        page.get_by_role("button", name="Finish wrap-up").click()
        page.get_by_test_id("contact").wait_for(state="detached")
        page.get_by_test_id("figures-handled").filter(has_text="1").wait_for(timeout=10_000)
        assert page.get_by_test_id("figures-aht").inner_text() != "—"
        states = figures.get_by_role("table", name="Time per state").inner_text()
        assert "Ready" in states and "On a contact" in states, states
        screenshot(page, "agent-figures-en")
    finally:
        page.context.close()
        if caller is not None:
            kill_group(caller)
        phone.stop()


def test_the_agent_consults_a_colleague_from_the_directory_then_conferences(
    node, api, browser, tmp_path
):
    bob_phone = SippAgentPhone(tmp_path / "bob").start()
    alice_phone = SippAgentPhone(tmp_path / "alice").start()
    # Bob is signed in but not ready: the customer goes to Alice, Bob only takes the consult.
    api.login("1002", bob_phone.uri, ready=False)
    api.patch(f"/agents/{api.agents['1001']['id']}", {"device": alice_phone.uri})
    alice = api.agents["1001"]["id"]
    page = _agent_page(browser, node, "1001")
    caller = None
    try:
        caller = _answered_call(page, node, tmp_path)
        page.keyboard.press("Alt+T")  # the transfer shortcut opens the directory
        dialog = page.get_by_role("dialog", name="Transfer")
        dialog.wait_for()
        # Queues with their waiting contacts, agents with their state, searchable.
        dialog.get_by_role("combobox", name="Target").click()
        page.get_by_role("option", name=re.compile(r"^sales · waiting: \d+$")).wait_for()
        page.keyboard.press("Escape")
        dialog.get_by_text("Agent", exact=True).click()
        dialog.get_by_role("combobox", name="Target").fill("Bob")
        page.get_by_role("option", name="Bob Agent (1002) · Not ready").click()
        screenshot(page, "agent-directory-en")
        assert axe_violations(page) == []
        dialog.get_by_role("button", name="Consult first").click()
        consultation = page.get_by_test_id("consultation")
        consultation.filter(has_text="Bob Agent · talking").wait_for(timeout=20_000)
        on_hold = page.get_by_text(re.compile(r"^On hold \d"))
        assert on_hold.is_visible()
        page.get_by_role("button", name="Conference").click()
        consultation.filter(has_text="three-way call").wait_for()
        assert not on_hold.is_visible()
        screenshot(page, "agent-conference-en")
        page.get_by_role("button", name="Leave the conference").click()
        # Alice leaves: the customer and Bob talk on without her; she wraps up her own part.
        page.locator("[data-testid=contact][data-phase=wrapup]").wait_for()
        page.get_by_test_id("wrapup-part").wait_for()
        page.get_by_test_id("agent-state").filter(has_text="Wrap-up").wait_for()
        live = api.live()
        (contact,) = [c for c in live if c["agent_id"] == api.agents["1002"]["id"]]
        assert contact["state"] == "connected" and contact["wrapping"] == [alice], live
        # A reload finds her part's wrap-up from the live contact, not from this tab's events.
        page.reload()
        page.get_by_test_id("wrapup-part").wait_for()
        screenshot(page, "agent-wrapup-part-en")
        assert axe_violations(page) == []
        page.get_by_role("combobox", name="Disposition").click()
        page.get_by_role("option", name="Follow-up needed").click()
        page.get_by_label("Notes").fill("handed to Bob")
        page.get_by_role("button", name="Finish wrap-up").click()
        page.get_by_test_id("contact").wait_for(state="detached")
        page.get_by_test_id("agent-state").filter(has_text="Ready").wait_for()
        # The contact goes on with Bob; its end is his (and his wrap-up, here by the admin).
        cid = contact["contact_id"]
        assert any(c["contact_id"] == cid for c in api.live())
        api.post(f"/contacts/{cid}/hangup")
        deadline = time.monotonic() + 20
        while any(c["contact_id"] == cid and c["state"] != "wrapup" for c in api.live()):
            assert time.monotonic() < deadline
            time.sleep(0.3)
        if any(c["contact_id"] == cid for c in api.live()):
            api.post(f"/contacts/{cid}/wrapup", {"code": "resolved"})
        cdr = wait_until_cdr(api, lambda c: c["id"] == cid and c["state"] == "ended")
        alice_legs = [leg for leg in cdr["legs"] if leg["agent_id"] == alice]
        assert alice_legs[-1]["wrapup"] == {"code": "follow_up", "notes": "handed to Bob"}, cdr
    finally:
        page.context.close()
        if caller is not None:
            kill_group(caller)
        bob_phone.stop()
        alice_phone.stop()


def test_the_agent_pauses_the_recording_and_a_reload_keeps_its_state(node, api, browser, tmp_path):
    """The RECORDING badge and pause/resume in the call view; the state after a reload comes
    from the live contact; the paused span is left out of the recording; each change audited.
    The way in gains the agent's step live, when the call is answered."""
    phone = SippAgentPhone(tmp_path / "alice").start()
    api.patch(f"/agents/{api.agents['1001']['id']}", {"device": phone.uri})
    page = _agent_page(browser, node, "1001")
    caller = None
    try:
        caller = _answered_call(page, node, tmp_path)
        # The way in: the agent's step added from the event, no reload.
        page.get_by_test_id("ivr-path").filter(has_text="Agent: Alice Agent").wait_for()
        badge = page.get_by_test_id("recording")
        page.locator("[data-testid=recording][data-state=recording]").wait_for()
        assert badge.inner_text().lower() == "recording"
        (contact,) = api.live()
        cid = contact["contact_id"]
        assert contact["recording"] == "recording"
        time.sleep(2)
        page.get_by_role("button", name="Pause recording").click()
        page.locator("[data-testid=recording][data-state=paused]").wait_for()
        paused_at = time.monotonic()
        assert api.live()[0]["recording"] == "paused"
        # A reload mid-call: the badge comes from the server's live contact.
        page.reload()
        page.locator("[data-testid=recording][data-state=paused]").wait_for()
        screenshot(page, "agent-recording-paused-en")
        assert axe_violations(page) == []
        time.sleep(max(0.0, 4 - (time.monotonic() - paused_at)))
        page.get_by_role("button", name="Resume recording").click()
        page.locator("[data-testid=recording][data-state=recording]").wait_for()
        paused = time.monotonic() - paused_at
        # In Chinese after a reload: still recording, the controls in Chinese.
        page.evaluate("localStorage.setItem('cloudcc.lang', 'zh-CN')")
        page.reload()
        page.locator("[data-testid=recording][data-state=recording]").filter(
            has_text="录音中"
        ).wait_for()
        page.get_by_role("button", name="暂停录音").wait_for()
        screenshot(page, "agent-recording-zh-CN")
        assert axe_violations(page) == []
        time.sleep(2)
        page.get_by_role("button", name="挂断").click()
        page.locator("[data-testid=contact][data-phase=wrapup]").wait_for()
        assert page.get_by_test_id("recording").count() == 0
        page.get_by_role("button", name="完成整理").click()
        page.get_by_test_id("contact").wait_for(state="detached")
        page.evaluate("localStorage.setItem('cloudcc.lang', 'en')")
    finally:
        page.context.close()
        if caller is not None:
            kill_group(caller)
        phone.stop()
    cdr = wait_until_cdr(api, lambda c: c["id"] == cid and c["state"] == "ended")
    (rid,) = cdr["recordings"]
    deadline = time.monotonic() + 20
    while (recording := api.get(f"/recordings/{rid}"))["state"] != "complete":
        assert time.monotonic() < deadline, recording
        time.sleep(0.3)
    # The file leaves the pause out: it is shorter than the talk by about the pause.
    talk = cdr["talk_seconds"]
    assert recording["duration_seconds"] <= talk - paused + 1.5, (recording, talk, paused)
    assert recording["duration_seconds"] >= talk - paused - 3, (recording, talk, paused)
    # Who paused and resumed it: the audit log.
    actions = [
        e["action"] for e in api.get("/audit-log?limit=50")["items"] if e["resource_id"] == cid
    ]
    assert {"recording_pause", "recording_resume"} <= set(actions), actions


def test_a_second_tab_takes_over_and_the_first_says_why(node, api, browser):
    api.patch(f"/agents/{api.agents['1003']['id']}", {"device": "sip:desk-1003@127.0.0.1:5999"})
    first = _agent_page(browser, node, "1003")
    second = _agent_page(browser, node, "1003", "zh-CN")
    try:
        _sign_in_with_phone(first)
        # The second tab finds the agent signed in elsewhere and offers to take over.
        second.reload()
        second.get_by_test_id("elsewhere").wait_for()
        assert second.get_by_test_id("agent-state").count() == 0
        screenshot(second, "agent-elsewhere-zh-CN")
        assert axe_violations(second) == []
        second.get_by_role("button", name="改用此标签页").click()
        second.get_by_role("radio", name="我的话机（已注册或管理员分配）").check()
        second.locator("form[aria-labelledby=device-title] button[type=submit]").click()
        second.get_by_test_id("agent-state").filter(has_text="空闲").wait_for()
        # The first tab says why it is signed out and offers to sign in again.
        first.get_by_test_id("signed-out").filter(has_text="another tab or device").wait_for()
        assert first.locator("#device-title").is_visible()
        assert first.get_by_test_id("agent-state").count() == 0
        screenshot(first, "agent-replaced-en")
        assert axe_violations(first) == []
        # The tab that took over is not told anything of the kind.
        time.sleep(1)
        assert second.get_by_test_id("signed-out").count() == 0
        assert second.get_by_test_id("agent-state").is_visible()
    finally:
        first.context.close()
        second.context.close()


class _Network:
    """The page's event-stream WebSockets through Playwright, so a test can cut them."""

    def __init__(self, page: Any) -> None:
        self.up = True
        self.open: list[tuple[Any, Any]] = []
        page.route_web_socket(re.compile(r".*/api/v1/events/ws$"), self._route)

    def _route(self, ws: Any) -> None:
        if not self.up:
            ws.close()
            return
        self.open.append((ws, ws.connect_to_server()))

    def drop(self) -> None:
        self.up = False
        for ws, server in self.open:
            server.close()
            ws.close()
        self.open.clear()


def test_a_network_drop_shows_a_banner_and_a_lost_heartbeat_signs_out_with_why(node, api, browser):
    api.patch(f"/agents/{api.agents['1002']['id']}", {"device": "sip:desk-1002@127.0.0.1:5998"})
    agent = next(a for a in node.demo["agents"] if a["extension"] == "1002")
    page = new_page(browser, node.base)
    network = _Network(page)
    try:
        sign_in(page, node.demo["tenant"], agent["web_username"], agent["web_password"])
        page.locator("#device-title").wait_for()
        _sign_in_with_phone(page)
        assert page.get_by_test_id("reconnecting").count() == 0
        network.drop()
        page.get_by_test_id("reconnecting").wait_for()
        screenshot(page, "agent-reconnecting-en")
        assert axe_violations(page) == []
        # A short drop: the stream resumes and the banner goes.
        network.up = True
        page.get_by_test_id("reconnecting").wait_for(state="detached", timeout=15_000)
        page.get_by_test_id("agent-state").filter(has_text="Ready").wait_for()
        # A long one: no stream, no heartbeat for 60 s, the node signs the agent out
        # (disconnected); when the network is back the page says so.
        network.drop()
        status = f"/agents/{api.agents['1002']['id']}/status"
        deadline = time.monotonic() + 90
        while api.get(status)["state"] != "offline":
            assert time.monotonic() < deadline, "the agent was not signed out"
            time.sleep(1)
        network.up = True
        page.get_by_test_id("signed-out").filter(has_text="lost its connection").wait_for(
            timeout=20_000
        )
        assert page.locator("#device-title").is_visible()
    finally:
        page.context.close()
