"""A browser leg is a leg like any SIP phone's: hold, monitor and blind transfer through
the API with the agent on WebRTC (aiortc over SIP/WebSocket), judged by what each hears."""

from __future__ import annotations

import asyncio
import time

import pytest

from cloudcc.webrtc.testing import loopback_only
from tests.conftest import LiveNode, free_port
from tests.voice.conftest import Api
from tests.voice.peers import Baresip, level, wait_until
from tests.voice.test_call_control import HEARD, SILENT, TONES, hang_up, hears
from tests.webrtc.browser_ua import BrowserUa

pytestmark = [pytest.mark.peer, pytest.mark.slow]
loopback_only()


@pytest.fixture
def ws_node(tmp_path):
    ws_port = free_port()
    node = LiveNode(tmp_path / "data", env={"CLOUDCC_SIP__WS_PORT": str(ws_port)})
    node.ws_port = ws_port  # type: ignore[attr-defined]
    try:
        node.wait_ready()
        yield node
    finally:
        node.stop()


def browser_hears(ua: BrowserUa, party: str, seconds: float = 1.5) -> float:
    return level(ua.peer.audio(time.monotonic() - seconds), TONES[party])


async def test_hold_monitor_and_blind_transfer_with_a_browser_agent(ws_node, tmp_path):
    api = Api(ws_node)
    ua = BrowserUa(f"ws://127.0.0.1:{ws_node.ws_port}", "1001", api.passwords["1001"],
                   tone_hz=TONES["1001"])  # fmt: skip
    phones: dict[str, Baresip] = {}
    try:
        await ua.register()
        for ext in ("1002", "1003"):
            phones[ext] = await Baresip(tmp_path / ext, user=ext, password=api.passwords[ext],
                                        registrar_port=ws_node.sip_port,
                                        tone_hz=TONES[ext]).start()  # fmt: skip
        caller = phones["caller"] = await Baresip(
            tmp_path / "caller", user="customer", tone_hz=TONES["caller"]
        ).start()
        for ext in ("1002", "1003"):
            await wait_until(lambda e=ext: "200 OK" in phones[e].output(), 10)
        api.login("1001")  # its registered device: the browser
        answering = asyncio.ensure_future(ua.answer(timeout=40))
        await caller.dial(f"sip:4000@127.0.0.1:{ws_node.sip_port}")
        await wait_until(lambda: any(c["state"] == "ivr" for c in api.live()), 10)
        await asyncio.sleep(3.5)
        await caller.send_dtmf("1")
        await answering
        served = asyncio.ensure_future(ua.serve_requests())
        live = await wait_until(lambda: [c for c in api.live() if c["state"] == "connected"], 15)
        cid = live[0]["contact_id"]
        await asyncio.sleep(2.5)
        assert hears(caller, "1001") > HEARD, "the caller hears the browser"
        assert browser_hears(ua, "caller") > HEARD, "the browser hears the caller"

        api.post(f"/contacts/{cid}/hold")
        await asyncio.sleep(2.5)
        assert hears(caller, "1001") < SILENT and browser_hears(ua, "caller") < SILENT
        api.post(f"/contacts/{cid}/unhold")
        await asyncio.sleep(2)
        assert hears(caller, "1001") > HEARD and browser_hears(ua, "caller") > HEARD

        api.post(f"/contacts/{cid}/monitor", {"mode": "listen", "device": phones["1003"].uri})
        await asyncio.sleep(2.5)
        assert hears(phones["1003"], "caller") > HEARD and hears(phones["1003"], "1001") > HEARD
        assert browser_hears(ua, "1003") < SILENT

        api.post(f"/contacts/{cid}/transfer", {"target_type": "agent", "target": "1002"})
        await asyncio.wait_for(served, 15)  # the browser leg is hung up (BYE)
        await wait_until(
            lambda: [c for c in api.live() if c["state"] == "connected"
                     and c["agent_id"] == api.agents["1002"]["id"]],
            15,
        )  # fmt: skip
        await asyncio.sleep(2)
        assert hears(caller, "1002") > HEARD and hears(phones["1002"], "caller") > HEARD
        await hang_up(api, caller)
    finally:
        await ua.close()
        for phone in phones.values():
            await phone.stop()
