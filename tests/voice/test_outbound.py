"""Calls out: click-to-call from an agent, customer-first return visits, an agent dialing from
its phone (to a colleague and to an outside number through the tenant's trunk), and the
spoken menu and wrap-up on the inbound side."""

from __future__ import annotations

import asyncio
import subprocess
import time

import numpy as np
import pytest

from tests.voice.peers import (
    Baresip,
    SippAgentPhone,
    level,
    read_wav,
    sipp_call,
    wait_until,
    write_wav,
)
from tests.voice.test_call_control import HEARD, TONES, hang_up, hears, phones
from tests.voice.test_inbound import wait_until_cdr

pytestmark = [pytest.mark.peer, pytest.mark.slow]


async def _carrier(tmp_path, api, number: str) -> Baresip:
    """The far end behind the carrier: the customer's phone with that number."""
    carrier = await Baresip(tmp_path / "carrier", user=number, tone_hz=1000).start()
    api.post("/trunks", {"name": "carrier", "host": "127.0.0.1", "port": carrier.sip_port})
    return carrier


async def test_click_to_call_rings_the_agent_then_the_customer(voice_node, api, tmp_path):
    async with phones(api, voice_node, tmp_path, ("1001",)) as p:
        carrier = await _carrier(tmp_path, api, "15551234")
        try:
            api.login("1001")
            agent_id = api.agents["1001"]["id"]
            out = api.post("/calls", {"to": "15551234", "agent_id": agent_id})
            await wait_until(
                lambda: any(
                    c["contact_id"] == out["contact_id"] and c["state"] == "connected"
                    for c in api.live()
                ),
                15,
            )
            await asyncio.sleep(2)
            assert level(carrier.heard_since(1.5), TONES["1001"]) > HEARD
            assert hears(p["1001"], "caller") > HEARD  # the carrier's phone plays 1000 Hz
            await hang_up(api, carrier)
        finally:
            await carrier.stop()
    cdr = wait_until_cdr(
        api, lambda c: c["id"] == out["contact_id"] and c["state"] in ("ended", "wrapup")
    )
    assert cdr["direction"] == "outbound" and cdr["customer"] == "15551234"
    assert cdr["dialed"] == "4000"  # the tenant's number is the caller ID
    assert cdr["agent_id"] == agent_id and cdr["disposition"] == "answered"
    assert [leg["role"] for leg in cdr["legs"]] == ["agent", "customer"]
    assert cdr["legs"][1]["peer"] == "15551234"


async def test_customer_first_call_is_routed_to_a_queue_when_answered(voice_node, api, tmp_path):
    async with phones(api, voice_node, tmp_path, ("1002",)) as p:
        carrier = await _carrier(tmp_path, api, "15550000")
        try:
            api.login("1002")
            out = api.post("/calls", {"to": "15550000", "queue": "support"})
            await wait_until(
                lambda: any(
                    c["contact_id"] == out["contact_id"] and c["state"] == "connected"
                    for c in api.live()
                ),
                15,
            )
            await asyncio.sleep(2)
            assert level(carrier.heard_since(1.5), TONES["1002"]) > HEARD
            assert hears(p["1002"], "caller") > HEARD
            await hang_up(api, carrier)
        finally:
            await carrier.stop()
    cdr = wait_until_cdr(
        api, lambda c: c["id"] == out["contact_id"] and c["state"] in ("ended", "wrapup")
    )
    assert cdr["direction"] == "outbound" and cdr["queue"] == "support"
    assert cdr["agent_id"] == api.agents["1002"]["id"]
    assert [x["type"] for x in cdr["path"]] == ["queue", "agent"]


async def test_customer_first_call_runs_the_flow_when_answered(voice_node, api, tmp_path):
    carrier = await _carrier(tmp_path, api, "15550000")
    try:
        out = api.post("/calls", {"to": "15550000", "flow": "demo-main"})
        await wait_until(
            lambda: any(
                c["contact_id"] == out["contact_id"] and c["state"] == "ivr" for c in api.live()
            ),
            15,
        )
        await asyncio.sleep(2)
        from cloudcc.media.testing import rms_dbfs

        assert rms_dbfs(carrier.heard_since(1.5)) > -40, "the customer hears the menu"
        await carrier.hangup()
    finally:
        await carrier.stop()
    cdr = wait_until_cdr(api, lambda c: c["id"] == out["contact_id"] and c["state"] == "ended")
    assert cdr["direction"] == "outbound" and cdr["customer"] == "15550000"
    assert [x["type"] for x in cdr["path"]][:1] == ["flow"] and cdr["queue"] is None


