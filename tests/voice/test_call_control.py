"""Agent call control through the API, each checked by what every party hears.

Every party is a baresip phone playing its own tone (caller 1000 Hz, agent 1001 1500 Hz,
agent 1002 2000 Hz, supervisor 2500 Hz); what a phone hears is analysed by FFT.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.voice.peers import Baresip, level, wait_until
from tests.voice.test_inbound import wait_until_cdr

pytestmark = [pytest.mark.peer, pytest.mark.slow]

TONES = {"caller": 1000, "1001": 1500, "1002": 2000, "1003": 2500}
HEARD = -32  # dBFS: a party's tone is clearly there
SILENT = -45  # dBFS: it is not


@asynccontextmanager
async def phones(
    api, node, tmp: Path, agents: tuple[str, ...]
) -> AsyncIterator[dict[str, Baresip]]:
    out: dict[str, Baresip] = {}
    try:
        for ext in agents:
            out[ext] = await Baresip(
                tmp / ext,
                user=ext,
                password=api.passwords[ext],
                registrar_port=node.sip_port,
                tone_hz=TONES[ext],
            ).start()
        out["caller"] = await Baresip(
            tmp / "caller", user="customer", tone_hz=TONES["caller"]
        ).start()
        for ext in agents:
            await wait_until(lambda e=ext: "200 OK" in out[e].output(), 10)
        await asyncio.sleep(0.3)
        yield out
    finally:
        for phone in out.values():
            await phone.stop()


async def connect_caller(api, node, p: dict[str, Baresip], key: str = "2") -> str:
    """The caller dials 4000 and picks an option; returns the contact id once connected."""
    await p["caller"].dial(f"sip:4000@127.0.0.1:{node.sip_port}")
    await wait_until(lambda: any(c["state"] == "ivr" for c in api.live()), 10)
    await asyncio.sleep(3.5)
    await p["caller"].send_dtmf(key)
    live = await wait_until(lambda: [c for c in api.live() if c["state"] == "connected"], 15)
    return str(live[0]["contact_id"])


async def hang_up(api, caller: Baresip) -> None:
    """The caller hangs up; wait until the node saw the BYE (before the phone is killed)."""
    await caller.hangup()
    await wait_until(lambda: not any(c["state"] == "connected" for c in api.live()), 10)


def hears(phone: Baresip, party: str, seconds: float = 1.5) -> float:
    return level(phone.heard_since(seconds), TONES[party])


async def test_hold_plays_music_to_the_customer_and_silence_to_the_agent(voice_node, api, tmp_path):
    async with phones(api, voice_node, tmp_path, ("1001",)) as p:
        api.login("1001")
        cid = await connect_caller(api, voice_node, p)
        await asyncio.sleep(2)
        assert hears(p["caller"], "1001") > HEARD
        api.post(f"/contacts/{cid}/hold")
        await asyncio.sleep(2.5)
        caller_heard = p["caller"].heard_since(1.5)
        assert level(caller_heard, TONES["1001"]) < SILENT, "the held customer hears no agent"
        from cloudcc.media.testing import rms_dbfs

        assert rms_dbfs(caller_heard) > -40, "the held customer hears music"
        assert hears(p["1001"], "caller") < SILENT, "the agent hears nothing of the held party"
        api.post(f"/contacts/{cid}/unhold")
        await asyncio.sleep(2)
        assert hears(p["caller"], "1001") > HEARD
        assert hears(p["1001"], "caller") > HEARD
        await hang_up(api, p["caller"])
    cdr = wait_until_cdr(api, lambda c: c["disposition"] == "answered")
    assert 2 < cdr["hold_seconds"] < 4.5, cdr
    assert cdr["legs"][0]["hold_count"] == 1


async def test_hold_plays_the_queues_own_music_on_hold(voice_node, api, tmp_path):
    import httpx

    from tests.api.test_prompts import wav_bytes

    r = httpx.put(
        f"{api.base}/prompts/hold-tone",
        content=wav_bytes(8000, 1, 2.0, freq=700),
        headers={**api.headers, "content-type": "audio/wav"},
    )
    assert r.status_code == 200, r.text
    api.patch(
        f"/queues/{api.queue_id('support')}",
        {"music_on_hold": "hold-tone", "announce_position": False},
    )
    async with phones(api, voice_node, tmp_path, ("1001",)) as p:
        api.login("1001")
        cid = await connect_caller(api, voice_node, p)  # key 2: the support queue
        await asyncio.sleep(1.5)
        assert level(p["caller"].heard_since(1.0), 700) < SILENT  # talking: no music
        api.post(f"/contacts/{cid}/hold")
        await asyncio.sleep(2.0)
        assert level(p["caller"].heard_since(1.5), 700) > HEARD, "the queue's music, on hold"
        api.post(f"/contacts/{cid}/unhold")
        await asyncio.sleep(1.5)
        assert level(p["caller"].heard_since(1.0), 700) < SILENT
        await hang_up(api, p["caller"])


async def test_mute_and_dtmf_to_the_customer(voice_node, api, tmp_path):
    async with phones(api, voice_node, tmp_path, ("1001",)) as p:
        api.login("1001")
        cid = await connect_caller(api, voice_node, p)
        await asyncio.sleep(1.5)
        api.post(f"/contacts/{cid}/mute")
        await asyncio.sleep(1.5)
        assert hears(p["caller"], "1001", 1.0) < SILENT
        assert hears(p["1001"], "caller", 1.0) > HEARD  # a muted agent still hears
        api.post(f"/contacts/{cid}/unmute")
        api.post(f"/contacts/{cid}/dtmf", {"digits": "5#"})
        await wait_until(
            lambda: (
                "received event: '5'" in p["caller"].output()
                or "received event: '#'" in p["caller"].output()
            ),
            5,
        )
        await hang_up(api, p["caller"])


async def test_blind_transfer_to_another_agent(voice_node, api, tmp_path):
    async with phones(api, voice_node, tmp_path, ("1001", "1002")) as p:
        api.login("1001")
        cid = await connect_caller(api, voice_node, p)
        await asyncio.sleep(1.5)
        api.post(f"/contacts/{cid}/transfer", {"target_type": "agent", "target": "1002"})
        await wait_until(
            lambda: [
                c
                for c in api.live()
                if c["state"] == "connected" and c["agent_id"] == api.agents["1002"]["id"]
            ],
            15,
        )
        await asyncio.sleep(2)
        assert hears(p["caller"], "1002") > HEARD
        assert hears(p["caller"], "1001") < SILENT
        assert hears(p["1002"], "caller") > HEARD
        await hang_up(api, p["caller"])
    cdr = wait_until_cdr(
        api,
        lambda c: c["state"] in ("ended", "wrapup") and c["agent_id"] == api.agents["1002"]["id"],
    )
    (transfer,) = cdr["transfers"]
    assert transfer["kind"] == "blind" and transfer["to"] == "1002"
    assert transfer["from_agent"] == api.agents["1001"]["id"]
    assert [p_["type"] for p_ in cdr["path"]] == ["flow", "queue", "agent", "agent"]


async def test_consultative_transfer_then_complete(voice_node, api, tmp_path):
    async with phones(api, voice_node, tmp_path, ("1001", "1002")) as p:
        api.login("1001")
        cid = await connect_caller(api, voice_node, p)
        await asyncio.sleep(1)
        api.post(f"/contacts/{cid}/consult", {"target_type": "agent", "target": "1002"})
        await asyncio.sleep(2)
        assert hears(p["1001"], "1002") > HEARD, "the agent talks to the consulted agent"
        assert hears(p["1002"], "1001") > HEARD
        assert hears(p["1002"], "caller") < SILENT, "the customer is not in the consultation"
        assert hears(p["caller"], "1001") < SILENT and hears(p["caller"], "1002") < SILENT
        api.post(f"/contacts/{cid}/complete-transfer")
        await asyncio.sleep(2)
        assert hears(p["caller"], "1002") > HEARD
        assert hears(p["1002"], "caller") > HEARD
        await hang_up(api, p["caller"])
    cdr = wait_until_cdr(
        api,
        lambda c: c["state"] in ("ended", "wrapup") and c["agent_id"] == api.agents["1002"]["id"],
    )
    assert cdr["transfers"][-1]["kind"] == "consultative"
    roles = [leg["role"] for leg in cdr["legs"]]
    assert roles == ["customer", "agent", "consult"]


async def test_three_way_conference_and_the_agent_leaving_it(voice_node, api, tmp_path):
    async with phones(api, voice_node, tmp_path, ("1001", "1002")) as p:
        api.login("1001")
        cid = await connect_caller(api, voice_node, p)
        api.post(f"/contacts/{cid}/consult", {"target_type": "agent", "target": "1002"})
        api.post(f"/contacts/{cid}/conference")
        await asyncio.sleep(2.5)
        for listener, others in (
            ("caller", ("1001", "1002")),
            ("1001", ("caller", "1002")),
            ("1002", ("caller", "1001")),
        ):
            for other in others:
                assert hears(p[listener], other) > HEARD, (listener, other)
            assert hears(p[listener], listener) < SILENT, f"{listener} hears itself"
        api.post(f"/contacts/{cid}/leave-conference")
        await asyncio.sleep(2)
        assert hears(p["caller"], "1002") > HEARD and hears(p["caller"], "1001") < SILENT
        assert hears(p["1002"], "caller") > HEARD
        await hang_up(api, p["caller"])


async def test_supervisor_listens_whispers_and_barges(voice_node, api, tmp_path):
    async with phones(api, voice_node, tmp_path, ("1001", "1003")) as p:
        api.login("1001")
        cid = await connect_caller(api, voice_node, p)
        supervisor = p["1003"].uri
        api.post(f"/contacts/{cid}/monitor", {"mode": "listen", "device": supervisor})
        await asyncio.sleep(2.5)
        assert hears(p["1003"], "caller") > HEARD and hears(p["1003"], "1001") > HEARD
        assert hears(p["caller"], "1003") < SILENT and hears(p["1001"], "1003") < SILENT
        api.post(f"/contacts/{cid}/monitor", {"mode": "whisper", "device": supervisor})
        await asyncio.sleep(2)
        assert hears(p["1001"], "1003") > HEARD, "the agent hears the coach"
        assert hears(p["caller"], "1003") < SILENT, "the customer does not"
        api.post(f"/contacts/{cid}/monitor", {"mode": "barge", "device": supervisor})
        await asyncio.sleep(2)
        assert hears(p["caller"], "1003") > HEARD and hears(p["1001"], "1003") > HEARD
        api.post(f"/contacts/{cid}/intercept")
        await asyncio.sleep(2)
        assert hears(p["caller"], "1003") > HEARD and hears(p["caller"], "1001") < SILENT
        await hang_up(api, p["caller"])
    cdr = wait_until_cdr(api, lambda c: c["state"] in ("ended", "wrapup"))
    assert cdr["transfers"][-1]["kind"] == "intercept"
    assert [leg["role"] for leg in cdr["legs"]] == ["customer", "agent", "supervisor"]


async def test_the_agent_phone_holds_and_transfers_with_its_own_buttons(voice_node, api, tmp_path):
    """Hold from the phone (re-INVITE sendonly) and a transfer by REFER, as desk phones do."""
    async with phones(api, voice_node, tmp_path, ("1001", "1002")) as p:
        api.login("1001")
        cid = await connect_caller(api, voice_node, p)
        await asyncio.sleep(1.5)
        reply = await p["1001"].command("hold")
        assert reply.get("ok"), reply
        await asyncio.sleep(2.5)
        from cloudcc.media.testing import rms_dbfs

        held = p["caller"].heard_since(1.5)
        assert level(held, TONES["1001"]) < SILENT and rms_dbfs(held) > -40, "music, no agent"
        reply = await p["1001"].command("resume")
        assert reply.get("ok"), reply
        await asyncio.sleep(2)
        assert hears(p["caller"], "1001") > HEARD
        reply = await p["1001"].command("transfer", f"sip:1002@127.0.0.1:{voice_node.sip_port}")
        assert reply.get("ok"), reply
        await wait_until(
            lambda: [
                c
                for c in api.live()
                if c["contact_id"] == cid
                and c["agent_id"] == api.agents["1002"]["id"]
                and c["state"] == "connected"
            ],
            15,
        )
        await asyncio.sleep(2)
        assert hears(p["caller"], "1002") > HEARD
        await hang_up(api, p["caller"])
    cdr = wait_until_cdr(api, lambda c: c["id"] == cid and c["state"] in ("ended", "wrapup"))
    assert cdr["legs"][0]["hold_count"] == 1
    assert cdr["transfers"][0]["kind"] == "blind" and cdr["transfers"][0]["to"] == "1002"
