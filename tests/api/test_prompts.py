"""Uploaded audio prompts: converted to telephony audio, private to the tenant."""

from __future__ import annotations

import io
import wave

import numpy as np

from tests.api.helpers import demo_admin, login, new_tenant


def wav_bytes(rate: int, channels: int, seconds: float, freq: float = 440.0) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    mono = (8000 * np.sin(2 * np.pi * freq * t)).astype("<i2")
    frames = np.repeat(mono[:, None], channels, axis=1)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames.tobytes())
    return out.getvalue()


async def test_a_prompt_is_stored_as_8khz_mono_and_can_be_listed_and_deleted(client, node):
    admin = await demo_admin(client, node)
    r = await client.put(
        "/api/v1/prompts/welcome",
        content=wav_bytes(44100, 2, 2.0),
        headers={**admin, "content-type": "audio/wav"},
    )
    assert r.status_code == 200, r.text
    assert abs(r.json()["duration_seconds"] - 2.0) < 0.01
    listed = (await client.get("/api/v1/prompts", headers=admin)).json()
    assert [p["name"] for p in listed] == ["welcome"]
    audio = await client.get("/api/v1/prompts/welcome", headers=admin)
    with wave.open(io.BytesIO(audio.content)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert abs(w.getnframes() - 16000) < 10
    assert (await client.delete("/api/v1/prompts/welcome", headers=admin)).status_code == 204
    assert (await client.get("/api/v1/prompts/welcome", headers=admin)).status_code == 404
    log = (await client.get("/api/v1/audit-log?resource_type=prompt", headers=admin)).json()
    assert [e["action"] for e in log["items"]] == ["delete", "upload"]


async def test_bad_prompts_are_refused(client, node):
    admin = await demo_admin(client, node)
    r = await client.put(
        "/api/v1/prompts/noise",
        content=b"not a wav at all",
        headers={**admin, "content-type": "audio/wav"},
    )
    assert r.status_code == 422 and "WAV" in r.json()["detail"]
    r = await client.put(
        "/api/v1/prompts/..%2Fescape", content=wav_bytes(8000, 1, 0.1), headers=admin
    )
    assert r.status_code in (404, 422)
    big = wav_bytes(8000, 1, 0.1) + b"\0" * (21 * 1024 * 1024)
    r = await client.put("/api/v1/prompts/huge", content=big, headers=admin)
    assert r.status_code == 413


async def test_prompts_are_private_and_need_permission(client, node):
    admin = await demo_admin(client, node)
    await client.put("/api/v1/prompts/secret", content=wav_bytes(8000, 1, 0.5), headers=admin)
    other = await new_tenant(client, node, "promptrival")
    assert (await client.get("/api/v1/prompts", headers=other)).json() == []
    assert (await client.get("/api/v1/prompts/secret", headers=other)).status_code == 404
    assert (await client.delete("/api/v1/prompts/secret", headers=other)).status_code == 404
    agent = node.demo["agents"][0]
    as_agent = await login(client, "demo", agent["web_username"], agent["web_password"])
    r = await client.put("/api/v1/prompts/x", content=wav_bytes(8000, 1, 0.1), headers=as_agent)
    assert r.status_code == 403