async def test_a_customer_first_call_still_ringing_is_hung_up_at_once(voice_node, api, tmp_path):
    # Nobody answers the customer's phone: a supervisor's hangup CANCELs the dial now (RFC
    # 3261 §9.1) instead of after the 45 s ring time, and the record says who ended it.
    carrier = SippAgentPhone(tmp_path / "carrier", scenario="agent_no_answer.xml").start()
    try:
        api.post("/trunks", {"name": "carrier", "host": "127.0.0.1", "port": carrier.port})
        out = api.post("/calls", {"to": "15550000", "queue": "support"})
        cid = out["contact_id"]
        await wait_until(
            lambda: any(c["contact_id"] == cid and c["state"] == "dialing" for c in api.live()),
            10,
        )
        await asyncio.sleep(1)  # the 180 Ringing is in
        started = asyncio.get_running_loop().time()
        api.post(f"/contacts/{cid}/hangup", None)
        assert asyncio.get_running_loop().time() - started < 5
        assert not any(c["contact_id"] == cid for c in api.live())
        assert carrier.proc is not None
        # SIPp's scenario passes only if the CANCEL came (then 200, 487, our ACK)
        assert await asyncio.to_thread(carrier.proc.wait, 10) == 0, carrier.errors()
    finally:
        carrier.stop()
    cdr = wait_until_cdr(api, lambda c: c["id"] == cid and c["state"] == "ended")
    assert cdr["disposition"] == "released" and cdr["end_cause"] == "supervisor_release"
    assert cdr["legs"][0]["end_cause"] == "cancelled"


async def test_an_agent_calls_out_from_its_phone_through_the_trunk(voice_node, api, tmp_path):
    async with phones(api, voice_node, tmp_path, ("1001",)) as p:
        carrier = await _carrier(tmp_path, api, "15557777")
        try:
            await p["1001"].dial(f"sip:15557777@127.0.0.1:{voice_node.sip_port}")
            await wait_until(lambda: any(c["state"] == "connected" for c in api.live()), 15)
            await asyncio.sleep(2)
            assert level(carrier.heard_since(1.5), TONES["1001"]) > HEARD
            assert hears(p["1001"], "caller") > HEARD
            status = api.get(f"/agents/{api.agents['1001']['id']}/status")
            assert status["contacts"], "the ACD knows the agent is on a call"
            await p["1001"].hangup()
            await wait_until(lambda: not api.live(), 10)
        finally:
            await carrier.stop()
    cdr = wait_until_cdr(api, lambda c: c["state"] in ("ended", "wrapup"))
    assert cdr["direction"] == "outbound" and cdr["customer"] == "15557777"
    assert cdr["end_cause"] == "agent_hangup"


async def test_an_agent_calls_a_colleague_by_extension(voice_node, api, tmp_path):
    async with phones(api, voice_node, tmp_path, ("1001", "1002")) as p:
        await p["1001"].dial(f"sip:1002@127.0.0.1:{voice_node.sip_port}")
        await wait_until(lambda: any(c["state"] == "connected" for c in api.live()), 15)
        await asyncio.sleep(2)
        assert hears(p["1002"], "1001") > HEARD and hears(p["1001"], "1002") > HEARD
        await p["1002"].hangup()
        await wait_until(lambda: not api.live(), 10)


async def test_a_spoken_menu_answer_chooses_the_queue(voice_node, api, tmp_path):
    speech = tmp_path / "say-sales.wav"
    raw = tmp_path / "sales16k.wav"
    subprocess.run(["flite", "-voice", "slt", "-t", "sales", "-o", str(raw)], check=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(speech)], check=True)
    word, _, _ = read_wav(speech)
    # Silence through the greeting and the start of the menu, then the word, then silence.
    mic = np.concatenate([np.zeros(8000 * 6, np.int16), word[:, 0], np.zeros(8000 * 20, np.int16)])
    write_wav(speech, mic)
    phone = SippAgentPhone(tmp_path / "agent").start()
    caller = await Baresip(tmp_path / "caller", user="customer", audio=speech).start()
    try:
        api.login("1001", phone.uri)
        await caller.dial(f"sip:4000@127.0.0.1:{voice_node.sip_port}")
        await wait_until(lambda: any(c["state"] == "connected" for c in api.live()), 25)
        await hang_up(api, caller)
    finally:
        await caller.stop()
        phone.stop()
    cdr = wait_until_cdr(api, lambda c: c["state"] in ("ended", "wrapup"))
    assert cdr["attributes"]["choice"] == "sales" and cdr["queue"] == "sales"


def _answered_into_wrapup(voice_node, api, tmp_path, talk_ms: int) -> dict:
    """Agent 1001 answers a caller on a SIPp phone; the record once it is in wrap-up."""
    phone = SippAgentPhone(tmp_path / "agent").start()
    try:
        api.login("1001", phone.uri)
        result = sipp_call(tmp_path / "caller", voice_node.sip_port, talk_ms=talk_ms)
        assert result.returncode == 0, result.stdout[-2000:]
    finally:
        phone.stop()
    return wait_until_cdr(api, lambda c: c["state"] == "wrapup")


