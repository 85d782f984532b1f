"""A browser agent end to end: SIP over WebSocket to the node's own SIP stack, WebRTC media
(aiortc, as a browser would), a customer from SIPp through the IVR and the queue."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from cloudcc.media.testing import rms_dbfs
from cloudcc.webrtc.testing import loopback_only
from tests.conftest import LiveNode, free_port
from tests.voice.conftest import Api
from tests.voice.peers import kill_group, level, read_wav, start_sipp_call
from tests.webrtc.browser_ua import BrowserUa

pytestmark = [pytest.mark.peer, pytest.mark.slow]
loopback_only()


def _last_contact(api: Api, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = api.contacts()
        if items and items[0].get("disposition") == "answered" and items[0].get("recordings"):
            return items[0]
        time.sleep(0.2)
    raise AssertionError(f"no answered contact: {api.contacts()[:1]}")


def test_a_browser_agent_over_websocket_takes_a_queued_sipp_call_with_audio_both_ways(
    tmp_path: Path,
) -> None:
    ws_port = free_port()
    node = LiveNode(tmp_path / "data", env={"CLOUDCC_SIP__WS_PORT": str(ws_port)})
    try:
        node.wait_ready()
        api = Api(node)

        async def scenario() -> tuple[str, list[str], np.ndarray]:
            ua = BrowserUa(f"ws://127.0.0.1:{ws_port}", "1001", api.passwords["1001"], tone_hz=500)
            caller = None
            try:
                await ua.register()
                await asyncio.to_thread(api.login, "1001")  # with its (browser) phone
                caller = start_sipp_call(
                    tmp_path / "sipp", node.sip_port, digit="1", dtmf_after_ms=3000, talk_ms=7000
                )
                offer = await ua.answer(timeout=40)
                methods = await asyncio.wait_for(ua.serve_requests(), 30)  # until the BYE
                return offer, methods, ua.peer.audio()
            finally:
                if caller is not None:
                    kill_group(caller)
                await ua.close()

        offer, methods, heard = asyncio.run(scenario())
        # the node offered WebRTC to the browser: ICE-lite, DTLS-SRTP, rtcp-mux, BUNDLE
        for part in ("UDP/TLS/RTP/SAVPF", "a=ice-lite", "a=fingerprint:sha-256", "a=rtcp-mux",
                     "a=group:BUNDLE", "a=setup:actpass"):  # fmt: skip
            assert part in offer
        assert methods[-1] == "BYE"
        # the browser heard the customer (SIPp's PCMA pcap, relayed and encrypted)
        assert len(heard) > 3 * 8000
        assert rms_dbfs(heard[-3 * 8000 :]) > -40
        # the customer's side got the browser's microphone: the node's recording of the
        # call has the browser's 500 Hz tone on the agent channel, not on the customer's
        contact = _last_contact(api)
        (rid,) = contact["recordings"]
        r = httpx.get(f"{api.base}/recordings/{rid}/audio", headers=api.headers, timeout=30)
        assert r.status_code == 200
        wav = tmp_path / "rec.wav"
        wav.write_bytes(r.content)
        pcm, rate, channels = read_wav(wav)
        assert channels == 2 and rate == 8000
        talk = pcm[-3 * 8000 :]
        agent, customer = level(talk[:, 1], 500), level(talk[:, 0], 500)
        assert agent > -30, agent  # the browser's tone on the agent channel
        assert agent > customer + 10, (agent, customer)  # (the caller's speech has some 500 Hz)
    finally:
        node.stop()


def test_a_browser_that_vanishes_mid_call_ends_its_leg_by_media_inactivity(
    tmp_path: Path,
) -> None:
    # a closed tab sends no BYE: its SRTP stops, and the node clears the agent leg
    ws_port = free_port()
    node = LiveNode(
        tmp_path / "data",
        env={"CLOUDCC_SIP__WS_PORT": str(ws_port), "CLOUDCC_MEDIA__INACTIVITY_TIMEOUT": "4"},
    )
    try:
        node.wait_ready()
        api = Api(node)

        async def scenario() -> None:
            ua = BrowserUa(f"ws://127.0.0.1:{ws_port}", "1001", api.passwords["1001"])
            caller = None
            try:
                await ua.register()
                await asyncio.to_thread(api.login, "1001")
                caller = start_sipp_call(
                    tmp_path / "sipp", node.sip_port, digit="1", dtmf_after_ms=3000, talk_ms=25000
                )
                await ua.answer(timeout=40)
                deadline = time.monotonic() + 15
                while not any(c["state"] == "connected" for c in api.live()):
                    assert time.monotonic() < deadline, api.live()
                    await asyncio.sleep(0.2)
                await asyncio.sleep(1.0)
                await ua.peer.close()  # the tab is gone: no more media, and no BYE
                deadline = time.monotonic() + 20
                while any(c["state"] == "connected" for c in api.live()):
                    assert time.monotonic() < deadline, "the browser leg was not cleared"
                    await asyncio.sleep(0.2)
            finally:
                if caller is not None:
                    kill_group(caller)
                await ua.close()

        asyncio.run(scenario())
        deadline = time.monotonic() + 20
        while True:
            contact = api.contacts()[0]
            agent_legs = [leg for leg in contact["legs"] if leg["role"] == "agent"]
            if agent_legs and agent_legs[0].get("end_cause"):
                break
            assert time.monotonic() < deadline, contact
            time.sleep(0.3)
        assert agent_legs[0]["end_cause"] == "media_timeout", contact
    finally:
        node.stop()
