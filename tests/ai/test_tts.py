"""Real synthesis with espeak-ng and flite: telephony format, speech-like audio, disk cache."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from cloudcc.ai.audio import TELEPHONY_RATE, Audio, read_wav
from cloudcc.ai.exceptions import (
    TTSEngineError,
    TTSError,
    UnknownEngineError,
    UnsupportedVoiceError,
)
from cloudcc.ai.tts import (
    CachedTextToSpeech,
    EspeakNg,
    Flite,
    TextToSpeech,
    create_tts,
    register_tts,
)

GREETING = "Thank you for calling. For sales, press one."


def band_share(audio: Audio, low: float, high: float) -> float:
    """Fraction of spectral energy between ``low`` and ``high`` Hz (DC removed)."""
    x = audio.samples.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x - x.mean())) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / audio.rate)
    band = (freqs >= low) & (freqs <= high)
    return float(spectrum[band].sum() / spectrum.sum())


def envelope_variation(audio: Audio) -> float:
    """Coefficient of variation of 20 ms frame energies: speech comes in syllables, tones do not."""
    n = audio.rate // 50
    frames = audio.samples[: len(audio.samples) // n * n].astype(np.float64).reshape(-1, n)
    energy = np.sqrt((frames**2).mean(axis=1))
    return float(energy.std() / energy.mean())


def assert_speech_like(audio: Audio, min_seconds: float, max_seconds: float) -> None:
    assert audio.rate == TELEPHONY_RATE and audio.samples.dtype == np.int16
    assert min_seconds < audio.duration < max_seconds
    assert audio.rms() > 500  # not silence
    assert band_share(audio, 80, 3400) > 0.9  # voice fundamental up to the telephone band edge
    assert band_share(audio, 300, 3400) > 0.1  # formants, not a hum
    assert envelope_variation(audio) > 0.5
    assert np.abs(audio.samples).max() < 32767  # not clipped flat


async def test_espeak_renders_english_telephony_speech() -> None:
    audio = await EspeakNg().synthesize(GREETING, language="en-US")
    assert_speech_like(audio, 1.5, 6.0)


async def test_espeak_renders_mandarin_with_the_pinyin_voice() -> None:
    engine = EspeakNg()
    assert engine.voice_for("zh-CN") == "cmn-latn-pinyin"
    audio = await engine.synthesize("欢迎致电, ni3 hao3", language="zh-CN")
    assert_speech_like(audio, 0.8, 6.0)


async def test_flite_renders_and_rate_changes_duration() -> None:
    engine = Flite()
    normal = await engine.synthesize(GREETING)
    slow = await engine.synthesize(GREETING, rate=110)
    assert_speech_like(normal, 1.5, 6.0)
    assert slow.duration > normal.duration * 1.3


async def test_second_request_is_a_cache_hit_from_disk(tmp_path: Path) -> None:
    cached = CachedTextToSpeech(EspeakNg(), tmp_path)
    first = await cached.synthesize(GREETING)
    assert (cached.hits, cached.misses) == (0, 1)
    files = list(tmp_path.rglob("*.wav"))
    assert len(files) == 1 and read_wav(files[0].read_bytes()).rate == 8000
    again = await CachedTextToSpeech(EspeakNg(), tmp_path).synthesize(GREETING)  # a new process
    assert np.array_equal(first.samples, again.samples)
    second = await cached.synthesize("  Thank you for calling.   For sales, press one. ")
    assert (cached.hits, cached.misses) == (1, 1)  # whitespace does not change the prompt
    await cached.synthesize(GREETING, rate=200)
    await cached.synthesize(GREETING, language="en-GB")
    assert cached.misses == 3 and np.array_equal(second.samples, first.samples)


async def test_concurrent_requests_for_one_prompt_render_once(tmp_path: Path) -> None:
    cached = CachedTextToSpeech(Flite(), tmp_path)
    results = await asyncio.gather(*[cached.synthesize("Please hold.") for _ in range(8)])
    assert cached.misses == 1 and cached.hits == 7
    assert all(np.array_equal(r.samples, results[0].samples) for r in results)


async def test_damaged_cache_entry_is_rendered_again(tmp_path: Path) -> None:
    cached = CachedTextToSpeech(EspeakNg(), tmp_path)
    await cached.synthesize("Goodbye")
    (path,) = list(tmp_path.rglob("*.wav"))
    path.write_bytes(b"garbage")
    audio = await cached.synthesize("Goodbye")
    assert audio.rms() > 500 and cached.misses == 2


async def test_bad_requests_raise_specific_errors() -> None:
    with pytest.raises(TTSError, match="empty"):
        await EspeakNg().synthesize("   ")
    with pytest.raises(UnsupportedVoiceError):
        await Flite().synthesize("hello", language="zh-CN")
    with pytest.raises(TTSEngineError, match="not installed"):
        await EspeakNg(program="espeak-ng-missing").synthesize("hello")
    with pytest.raises(UnsupportedVoiceError):
        await EspeakNg().synthesize("hello", voice="no-such-voice")
    with pytest.raises(TTSEngineError) as info:
        await EspeakNg(program="false").synthesize("hello")
    assert info.value.engine == "espeak-ng" and info.value.returncode == 1


async def test_engines_are_built_from_configuration(tmp_path: Path) -> None:
    engine = create_tts({"engine": "flite", "cache_dir": str(tmp_path)})
    assert isinstance(engine, CachedTextToSpeech) and isinstance(engine.engine, Flite)
    assert isinstance(create_tts({"engine": "cloudcc.ai.tts:EspeakNg"}), EspeakNg)
    with pytest.raises(UnknownEngineError):
        create_tts({"engine": "polly"})

    class Louder(EspeakNg):
        name = "espeak-louder"

        async def render(self, text: str, voice: str, rate: int) -> Audio:
            audio = await super().render(text, voice, rate)
            return Audio((audio.samples // 2 * 2).astype(np.int16), audio.rate)

    register_tts("louder", Louder)
    built: TextToSpeech = create_tts({"engine": "louder"})
    assert (await built.synthesize("hello")).rms() > 500