def test_wrapup_with_a_disposition_code_ends_the_after_call_work(voice_node, api, tmp_path):
    cdr = _answered_into_wrapup(voice_node, api, tmp_path, talk_ms=3000)
    agent_id = api.agents["1001"]["id"]
    assert api.get(f"/agents/{agent_id}/status")["state"] == "wrap_up"
    api.post(f"/contacts/{cdr['id']}/wrapup", {"code": "sale", "notes": "upgraded plan"})
    cdr = wait_until_cdr(api, lambda c: c["state"] == "ended")
    assert cdr["wrapup_code"] == "sale" and cdr["wrapup_notes"] == "upgraded plan"
    assert cdr["wrapup_seconds"] > 0
    assert api.get(f"/agents/{agent_id}/status")["state"] == "ready"


def test_wrapup_not_done_keeps_the_agent_in_wrap_up(voice_node, api, tmp_path):
    # A long after-call work: the agent's "done" ends it, its code alone does not.
    for queue in ("support", "sales"):
        api.patch(f"/queues/{api.queue_id(queue)}", {"wrapup_seconds": 600})
    cdr = _answered_into_wrapup(voice_node, api, tmp_path, talk_ms=2000)
    agent_id = api.agents["1001"]["id"]
    api.post(f"/contacts/{cdr['id']}/wrapup", {"code": "sale", "done": False})
    time.sleep(1.5)
    assert api.get(f"/agents/{agent_id}/status")["state"] == "wrap_up"
    assert api.contacts()[0]["state"] == "wrapup"
    api.post(f"/contacts/{cdr['id']}/wrapup", {"notes": "call back Friday", "done": True})
    cdr = wait_until_cdr(api, lambda c: c["state"] == "ended")
    assert cdr["wrapup_code"] == "sale" and cdr["wrapup_notes"] == "call back Friday"
    assert api.get(f"/agents/{agent_id}/status")["state"] == "ready"


async def test_a_caller_tired_of_waiting_is_called_back_when_an_agent_is_free(
    voice_node, api, tmp_path
):
    """Queue treatment after max wait: callback. The caller leaves; the callback keeps its
    place; when an agent signs in its phone rings first, then the customer's number."""
    qid = api.queue_id("support")
    api.patch(
        f"/queues/{qid}",
        {"max_wait_seconds": 10, "overflow": {"wait_timeout": {"action": "callback"}}},
    )
    async with phones(api, voice_node, tmp_path, ("1001",)) as p:
        carrier = await _carrier(tmp_path, api, "15559999")
        try:
            caller = await Baresip(tmp_path / "waiting", user="15559999", tone_hz=1000).start()
            try:
                await caller.dial(f"sip:4000@127.0.0.1:{voice_node.sip_port}")
                await wait_until(lambda: any(c["state"] == "ivr" for c in api.live()), 10)
                await asyncio.sleep(3.5)
                await caller.send_dtmf("2")
                first = await wait_until(
                    lambda: [c for c in api.live() if c["state"] == "queued"], 10
                )
                # After 10 s the caller is told it will be called back, and released.
                await wait_until(
                    lambda: (
                        not [c for c in api.live() if c["contact_id"] == first[0]["contact_id"]]
                    ),
                    30,
                )
            finally:
                await caller.stop()
            waiting = await wait_until(
                lambda: [c for c in api.live() if c["direction"] == "outbound"], 10
            )
            assert waiting[0]["state"] == "queued" and waiting[0]["customer"] == "15559999"
            api.login("1001")
            await wait_until(
                lambda: any(
                    c["direction"] == "outbound" and c["state"] == "connected" for c in api.live()
                ),
                25,
            )
            await asyncio.sleep(2)
            assert level(carrier.heard_since(1.5), TONES["1001"]) > HEARD
            assert hears(p["1001"], "caller") > HEARD
            await hang_up(api, carrier)
        finally:
            await carrier.stop()

    # The records are written as the contacts finish (the callback's after the recording
    # is closed): wait for both.
    def both_written():  # type: ignore[no-untyped-def]
        records = api.contacts()
        done = [c for c in records if c["state"] in ("wrapup", "ended") and c["disposition"]]
        return records if len(records) == 2 and len(done) == 2 else None

    records = await wait_until(both_written, 10)
    callback = next(c for c in records if c["direction"] == "outbound")
    original = next(c for c in records if c["direction"] == "inbound")
    assert original["disposition"] == "callback" and original["attributes"]
    assert callback["attributes"]["origin_contact"] == original["id"]
    assert (
        callback["disposition"] == "answered" and callback["agent_id"] == api.agents["1001"]["id"]
    )
