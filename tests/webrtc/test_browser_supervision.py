"""Whisper and barge on a browser agent's call, judged by what each party hears: the agent
is a browser (SIP over WebSocket, WebRTC media by aiortc) playing 1500 Hz, the customer a
baresip phone at 1000 Hz, the supervisor a registered baresip phone at 2500 Hz."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from cloudcc.webrtc.testing import loopback_only
from tests.conftest import LiveNode, free_port
from tests.voice.conftest import Api
from tests.voice.peers import Baresip, level, wait_until
from tests.webrtc.browser_ua import BrowserUa

pytestmark = [pytest.mark.peer, pytest.mark.slow]
loopback_only()

CALLER, AGENT, SUPERVISOR = 1000, 1500, 2500
HEARD = -32  # dBFS: a party's tone is clearly there
SILENT = -45  # dBFS: it is not


@pytest.fixture
def api(node: LiveNode) -> Api:
    return Api(node)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[LiveNode]:
    """A node of its own with SIP over WebSocket (``ws_port`` kept on it for the browsers):
    the phones of one test must not stay registered for the next."""
    ws_port = free_port()
    live = LiveNode(tmp_path / "data", env={"CLOUDCC_SIP__WS_PORT": str(ws_port)})
    live.ws_port = ws_port  # type: ignore[attr-defined]
    try:
        live.wait_ready()
        yield live
    finally:
        live.stop()


def _browser_heard(ua: BrowserUa, seconds: float = 1.5) -> np.ndarray:
    return ua.peer.audio(time.monotonic() - seconds)


async def _call_support(api: Api, node: LiveNode, caller: Baresip) -> None:
    """The caller dials the demo number and picks support (2)."""
    await caller.dial(f"sip:4000@127.0.0.1:{node.sip_port}")
    await wait_until(lambda: any(c["state"] == "ivr" for c in api.live()), 10)
    await asyncio.sleep(3.5)
    await caller.send_dtmf("2")


async def _connected(api: Api) -> str:
    live = await wait_until(lambda: [c for c in api.live() if c["state"] == "connected"], 15)
    return str(live[0]["contact_id"])


def test_a_browser_agent_hears_the_whisper_the_customer_does_not_and_both_hear_a_barge(
    node: LiveNode, api: Api, tmp_path: Path
) -> None:
    ws_port = node.ws_port

    async def scenario() -> None:
        ua = BrowserUa(f"ws://127.0.0.1:{ws_port}", "1001", api.passwords["1001"], tone_hz=AGENT)
        caller = supervisor = None
        serving = None
        try:
            await ua.register()
            await asyncio.to_thread(api.login, "1001")  # rings the browser
            supervisor = await Baresip(
                tmp_path / "supervisor",
                user="1003",
                password=api.passwords["1003"],
                registrar_port=node.sip_port,
                tone_hz=SUPERVISOR,
            ).start()
            caller = await Baresip(tmp_path / "caller", user="customer",
                                   tone_hz=CALLER).start()  # fmt: skip
            await wait_until(lambda: "200 OK" in supervisor.output(), 10)
            await _call_support(api, node, caller)
            await ua.answer(timeout=30)
            serving = asyncio.ensure_future(ua.serve_requests())
            cid = await _connected(api)
            await asyncio.sleep(2.5)
            assert level(_browser_heard(ua), CALLER) > HEARD, "the agent hears the caller"
            assert level(caller.heard_since(1.5), AGENT) > HEARD, "the caller hears the agent"

            await asyncio.to_thread(api.post, f"/contacts/{cid}/monitor",
                                    {"mode": "whisper", "device": supervisor.uri})  # fmt: skip
            await asyncio.sleep(3)
            agent_heard, caller_heard = _browser_heard(ua), caller.heard_since(1.5)
            assert level(agent_heard, SUPERVISOR) > HEARD, "the agent hears the coach"
            assert level(agent_heard, CALLER) > HEARD, "... and the customer still"
            assert level(caller_heard, SUPERVISOR) < SILENT, "the customer does not"
            assert level(caller_heard, AGENT) > HEARD, "the customer hears the agent"
            assert level(supervisor.heard_since(1.5), CALLER) > HEARD
            assert level(supervisor.heard_since(1.5), AGENT) > HEARD

            await asyncio.to_thread(api.post, f"/contacts/{cid}/monitor",
                                    {"mode": "barge", "device": supervisor.uri})  # fmt: skip
            await asyncio.sleep(2.5)
            agent_heard, caller_heard = _browser_heard(ua), caller.heard_since(1.5)
            assert level(agent_heard, SUPERVISOR) > HEARD, "the agent hears the barge"
            assert level(caller_heard, SUPERVISOR) > HEARD, "the customer hears the barge"
            assert level(caller_heard, AGENT) > HEARD and level(agent_heard, CALLER) > HEARD
            await caller.hangup()
            await asyncio.wait_for(serving, 15)  # the node's BYE to the browser
        finally:
            if serving is not None:
                serving.cancel()
            for phone in (caller, supervisor):
                if phone is not None:
                    await phone.stop()
            await ua.close()

    asyncio.run(scenario())


def test_a_browser_supervisor_whispers_to_the_agent_only_and_barges_to_both(
    node: LiveNode, api: Api, tmp_path: Path
) -> None:
    """The other way round: the supervisor's audio comes from a browser (WebRTC leg) into
    the call of a baresip agent (1001 at 1500 Hz) and a baresip customer."""
    ws_port = node.ws_port

    async def scenario() -> None:
        ua = BrowserUa(
            f"ws://127.0.0.1:{ws_port}", "1003", api.passwords["1003"], tone_hz=SUPERVISOR
        )
        agent = caller = None
        serving = None
        try:
            await ua.register()
            agent = await Baresip(
                tmp_path / "agent",
                user="1001",
                password=api.passwords["1001"],
                registrar_port=node.sip_port,
                tone_hz=AGENT,
            ).start()
            caller = await Baresip(tmp_path / "caller", user="customer",
                                   tone_hz=CALLER).start()  # fmt: skip
            await wait_until(lambda: "200 OK" in agent.output(), 10)
            await asyncio.to_thread(api.login, "1001")
            await _call_support(api, node, caller)
            cid = await _connected(api)
            device = "sip:1003@127.0.0.1"  # the browser's registration, as the page sends

            def monitor(mode: str) -> None:
                api.post(f"/contacts/{cid}/monitor", {"mode": mode, "device": device})

            monitor_call = asyncio.ensure_future(asyncio.to_thread(monitor, "whisper"))
            await ua.answer(timeout=20)  # the node rings the browser for the supervision
            await monitor_call
            serving = asyncio.ensure_future(ua.serve_requests())
            await asyncio.sleep(3)
            heard = _browser_heard(ua)
            assert level(heard, CALLER) > HEARD and level(heard, AGENT) > HEARD
            agent_heard, caller_heard = agent.heard_since(1.5), caller.heard_since(1.5)
            assert level(agent_heard, SUPERVISOR) > HEARD, "the agent hears the coach"
            assert level(caller_heard, SUPERVISOR) < SILENT, "the customer does not"
            assert level(caller_heard, AGENT) > HEARD and level(agent_heard, CALLER) > HEARD

            await asyncio.to_thread(monitor, "barge")
            await asyncio.sleep(2.5)
            agent_heard, caller_heard = agent.heard_since(1.5), caller.heard_since(1.5)
            assert level(agent_heard, SUPERVISOR) > HEARD, "the agent hears the barge"
            assert level(caller_heard, SUPERVISOR) > HEARD, "the customer hears the barge"
            await caller.hangup()
            await asyncio.wait_for(serving, 15)
        finally:
            if serving is not None:
                serving.cancel()
            for phone in (caller, agent):
                if phone is not None:
                    await phone.stop()
            await ua.close()

    asyncio.run(scenario())
