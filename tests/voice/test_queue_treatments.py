"""What a queue does with its callers, heard by a real caller: an overflow to an IVR flow,
the queue's own music on hold."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.api.test_prompts import wav_bytes
from tests.voice.peers import Baresip, level, read_wav, wait_until
from tests.voice.test_inbound import wait_until_cdr

pytestmark = [pytest.mark.peer, pytest.mark.slow]


def _prompt(api, name: str, freq: float, seconds: float) -> None:
    r = httpx.put(
        f"{api.base}/prompts/{name}",
        content=wav_bytes(16000, 1, seconds, freq=freq),
        headers={**api.headers, "content-type": "audio/wav"},
    )
    assert r.status_code == 200, r.text


def _chime_flow(api, flow_id: str, prompt: str, publish: bool = True) -> None:
    flow = api.post(
        "/flows",
        {
            "document": {
                "format": "cloudcc.flow/1",
                "id": flow_id,
                "name": flow_id,
                "start": "play",
                "nodes": [
                    {
                        "id": "play",
                        "type": "play",
                        "prompt": {"audio": prompt},
                        "outputs": {"next": "bye"},
                    },
                    {"id": "bye", "type": "hangup"},
                ],
            }
        },
    )
    if publish:
        api.post(f"/flows/{flow['id']}/publish", {})


async def _call_support(api, sip_port: int, caller: Baresip, queued_for: float) -> np.ndarray:
    """Dial the demo number, pick support (2), stay ``queued_for`` seconds; what was heard."""
    await caller.dial(f"sip:4000@127.0.0.1:{sip_port}")
    await wait_until(lambda: any(c["state"] == "ivr" for c in api.live()), 10)
    await asyncio.sleep(4)
    await caller.send_dtmf("2")
    await asyncio.sleep(queued_for)
    return caller.heard()


def test_overflow_to_a_flow_runs_the_flow_for_the_caller(voice_node, api, tmp_path):
    _prompt(api, "chime", 700, 3.0)
    _chime_flow(api, "goodbye", "chime")
    _chime_flow(api, "draft-only", "chime", publish=False)
    support = api.queue_id("support")
    for target in ("nope", "draft-only"):  # refused: the caller would be cut off
        r = httpx.patch(
            f"{api.base}/queues/{support}",
            json={"overflow": {"no_agents": {"action": "flow", "target": target}}},
            headers=api.headers,
        )
        assert r.status_code == 422 and "publish it first" in r.text, r.text
    api.patch(
        f"/queues/{support}", {"overflow": {"no_agents": {"action": "flow", "target": "goodbye"}}}
    )

    async def scenario() -> np.ndarray:
        caller = await Baresip(tmp_path / "caller", user="customer", tone_hz=1000).start()
        try:
            # Nobody is signed in: the queue sends the caller to the flow at once.
            await _call_support(api, voice_node.sip_port, caller, 0)
            await wait_until(lambda: api.contacts() and api.contacts()[0]["state"] == "ended", 15)
            return caller.heard()
        finally:
            await caller.stop()

    heard = asyncio.run(scenario())
    cdr = wait_until_cdr(api, lambda c: c["state"] == "ended")
    assert [p["type"] for p in cdr["path"]] == ["flow", "queue", "flow"], cdr["path"]
    assert cdr["path"][2]["name"] == "goodbye"
    assert cdr["end_cause"] == "system_hangup", cdr  # the flow's hangup, after its prompt
    tail = heard[-int(2.5 * 8000) :]
    assert level(tail, 700) > -35 and level(tail, 1000) < -45, "the caller hears the flow"


def _melody() -> np.ndarray:
    """A 3 s prompt no other sound in the product resembles: a rising tone sweep, 8 kHz."""
    t = np.arange(3 * 8000) / 8000
    freq = 300 + 400 * t  # 300 -> 1500 Hz
    return (8000 * np.sin(2 * np.pi * np.cumsum(freq) / 8000)).astype(np.int16)


def test_the_waiting_caller_hears_the_queues_own_music_on_hold(voice_node, api, tmp_path):
    from tests.voice.peers import write_wav
    from tests.voice.test_inbound import best_match

    melody = _melody()
    wav = write_wav(tmp_path / "melody.wav", melody)
    r = httpx.put(
        f"{api.base}/prompts/melody",
        content=wav.read_bytes(),
        headers={**api.headers, "content-type": "audio/wav"},
    )
    assert r.status_code == 200, r.text
    support = api.queue_id("support")
    r = httpx.patch(
        f"{api.base}/queues/{support}", json={"music_on_hold": "nope"}, headers=api.headers
    )
    assert r.status_code == 422 and "upload it first" in r.text, r.text
    api.patch(f"/queues/{support}", {"music_on_hold": "melody", "announce_position": False})

    async def scenario() -> np.ndarray:
        caller = await Baresip(tmp_path / "caller", user="customer", tone_hz=None).start()
        try:
            heard = await _call_support(api, voice_node.sip_port, caller, 8)
            assert any(c["state"] == "queued" for c in api.live())
            return heard
        finally:
            await caller.stop()

    heard = asyncio.run(scenario())
    waiting = heard[-6 * 8000 :]
    # The queue's prompt, looped (G.711 costs a little): a near-perfect match, and not
    # the built-in music.
    assert best_match(waiting, melody[8000:16000]) > 0.9
    tracks = sorted(Path("/usr/share/asterisk/moh").glob("*.wav"))
    assert tracks, "the built-in music is installed (asterisk-moh-opsound-wav)"
    builtin = [read_wav(t)[0][8000:16000, 0] for t in tracks]
    assert max(best_match(waiting, m) for m in builtin) < 0.5
