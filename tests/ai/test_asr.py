"""pocketsphinx recognition of flite speech sent down a phone line (8 kHz, G.711 µ-law)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import numpy as np
import pytest

from cloudcc.ai.asr import (
    FRAME_SAMPLES,
    Grammar,
    Pocketsphinx,
    Recognition,
    RecognitionStatus,
    SpeechRecognizer,
    create_recognizer,
    grammar_for,
    register_recognizer,
)
from cloudcc.ai.audio import PCM
from cloudcc.ai.exceptions import GrammarError, RecognitionSessionError, UnknownEngineError
from cloudcc.ai.tts import Flite
from cloudcc.media.g711 import ulaw_decode, ulaw_encode

MENU = Grammar.keywords("sales", "support", "agent")
VOICES = ("slt", "awb", "rms", "kal")


@pytest.fixture(scope="module")
def engine() -> Iterator[Pocketsphinx]:
    recognizer = Pocketsphinx(workers=1)
    yield recognizer
    recognizer.shutdown()


async def phone_line(text: str, voice: str) -> PCM:
    """flite speech → 8 kHz → G.711 µ-law and back, with 0.4 s of line noise before it."""
    audio = await Flite().synthesize(text, voice=voice)
    return ulaw_decode(ulaw_encode(audio.samples))


def with_silence(speech: PCM, before: float = 0.4, after: float = 1.5) -> tuple[PCM, int]:
    """Speech framed by quiet line noise; returns the audio and the sample where speech ends."""
    rng = np.random.default_rng(7)
    lead = rng.normal(0, 20, int(before * 8000)).astype(np.int16)
    tail = rng.normal(0, 20, int(after * 8000)).astype(np.int16)
    loud = np.nonzero(np.abs(speech.astype(np.int32)) > 300)[0]
    end = len(lead) + int(loud[-1]) + 1
    return np.concatenate([lead, speech, tail]), end


async def stream(
    engine: SpeechRecognizer, audio: PCM, grammar: Grammar
) -> tuple[Recognition, int, float]:
    """Feed 20 ms frames like RTP; returns the result, samples fed, and the deciding call's time."""
    session = engine.session(grammar)
    for start in range(0, len(audio), FRAME_SAMPLES):
        began = time.perf_counter()
        result = await session.feed(audio[start : start + FRAME_SAMPLES])
        if result is not None:
            return result, start + FRAME_SAMPLES, time.perf_counter() - began
    began = time.perf_counter()
    return await session.finish(), len(audio), time.perf_counter() - began


async def test_menu_words_over_a_phone_line_are_recognised(engine: Pocketsphinx) -> None:
    await engine.warm_up()
    outcomes: dict[tuple[str, str], str | None] = {}
    latencies: list[float] = []
    for voice in VOICES:
        for word in ("sales", "support", "agent"):
            audio, speech_end = with_silence(await phone_line(word, voice))
            result, fed, decide_seconds = await stream(engine, audio, MENU)
            outcomes[(voice, word)] = result.text if result.matched else None
            # decision latency = audio fed after the speech ended + time of the deciding call
            latencies.append((fed - speech_end) / 8000 + decide_seconds)
    correct = sum(text == word for (_, word), text in outcomes.items())
    print(f"\nrecognised {correct}/12: {outcomes}")
    print(
        f"decision after end of speech: max {max(latencies):.3f} s, mean {np.mean(latencies):.3f} s"
    )
    assert correct >= 11, outcomes
    assert max(latencies) < 1.0


async def test_words_outside_the_grammar_are_mostly_rejected(engine: Pocketsphinx) -> None:
    rejected = 0
    for voice in VOICES:
        for word in ("billing", "weather"):
            audio, _ = with_silence(await phone_line(word, voice))
            result, _, _ = await stream(engine, audio, MENU)
            rejected += not result.matched
    assert rejected >= 6


async def test_silence_is_no_speech_and_noise_is_no_match(engine: Pocketsphinx) -> None:
    rng = np.random.default_rng(3)
    silence = rng.normal(0, 20, 3 * 8000).astype(np.int16)
    result, _, _ = await stream(engine, silence, MENU)
    assert result.status is RecognitionStatus.NO_SPEECH and result.text is None
    noise = rng.normal(0, 3000, 3 * 8000).astype(np.int16)
    result, _, _ = await stream(engine, noise, MENU)
    assert not result.matched


