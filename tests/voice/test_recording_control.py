"""Recording control on a live call: what is said while paused is left out of the recording
(its clock skips the pause), a resumed recording takes both parties in again, and a stopped one
ends before the call does. Checked in the downloaded WAV by its length and each party's tone
(caller 1000 Hz left, agent 1500 Hz right)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.voice.peers import level, read_wav
from tests.voice.test_call_control import HEARD, TONES, connect_caller, hang_up, phones
from tests.voice.test_inbound import _download, wait_until_cdr

pytestmark = [pytest.mark.peer, pytest.mark.slow]

WINDOW = 4000  # samples: half a second at 8 kHz


def _heard_share(pcm: np.ndarray, channel: int, tone: int) -> float:
    """The share of half seconds of one channel in which the party's tone is heard."""
    count = len(pcm) // WINDOW
    heard = [level(pcm[i * WINDOW : (i + 1) * WINDOW, channel], tone) > HEARD for i in range(count)]
    return sum(heard) / max(count, 1)


async def test_a_paused_recording_leaves_out_the_pause(voice_node, api, tmp_path):
    async with phones(api, voice_node, tmp_path, ("1001",)) as p:
        api.login("1001")
        cid = await connect_caller(api, voice_node, p)
        await asyncio.sleep(2)
        assert api.post(f"/contacts/{cid}/record", {"action": "pause"})["recording"] == "paused"
        await asyncio.sleep(3)
        out = api.post(f"/contacts/{cid}/record", {"action": "resume"})
        assert out["recording"] == "recording"
        await asyncio.sleep(2)
        assert api.post(f"/contacts/{cid}/record", {"action": "stop"})["recording"] == "stopped"
        await asyncio.sleep(3)
        await hang_up(api, p["caller"])
    cdr = wait_until_cdr(api, lambda c: c["disposition"] == "answered")
    (rid,) = cdr["recordings"]
    pcm, rate, channels = read_wav(_download(api, rid, tmp_path / "rec.wav"))
    assert (rate, channels) == (8000, 2)
    # Recorded: 2 s before the pause and 2 s after the resume; left out: the 3 s paused
    # (the recording clock skips it) and the 3 s after the stop.
    seconds = len(pcm) / rate
    assert 3 <= seconds < cdr["talk_seconds"] - 5, (seconds, cdr["talk_seconds"])
    # What was recorded is the call, both parties throughout.
    for channel, party in ((0, "caller"), (1, "1001")):
        assert _heard_share(pcm, channel, TONES[party]) > 0.7, party
