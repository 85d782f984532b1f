"""The browser softphone when things go wrong, in a real Chromium (JsSIP over WebSocket,
WebRTC terminated in the node) with real callers:

- a network drop mid-call: the page restarts ICE (RFC 8445 §9) and the call goes on, audio
  both ways (the browser's microphone is a 1500 Hz tone, the caller a baresip phone at
  1000 Hz);
- the agent's tab closed mid-call: the customer goes back to the front of its queue and is
  offered to another agent (a SIPp phone); the contact record says why.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from cloudcc.media.testing import sine
from tests.conftest import LiveNode, free_port, require_peer
from tests.voice.conftest import Api
from tests.voice.peers import (
    Baresip,
    SippAgentPhone,
    kill_group,
    level,
    start_sipp_call,
    write_wav,
)
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS, new_page, require_build, sign_in
from tests.web.test_supervisor_browser import CAPTURE_PEERS, INBOUND

pytestmark = [pytest.mark.peer, pytest.mark.slow]

AGENT_TONE = 1500  # the browser's microphone
CALLER_TONE = 1000
# dBFS: the browser's tone is clearly there in what the caller hears (Chromium's noise
# suppression takes a few dB off a steady tone within seconds; silence is below -45)
HEARD = -40
# seconds without media before a browser leg is lost: longer than Chromium takes to see its
# path is gone (consent checks every 2.5 s, several missed) and to restart ICE
LOST_AFTER = 20
ICE = """() => window.ccPeers.map((pc) => ({
  state: pc.iceConnectionState,
  local: (pc.localDescription?.sdp.match(/a=ice-ufrag:(\\S+)/) || [])[1],
  remote: (pc.remoteDescription?.sdp.match(/a=ice-ufrag:(\\S+)/) || [])[1],
  port: +((pc.remoteDescription?.sdp.match(/m=audio (\\d+)/) || [])[1] || 0),
}))"""
# the ports of the browser's own candidates (every path it has now)
CANDIDATE_PORTS = """() => [...window.ccPeers[0].localDescription.sdp.matchAll(
  /a=candidate:\\S+ 1 udp \\d+ \\S+ (\\d+) typ/gi)].map((m) => +m[1])"""


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNode]:
    require_build()
    live = LiveNode(
        tmp_path_factory.mktemp("drop") / "data",
        env={
            "CLOUDCC_SIP__WS_PORT": str(free_port()),
            "CLOUDCC_MEDIA__BROWSER_LOST_AFTER": str(LOST_AFTER),
        },
    )
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
        client.post(f"/agents/{agent['id']}/force", {"action": "sign_out"}, expect=(200, 409))


@pytest.fixture(scope="module")
def toned_browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Chromium whose fake microphone plays a tone (looped from a WAV file)."""
    require_build()
    require_peer(Path(CHROMIUM).exists(), "Debian's chromium")
    from playwright.sync_api import sync_playwright

    wav = write_wav(tmp_path_factory.mktemp("mic") / "mic.wav", sine(AGENT_TONE, 10.0, -12.0))
    args = [*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={wav}"]
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            yield b
        finally:
            b.close()


def _softphone_page(browser: Any, node: LiveNode, extension: str) -> Any:
    agent = next(a for a in node.demo["agents"] if a["extension"] == extension)
    page = new_page(browser, node.base)
    page.add_init_script(CAPTURE_PEERS)
    sign_in(page, node.demo["tenant"], agent["web_username"], agent["web_password"])
    page.locator("#device-title").wait_for()
    page.locator("input[name=sip-password]").fill(agent["sip_password"])
    page.locator("form[aria-labelledby=device-title] button[type=submit]").click()
    page.get_by_test_id("agent-state").filter(has_text="Ready").wait_for(timeout=20_000)
    return page


def _answer(page: Any) -> None:
    page.get_by_role("button", name="Answer").wait_for(timeout=40_000)
    page.get_by_role("button", name="Answer").click()
    page.locator("[data-testid=contact][data-phase=talking]").wait_for(timeout=20_000)


@contextmanager
def _udp_blocked(*ports: int) -> Iterator[None]:
    """Every UDP datagram to or from ``ports`` (the node's side of the browser leg, or the
    browser's) is dropped, as on a network that went away; nothing else is touched."""
    rules = [
        ["-p", "udp", direction, str(port), "-j", "DROP"]
        for port in ports
        for direction in ("--dport", "--sport")
    ]
    for rule in rules:
        subprocess.run(["iptables", "-I", "INPUT", *rule], check=True)
    try:
        yield
    finally:
        for rule in rules:
            subprocess.run(["iptables", "-D", "INPUT", *rule], check=False)


def _inbound(page: Any) -> tuple[int, float]:
    heard = page.evaluate(INBOUND)
    return heard["packets"], heard["energy"]


def _hears_both_ways(page: Any, caller: Baresip) -> None:
    """Within a few seconds the browser receives the caller's audio again and the caller
    hears the browser's tone."""
    packets, energy = _inbound(page)
    samples = len(caller.heard())
    deadline = time.monotonic() + 10
    while True:
        time.sleep(1.5)
        now_packets, now_energy = _inbound(page)
        now_samples = len(caller.heard())
        agent = level(caller.heard_since(1.5), AGENT_TONE)
        if (
            now_packets > packets + 50
            and now_energy > energy
            and now_samples > samples + 8000
            and agent > HEARD
        ):
            return
        assert time.monotonic() < deadline, (packets, now_packets, energy, now_energy, agent)


def _wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, what
        time.sleep(0.25)


class _Loop:
    """An asyncio loop in a thread for the baresip phone (Playwright's sync API owns the
    test's own thread)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()  # else a ResourceWarning when it is collected, in another test


def test_a_call_survives_a_network_drop_by_an_ice_restart(node, api, toned_browser, tmp_path):
    usable = not subprocess.run(["iptables", "-L", "INPUT", "-n"], capture_output=True).returncode
    require_peer(usable, "a usable iptables (the test drops the leg's UDP with it; root)")
    page = _softphone_page(toned_browser, node, "1003")
    bg = _Loop()
    caller = bg.run(Baresip(tmp_path / "caller", user="customer", tone_hz=CALLER_TONE).start())
    try:
        bg.run(caller.dial(f"sip:4000@127.0.0.1:{node.sip_port}"))
        _wait_for(lambda: any(c["state"] == "ivr" for c in api.live()), 10, "no IVR")
        time.sleep(3.5)
        bg.run(caller.send_dtmf("1"))  # sales: rings the browser
        _answer(page)
        time.sleep(2.5)
        (contact,) = api.live()
        assert contact["state"] == "connected"
        assert level(caller.heard_since(1.5), AGENT_TONE) > HEARD, "the caller hears the agent"
        (before,) = page.evaluate(ICE)
        assert before["state"] in ("connected", "completed"), before
        packets, energy = _inbound(page)
        assert packets > 50 and energy > 0.01, (packets, energy)

        # A short drop (3 s): the call goes on, audio both ways again.
        with _udp_blocked(before["port"]):
            time.sleep(3)
        _hears_both_ways(page, caller)
        # Every path of the browser is gone for good (another network: its old addresses are
        # dead): the page restarts ICE, a new offer with new credentials and new
        # candidates, the node answers with new credentials of its own, and audio flows on
        # the new path.
        old_ports = page.evaluate(CANDIDATE_PORTS)
        assert old_ports, "the browser has no candidates"
        with _udp_blocked(*old_ports):
            after = _wait_for(
                lambda: next(
                    (
                        pc
                        for pc in page.evaluate(ICE)
                        if pc["local"] != before["local"]
                        and pc["state"] in ("connected", "completed")
                    ),
                    None,
                ),
                LOST_AFTER,
                "the page did not restart ICE",
            )
            assert after["remote"] != before["remote"], (before, after)  # the node's new ones
            assert not set(page.evaluate(CANDIDATE_PORTS)) & set(old_ports)
            _hears_both_ways(page, caller)
        (contact,) = api.live()
        assert contact["state"] == "connected", contact
        agent_legs = [leg for leg in contact["legs"] if leg["role"] == "agent"]
        assert len(agent_legs) == 1 and agent_legs[0]["state"] == "up", contact
        bg.run(caller.hangup())
        page.locator("[data-testid=contact][data-phase=wrapup]").wait_for(timeout=15_000)
    finally:
        page.context.close()
        bg.run(caller.stop())
        bg.close()


def test_a_closed_tab_sends_the_customer_back_to_the_front_of_its_queue(
    node, api, toned_browser, tmp_path
):
    alice, bob = api.agents["1003"]["id"], api.agents["1002"]["id"]
    phone = SippAgentPhone(tmp_path / "bob", scenario="agent_uas_talking.xml").start()
    page = _softphone_page(toned_browser, node, "1003")
    first = second = None
    try:
        first = start_sipp_call(
            tmp_path / "first", node.sip_port, digit="1", dtmf_after_ms=2500, talk_ms=90_000
        )
        _answer(page)
        (contact,) = api.live()
        cid = contact["contact_id"]
        # another customer comes meanwhile and waits (nobody is ready)
        second = start_sipp_call(
            tmp_path / "second", node.sip_port, digit="1", dtmf_after_ms=2500, talk_ms=90_000
        )
        _wait_for(lambda: any(c["state"] == "queued" for c in api.live()), 30, "not queued")
        closed_at = time.monotonic()
        page.context.close()  # the tab is gone: no BYE, its WebSocket and media stop

        # once its media has been missing for the grace, the customer is queued again ...
        back = _wait_for(
            lambda: next(
                (c for c in api.live() if c["contact_id"] == cid and c["state"] == "queued"), None
            ),
            LOST_AFTER + 15,
            "the customer was not queued again",
        )
        assert time.monotonic() - closed_at >= LOST_AFTER - 1
        assert back["agent_id"] is None, back
        # ... and the agent is not ready, with why, and no wrap-up to do
        status = _wait_for(
            lambda: (s := api.get(f"/agents/{alice}/status"))["state"] == "not_ready" and s,
            5,
            "the agent whose tab closed is not made not ready",
        )
        assert status["reason"] == "unreachable" and status["contacts"] == [], status
        # Bob signs in: the first customer is offered to him before the one who came later
        api.login("1002", phone.uri)
        _wait_for(
            lambda: any(
                c["contact_id"] == cid and c["agent_id"] == bob and c["state"] == "connected"
                for c in api.live()
            ),
            30,
            "the first customer was not offered to the other agent",
        )
        assert any(c["state"] == "queued" and c["contact_id"] != cid for c in api.live())
        record = api.get(f"/contacts/{cid}")
        steps = [step["type"] for step in record["path"]]
        lost = next(step for step in record["path"] if step["type"] == "agent_lost")
        assert lost["name"] == alice and lost["cause"] == "media_timeout", lost
        assert steps[steps.index("agent_lost") + 1 :][:2] == ["queue", "agent"], steps
        agent_legs = [leg for leg in record["legs"] if leg["role"] == "agent"]
        assert agent_legs[0]["end_cause"] == "media_timeout", agent_legs
    finally:
        for proc in (first, second):
            if proc is not None:
                kill_group(proc)
        phone.stop()
