"""The main job end to end: a customer dials 4000, picks a menu option, waits, talks to an
agent; abandonment, no answer, and the CDR written for each."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from tests.voice.peers import (
    Baresip,
    SippAgentPhone,
    kill_group,
    level,
    read_wav,
    sipp_call,
    start_sipp_call,
    wait_until,
)

pytestmark = [pytest.mark.peer, pytest.mark.slow]


def test_dtmf_menu_choice_reaches_an_agent_and_the_cdr_is_complete(voice_node, api, tmp_path):
    phone = SippAgentPhone(tmp_path / "agent").start()
    try:
        api.login("1001", phone.uri)
        started = time.time()
        result = sipp_call(
            tmp_path / "caller", voice_node.sip_port, digit="2", dtmf_after_ms=4500, talk_ms=5000
        )
        assert result.returncode == 0, result.stdout[-3000:] + phone.errors()
    finally:
        phone.stop()
    cdr = wait_until_cdr(api, lambda c: c["state"] == "wrapup" or c["state"] == "ended")
    agent = api.agents["1001"]
    assert cdr["direction"] == "inbound" and cdr["channel"] == "voice"
    assert cdr["dialed"] == "4000" and cdr["customer"].startswith("+15550")
    assert cdr["disposition"] == "answered" and cdr["end_cause"] == "customer_hangup"
    assert cdr["queue"] == "support" and cdr["agent_id"] == agent["id"]
    assert cdr["attributes"]["choice"] == "support"
    assert [p["type"] for p in cdr["path"]] == ["flow", "queue", "agent"]
    assert cdr["path"][0]["name"] == "demo-main" and cdr["path"][1]["name"] == "support"
    # Phases: the key was pressed at ~4.5 s; the phone rang 0.3 s; talk until the BYE.
    assert 3.5 < cdr["ivr_seconds"] < 8, cdr
    assert 0.2 < cdr["ring_seconds"] < 3 and cdr["queue_seconds"] >= cdr["ring_seconds"]
    assert 3.5 < cdr["talk_seconds"] < 7, cdr
    assert cdr["hold_seconds"] == 0
    customer, agent_leg = cdr["legs"]
    assert customer["role"] == "customer" and agent_leg["role"] == "agent"
    assert agent_leg["agent_id"] == agent["id"] and agent_leg["peer"] == phone.uri
    assert agent_leg["ringing_at"] < agent_leg["answered_at"]
    for leg in (customer, agent_leg):
        assert leg["state"] == "ended" and leg["quality"]["packets_received"] > 100
        assert leg["quality"]["loss_ratio"] < 0.01
    created = cdr["created_at"]
    assert abs(_ts(created) - started) < 5
    # The call was recorded; the recording is complete and downloadable.
    (rid,) = cdr["recordings"]
    rec = api.get(f"/recordings/{rid}")
    assert rec["state"] == "complete" and rec["channels"] == 2
    assert abs(rec["duration_seconds"] - cdr["talk_seconds"]) < 1.5
    assert len(rec["sha256"]) == 64


def test_caller_and_agent_hear_each_other_and_the_recording_has_both_sides(
    voice_node, api, tmp_path
):
    async def scenario() -> None:
        agent = await Baresip(
            tmp_path / "agent",
            user="1001",
            password=api.passwords["1001"],
            registrar_port=voice_node.sip_port,
            tone_hz=1500,
        ).start()
        caller = await Baresip(tmp_path / "caller", user="customer", tone_hz=1000).start()
        try:
            await wait_until(lambda: "200 OK" in agent.output(), 10)  # registered
            await asyncio.sleep(0.3)
            api.login("1001")  # with its registered phone
            await caller.dial(f"sip:4000@127.0.0.1:{voice_node.sip_port}")
            await wait_until(lambda: any(c["state"] == "ivr" for c in api.live()), 10)
            await asyncio.sleep(3.5)
            await caller.send_dtmf("1")  # sales
            await wait_until(lambda: any(c["state"] == "connected" for c in api.live()), 15)
            await asyncio.sleep(4)
            await caller.hangup()
            await wait_until(lambda: not any(c["state"] == "connected" for c in api.live()), 10)
            heard_by_caller = caller.heard()[-3 * 8000 :]
            heard_by_agent = agent.heard()[-3 * 8000 :]
            assert level(heard_by_caller, 1500) > -30, "the caller hears the agent"
            assert level(heard_by_caller, 1000) < -45, "the caller does not hear itself"
            assert level(heard_by_agent, 1000) > -30, "the agent hears the caller"
            assert level(heard_by_agent, 1500) < -45
        finally:
            await caller.stop()
            await agent.stop()

    asyncio.run(scenario())
    cdr = wait_until_cdr(api, lambda c: c["disposition"] == "answered")
    assert cdr["queue"] == "sales" and cdr["attributes"]["choice"] == "sales"
    (rid,) = cdr["recordings"]
    audio = _download(api, rid, tmp_path / "rec.wav")
    pcm, rate, channels = read_wav(audio)
    assert channels == 2 and rate == 8000
    talk = pcm[-3 * 8000 :]
    assert level(talk[:, 0], 1000) > -30 and level(talk[:, 0], 1500) < -40  # customer left
    assert level(talk[:, 1], 1500) > -30 and level(talk[:, 1], 1000) < -40  # agent right


def test_a_caller_who_hangs_up_in_the_queue_is_abandoned_with_its_wait(voice_node, api, tmp_path):
    # Nobody is logged in: the caller waits with music, then gives up.
    result = sipp_call(
        tmp_path / "caller", voice_node.sip_port, digit="2", dtmf_after_ms=4500, talk_ms=4000
    )
    assert result.returncode == 0, result.stdout[-2000:]
    cdr = wait_until_cdr(api, lambda c: c["state"] == "ended")
    assert cdr["disposition"] == "abandoned" and cdr["end_cause"] == "customer_hangup"
    assert cdr["agent_id"] is None and cdr["answered_at"] is None
    assert 3 < cdr["queue_seconds"] < 6, cdr
    assert cdr["recordings"] == [] and len(cdr["legs"]) == 1
    stats = api.get(f"/queues/{api.queue_id('support')}/stats")
    assert stats["abandoned"] >= 1 and stats["waiting"] == 0


def test_a_supervisor_releases_a_caller_waiting_in_the_queue(voice_node, api, tmp_path):
    # Nobody is logged in; a supervisor ends the waiting call: the caller gets our BYE (SIPp
    # passes only if it came while it waited) and the queue forgets the contact.
    caller = start_sipp_call(tmp_path / "caller", voice_node.sip_port, digit="2", talk_ms=30_000)
    try:
        deadline = time.monotonic() + 15
        while not (queued := [c for c in api.live() if c["state"] == "queued"]):
            assert time.monotonic() < deadline, "the call never reached the queue"
            time.sleep(0.1)
        time.sleep(1.5)  # SIPp has played its key and waits for the BYE
        api.post(f"/contacts/{queued[0]['contact_id']}/force-release", None)
        assert caller.wait(10) == 0
    finally:
        kill_group(caller)
    cdr = wait_until_cdr(api, lambda c: c["state"] == "ended")
    assert cdr["disposition"] == "released" and cdr["end_cause"] == "supervisor_release"
    assert cdr["queue"] == "support" and cdr["answered_at"] is None
    assert api.get(f"/queues/{api.queue_id('support')}/stats")["waiting"] == 0


def test_an_unanswered_offer_goes_back_to_the_queue_and_the_agent_is_made_not_ready(
    voice_node, api, tmp_path
):
    qid = api.queue_id("support")
    api.patch(f"/queues/{qid}", {"ring_timeout_seconds": 5})
    silent = SippAgentPhone(tmp_path / "silent", scenario="agent_no_answer.xml").start()
    good = SippAgentPhone(tmp_path / "good").start()
    try:
        api.login("1001", silent.uri)
        result_holder: dict[str, object] = {}

        async def call_and_join_second_agent() -> None:
            task = asyncio.create_task(
                asyncio.to_thread(
                    sipp_call, tmp_path / "caller", voice_node.sip_port, "4000", "2", 4500, 12000
                )
            )
            await wait_until(lambda: any(c["state"] == "offered" for c in api.live()), 20)
            api.login("1002", good.uri)
            result_holder["result"] = await task

        asyncio.run(call_and_join_second_agent())
        result = result_holder["result"]
        assert result.returncode == 0, result.stdout[-2000:]  # type: ignore[attr-defined]
    finally:
        silent.stop()
        good.stop()
    cdr = wait_until_cdr(api, lambda c: c["disposition"] == "answered")
    assert cdr["agent_id"] == api.agents["1002"]["id"]
    roles = [(leg["role"], leg["agent_id"], leg["end_cause"]) for leg in cdr["legs"]]
    assert roles[1][1] == api.agents["1001"]["id"] and roles[2][1] == api.agents["1002"]["id"]
    assert cdr["ring_seconds"] > 4.5  # the first ring timed out
    status = api.get(f"/agents/{api.agents['1001']['id']}/status")
    assert status["state"] == "not_ready" and status["reason"] == "rona"


def wait_until_cdr(api, predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = api.contacts()
        if items and predicate(items[0]):
            return items[0]
        time.sleep(0.2)
    raise AssertionError(f"no matching contact record: {api.contacts()[:1]}")


def _ts(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp()


def _download(api, recording_id: str, path):
    import httpx

    r = httpx.get(f"{api.base}/recordings/{recording_id}/audio", headers=api.headers)
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    path.write_bytes(r.content)
    assert np.frombuffer(r.content[:4], dtype=np.uint8).tobytes() == b"RIFF"
    return path


def best_match(heard: np.ndarray, reference: np.ndarray) -> float:
    """The highest normalised cross-correlation of ``reference`` anywhere in ``heard``."""
    h = heard.astype(np.float64)
    r = reference.astype(np.float64)
    r = r - r.mean()
    n = len(h) + len(r)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(h, size) * np.conj(np.fft.rfft(r, size)), size)[: len(h)]
    window = np.convolve(h * h, np.ones(len(r)), mode="full")[len(r) - 1 : len(r) - 1 + len(h)]
    energy = np.sqrt(np.maximum(window, 1e-9) * float(np.sum(r * r)))
    valid = len(h) - len(r) + 1
    return float(np.max(corr[:valid] / energy[:valid])) if valid > 0 else 0.0


def test_the_caller_hears_the_greeting_prompt_then_music_while_queued(voice_node, api, tmp_path):
    from pathlib import Path

    from cloudcc.ai.tts import EspeakNg

    greeting = asyncio.run(
        EspeakNg().synthesize(
            "Thank you for calling the cloud contact center demo.", language="en-US"
        )
    )
    tracks = sorted(Path("/usr/share/asterisk/moh").glob("*.wav"))

    async def scenario() -> np.ndarray:
        caller = await Baresip(
            tmp_path / "caller", user="customer", tone_hz=None, audio=None
        ).start()
        try:
            await caller.dial(f"sip:4000@127.0.0.1:{voice_node.sip_port}")
            await wait_until(lambda: any(c["state"] == "ivr" for c in api.live()), 10)
            await asyncio.sleep(4)
            await caller.send_dtmf("2")
            await wait_until(lambda: any(c["state"] == "queued" for c in api.live()), 10)
            await asyncio.sleep(12)  # the position announcement, then music
            return caller.heard()
        finally:
            await caller.stop()

    heard = asyncio.run(scenario())
    # The greeting arrives as rendered (G.711 costs a little): a near-perfect match.
    assert best_match(heard[: 8000 * 6], greeting.samples[8000:16000]) > 0.9
    # After the key: music on hold, one of the Debian opsound tracks, from its start.
    music = [read_wav(t)[0][8000 * 1 : 8000 * 2, 0] for t in tracks]
    assert max(best_match(heard[8000 * 6 :], m) for m in music) > 0.9


def test_a_flow_plays_an_uploaded_prompt(voice_node, api, tmp_path):
    import httpx

    from tests.api.test_prompts import wav_bytes

    r = httpx.put(
        f"{api.base}/prompts/chime",
        content=wav_bytes(16000, 1, 3.0, freq=700),
        headers={**api.headers, "content-type": "audio/wav"},
    )
    assert r.status_code == 200, r.text
    flow = api.post(
        "/flows",
        {
            "document": {
                "format": "cloudcc.flow/1",
                "id": "chime",
                "name": "Chime",
                "start": "play",
                "nodes": [
                    {
                        "id": "play",
                        "type": "play",
                        "prompt": {"audio": "chime"},
                        "outputs": {"next": "bye"},
                    },
                    {"id": "bye", "type": "hangup"},
                ],
            }
        },
    )
    api.post(f"/flows/{flow['id']}/publish", {})
    api.provision("4200")
    api.post("/numbers", {"number": "4200", "target_type": "flow", "target": "chime"})

    async def scenario() -> np.ndarray:
        caller = await Baresip(tmp_path / "caller", user="customer", tone_hz=1000).start()
        try:
            await caller.dial(f"sip:4200@127.0.0.1:{voice_node.sip_port}")
            await wait_until(lambda: api.contacts() and api.contacts()[0]["state"] == "ended", 15)
            return caller.heard()
        finally:
            await caller.stop()

    heard = asyncio.run(scenario())
    assert level(heard, 700) > -35 and level(heard, 1000) < -45
    cdr = api.contacts()[0]
    assert cdr["disposition"] == "self_service" and cdr["end_cause"] == "system_hangup"
    assert 2.5 < cdr["ivr_seconds"] < 5


def test_in_the_ivr_operations_are_refused_at_once_but_a_hangup_is_taken(voice_node, api, tmp_path):
    # In the IVR nobody reads the contact's operations: asking for one is a 409 now, not a
    # wait of a minute, nor a transfer carried out later when the caller reaches the queue.
    caller = start_sipp_call(tmp_path / "caller", voice_node.sip_port, dtmf_after_ms=20_000)
    try:
        deadline = time.monotonic() + 10
        while not (live := [c for c in api.live() if c["state"] == "ivr"]):
            assert time.monotonic() < deadline, "the call never reached the IVR"
            time.sleep(0.1)
        cid = live[0]["contact_id"]
        for op, body in (("hold", None), ("transfer", {"target_type": "queue", "target": "sales"})):
            started = time.monotonic()
            r = api.post(f"/contacts/{cid}/{op}", body, expect=409)
            assert "ivr" in r["detail"] and time.monotonic() - started < 2
        assert api.live()[0]["state"] == "ivr"
        # A hangup is the one operation every phase takes: the IVR is stopped from outside.
        started = time.monotonic()
        api.post(f"/contacts/{cid}/force-release", None)
        assert time.monotonic() - started < 5 and not api.live()
    finally:
        kill_group(caller)
    cdr = wait_until_cdr(api, lambda c: c["id"] == cid and c["state"] == "ended")
    assert cdr["disposition"] == "released" and cdr["end_cause"] == "supervisor_release"
    assert cdr["ivr_seconds"] > 0
