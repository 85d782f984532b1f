"""The demo flow's menu answered by real speech: flow → Collect → grammar → ASR → flow input."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pytest

from cloudcc.ai.asr import FRAME_SAMPLES, Pocketsphinx, grammar_for, to_flow_input
from cloudcc.ai.tts import EspeakNg, Flite
from cloudcc.ivr import (
    Collect,
    ContactContext,
    FlowSession,
    NoInput,
    Play,
    PlaybackDone,
    RouteToQueue,
    SpeechRecognized,
)
from cloudcc.ivr.flows import demo_flow
from cloudcc.media.g711 import ulaw_decode, ulaw_encode

OPEN = datetime(2026, 12, 1, 10, 0, tzinfo=UTC).timestamp()


@pytest.fixture(scope="module")
def engine() -> Iterator[Pocketsphinx]:
    recognizer = Pocketsphinx()
    yield recognizer
    recognizer.shutdown()


async def caller_says(engine: Pocketsphinx, collect: Collect, word: str | None) -> object:
    grammar = grammar_for(collect.grammar, collect.digits_grammar, collect.max_digits)
    assert grammar is not None
    rng = np.random.default_rng(1)
    line_noise = rng.normal(0, 20, 8000).astype(np.int16)
    speech = np.zeros(0, dtype=np.int16)
    if word is not None:
        speech = ulaw_decode(ulaw_encode((await Flite().synthesize(word, voice="awb")).samples))
    audio = np.concatenate([line_noise, speech, line_noise, line_noise])
    session = engine.session(grammar)
    for start in range(0, len(audio), FRAME_SAMPLES):
        result = await session.feed(audio[start : start + FRAME_SAMPLES])
        if result is not None:
            return to_flow_input(result)
    return to_flow_input(await session.finish())


async def test_prompts_render_and_spoken_choice_routes_the_call(engine: Pocketsphinx) -> None:
    tts = EspeakNg()
    for word, queue in [("sales", "sales"), ("agent", "support")]:
        session = FlowSession(demo_flow(), ContactContext("demo", "call-1", dialed="4000"), OPEN)
        out = session.start(OPEN)
        greeting = next(o for o in out if isinstance(o, Play))
        audio = await tts.synthesize(greeting.text or "", language=greeting.language)
        assert audio.duration > 1.0 and audio.rms() > 500
        out = session.on_input(PlaybackDone(greeting.play_id), OPEN + audio.duration)
        collect = next(o for o in out if isinstance(o, Collect))
        flow_input = await caller_says(engine, collect, word)
        assert isinstance(flow_input, SpeechRecognized) and flow_input.text == word
        out = session.on_input(flow_input, OPEN + 10)
        assert next(o for o in out if isinstance(o, RouteToQueue)).queue == queue


async def test_silent_caller_becomes_no_input(engine: Pocketsphinx) -> None:
    session = FlowSession(demo_flow(), ContactContext("demo", "call-2"), OPEN)
    out = session.start(OPEN)
    out = session.on_input(
        PlaybackDone(next(o for o in out if isinstance(o, Play)).play_id), OPEN + 3
    )
    collect = next(o for o in out if isinstance(o, Collect))
    assert isinstance(await caller_says(engine, collect, None), NoInput)
