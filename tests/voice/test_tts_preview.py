"""The admin's text-to-speech preview speaks the text, in the language asked, with the voice
callers hear (POST /tts-preview on a node that runs the voice service)."""

from __future__ import annotations

import io
import wave

import httpx
import numpy as np

from tests.voice.conftest import Api


def _speak(api: Api, body: dict[str, str]) -> np.ndarray:
    r = httpx.post(api.base + "/tts-preview", json=body, headers=api.headers, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(r.content)) as w:
        assert (w.getframerate(), w.getnchannels()) == (8000, 1)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def test_the_preview_speaks_the_text_in_the_language_asked(voice_node, api):
    short = _speak(api, {"text": "Hello."})
    long = _speak(api, {"text": "Hello. Thank you for calling. All our agents are busy."})
    assert len(long) > 2 * len(short)  # the text is what is spoken
    assert np.abs(short).max() > 1000  # and it is speech, not silence
    english = _speak(api, {"text": "12345", "language": "en"})
    chinese = _speak(api, {"text": "12345", "language": "zh-CN"})
    assert len(english) != len(chinese) or not np.array_equal(english, chinese)
    r = httpx.post(api.base + "/tts-preview", json={"text": ""}, headers=api.headers)
    assert r.status_code == 422