async def test_spoken_digit_string_gives_digits(engine: Pocketsphinx) -> None:
    audio, _ = with_silence(await phone_line("four one five nine", "slt"))
    result, _, _ = await stream(engine, audio, Grammar.digit_string(3, 8))
    assert result.matched and result.digits == "4159", result


async def test_decoding_runs_off_the_event_loop(engine: Pocketsphinx) -> None:
    speech = await phone_line("one two three four five six seven eight nine", "awb")
    long_utterance = np.concatenate([speech] * 4)  # about 12 s of speech
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    began = time.perf_counter()
    result = await engine.recognize(long_utterance, Grammar.digit_string(1, 40))
    decode_wall = time.perf_counter() - began
    stop.set()
    await task
    assert result.text is not None
    # had the decoder run on the loop, one gap would be as long as the whole decode
    assert decode_wall > 0.2
    assert max(gaps) < min(0.1, decode_wall / 4)


async def test_words_missing_from_the_dictionary_are_a_grammar_error(engine: Pocketsphinx) -> None:
    with pytest.raises(GrammarError, match="xyzzyq"):
        await engine.recognize(np.ones(8000, dtype=np.int16), Grammar.keywords("xyzzyq"))


def test_grammar_shapes_and_errors() -> None:
    assert (
        "sales | support | help desk"
        in Grammar.keywords("Sales", "support", "Help  Desk").to_jsgf()
    )
    digits = Grammar.digit_string(2, 3)
    assert "<digit>+" in digits.to_jsgf()
    assert digits.accepts("one two") and digits.accepts("nine oh nine")
    assert not digits.accepts("one") and not digits.accepts("one two three four")
    with pytest.raises(GrammarError):
        Grammar()
    with pytest.raises(GrammarError):
        Grammar.keywords("press 1")
    assert grammar_for((), False) is None
    assert grammar_for(("yes",), True, 4) == Grammar(("yes",), True, 1, 4)


async def test_session_refuses_audio_after_deciding(engine: Pocketsphinx) -> None:
    audio, _ = with_silence(await phone_line("agent", "slt"))
    session = engine.session(MENU)
    result = None
    for start in range(0, len(audio), FRAME_SAMPLES):
        result = await session.feed(audio[start : start + FRAME_SAMPLES].tobytes())
        if result:
            break
    assert result is not None and result.text == "agent"
    assert session.speech_started
    with pytest.raises(RecognitionSessionError):
        await session.feed(b"\x00\x00" * FRAME_SAMPLES)
    assert await session.finish() is result


async def test_finish_on_timeout_decodes_what_was_heard(engine: Pocketsphinx) -> None:
    speech = await phone_line("support", "rms")
    session = engine.session(MENU)
    await session.feed(
        np.concatenate([np.zeros(1600, dtype=np.int16), speech])
    )  # no trailing silence
    result = await session.finish()
    assert result.text == "support"


class KeywordSpotter(SpeechRecognizer):
    """A plug-in engine as a third party would write it (here: loudness means 'yes')."""

    name = "spotter"

    def __init__(self, threshold: float = 1000.0) -> None:
        self.threshold = threshold

    async def decode(self, pcm8k: PCM, grammar: Grammar) -> Recognition:
        level = float(np.sqrt(np.mean(pcm8k.astype(np.float64) ** 2))) if len(pcm8k) else 0.0
        if level < self.threshold or "yes" not in grammar.phrases:
            return Recognition(RecognitionStatus.NO_MATCH)
        return Recognition(RecognitionStatus.MATCH, "yes", 0.9)


async def test_engines_are_pluggable_by_configuration() -> None:
    register_recognizer("spotter", KeywordSpotter)
    spotter = create_recognizer({"engine": "spotter", "threshold": 500.0})
    assert isinstance(spotter, KeywordSpotter) and spotter.threshold == 500.0
    loud = (np.sin(np.arange(8000) / 3) * 8000).astype(np.int16)
    assert (await spotter.recognize(loud, Grammar.keywords("yes", "no"))).text == "yes"
    by_path = create_recognizer({"engine": "cloudcc.ai.asr:Pocketsphinx", "workers": 2})
    assert isinstance(by_path, Pocketsphinx) and by_path.workers == 2
    with pytest.raises(UnknownEngineError):
        create_recognizer({"engine": "vosk"})
