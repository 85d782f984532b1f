"""Speech recognition for IVR answers: grammars, end-of-speech detection, the pocketsphinx engine.

A ``RecognitionSession`` is fed 8 kHz int16 frames from the call. A WebRTC VAD (``webrtcvad``)
finds where speech starts and where it stops (``end_silence`` of non-speech); at that moment
the buffered utterance is resampled to 16 kHz (soxr) and decoded against a JSGF grammar in an
executor (a process pool by default), so the event loop that moves RTP never runs the decoder.

Confidence: pocketsphinx normalises acoustic scores per frame against the best senone, so the
mean log acoustic score per speech frame of the grammar's best path says how well the words fit
the sound (near 0 = close fit). ``confidence = exp(score / 3)`` maps it into 0..1; below
``min_confidence`` the result is a no-match. It is a heuristic, measured in docs/ivr.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import math
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from multiprocessing import get_context
from typing import Any

import numpy as np
import webrtcvad

from cloudcc.ai.audio import PCM, TELEPHONY_RATE, pcm_from_bytes, resample
from cloudcc.ai.exceptions import (
    AudioFormatError,
    GrammarError,
    RecognitionSessionError,
    UnknownEngineError,
)
from cloudcc.ivr.actions import NoInput, SpeechRecognized
from cloudcc.runtime import die_with_parent

DIGIT_WORDS = ("zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DECODE_RATE = 16000
FRAME_MS = 20
FRAME_SAMPLES = TELEPHONY_RATE * FRAME_MS // 1000


# --- grammars ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Grammar:
    """What the caller may say: one of ``phrases``, or (``digits``) a string of digit words."""

    phrases: tuple[str, ...] = ()
    digits: bool = False
    min_digits: int = 1
    max_digits: int = 16

    def __post_init__(self) -> None:
        if not self.phrases and not self.digits:
            raise GrammarError("a grammar needs phrases or digits")
        for phrase in self.phrases:
            words = phrase.lower().split()
            if not words or not all(w.replace("'", "").isalpha() for w in words):
                raise GrammarError(f"phrase {phrase!r} must be words of letters")
        if not 1 <= self.min_digits <= self.max_digits <= 64:
            raise GrammarError("digit lengths must satisfy 1 <= min <= max <= 64")

    @classmethod
    def keywords(cls, *phrases: str) -> Grammar:
        return cls(phrases=tuple(dict.fromkeys(p.lower() for p in phrases)))

    @classmethod
    def digit_string(cls, min_digits: int = 1, max_digits: int = 16) -> Grammar:
        return cls(digits=True, min_digits=min_digits, max_digits=max_digits)

    def words(self) -> set[str]:
        found = {w for p in self.phrases for w in p.lower().split()}
        return found | set(DIGIT_WORDS) if self.digits else found

    def to_jsgf(self) -> str:
        """The grammar in JSGF 1.0, as pocketsphinx reads it."""
        alternatives = [" ".join(p.lower().split()) for p in self.phrases]
        rules = ""
        if self.digits:
            # a loop keeps the search graph small; lengths are checked by ``accepts``
            alternatives.append("<digit>+")
            rules = "<digit> = " + " | ".join(DIGIT_WORDS) + " ;\n"
        body = " | ".join(alternatives)
        return f"#JSGF V1.0;\ngrammar answer;\n{rules}public <answer> = {body} ;\n"

    def accepts(self, text: str) -> bool:
        """Whether a decoded ``text`` fits (a phrase, or a digit string of allowed length)."""
        normal = " ".join(text.lower().split())
        if normal in {" ".join(p.lower().split()) for p in self.phrases}:
            return True
        words = normal.split()
        return (
            self.digits
            and all(w in DIGIT_WORDS for w in words)
            and self.min_digits <= len(words) <= self.max_digits
        )

    @property
    def key(self) -> str:
        return hashlib.sha1(self.to_jsgf().encode()).hexdigest()[:16]


def grammar_for(phrases: tuple[str, ...], digits: bool, max_digits: int = 16) -> Grammar | None:
    """The grammar an IVR ``Collect`` action asks for (its ``grammar``/``digits_grammar``)."""
    if not phrases and not digits:
        return None
    return Grammar(phrases=tuple(phrases), digits=digits, max_digits=max(1, max_digits))


# --- results ----------------------------------------------------------------------------


class RecognitionStatus(StrEnum):
    MATCH = "match"
    NO_MATCH = "no_match"  # speech heard, but nothing in the grammar fits well enough
    NO_SPEECH = "no_speech"  # nothing that sounded like speech


@dataclass(frozen=True, slots=True)
class Recognition:
    status: RecognitionStatus
    text: str | None = None
    confidence: float = 0.0
    speech_seconds: float = 0.0
    decode_seconds: float = 0.0

    @property
    def matched(self) -> bool:
        return self.status is RecognitionStatus.MATCH

    @property
    def digits(self) -> str | None:
        """``"one two oh"`` → ``"120"``; None when the text is not all digit words."""
        if not self.text:
            return None
        table = {w: str(i) for i, w in enumerate(DIGIT_WORDS[2:], start=1)}
        table.update({"zero": "0", "oh": "0"})
        words = self.text.split()
        if not all(w in table for w in words):
            return None
        return "".join(table[w] for w in words)


def to_flow_input(result: Recognition) -> SpeechRecognized | NoInput:
    """The IVR input for a recognition: a match (or near miss) is speech, silence is no-input.

    A NO_MATCH with text still goes to the flow as low-confidence speech so that the menu
    counts it as *invalid* (retry with the invalid prompt) rather than *no input*.
    """
    if result.status is RecognitionStatus.NO_SPEECH:
        return NoInput()
    if result.text is None:
        return SpeechRecognized("", 0.0)
    confidence = result.confidence if result.matched else 0.0
    return SpeechRecognized(result.text, confidence)


# --- end-of-speech detection ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpointing:
    """VAD settings; times in seconds of audio."""

    aggressiveness: int = 2  # webrtcvad 0..3
    start_frames: int = 4  # voiced frames within the last ``start_window`` to start speech
    start_window: int = 6
    end_silence: float = 0.5  # unvoiced audio that ends an utterance
    pre_roll: float = 0.3  # audio kept from before the detected start
    max_speech: float = 10.0  # decide anyway after this much speech
    min_level: float = 60.0  # RMS below which a frame is silence whatever the VAD says


class Endpointer:
    """Sans-I/O speech start/end detector over 20 ms frames of 8 kHz int16 audio."""

    def __init__(self, config: Endpointing | None = None) -> None:
        self.config = config or Endpointing()
        self._vad = webrtcvad.Vad(self.config.aggressiveness)
        self._recent: list[bool] = []
        self._pre: list[PCM] = []
        self.frames: list[PCM] = []
        self.in_speech = False
        self.ended = False
        self.frames_seen = 0
        self.speech_start_frame: int | None = None
        self.last_voiced_frame: int | None = None
        self._silent_run = 0

    def is_voiced(self, frame: PCM) -> bool:
        level = math.sqrt(float(np.mean(frame.astype(np.float64) ** 2)))
        if level < self.config.min_level:
            return False
        return bool(self._vad.is_speech(frame.astype("<i2").tobytes(), TELEPHONY_RATE))

    def push(self, frame: PCM) -> bool:
        """Consume one 20 ms frame; True when the utterance has just ended."""
        if self.ended:
            return False
        cfg = self.config
        voiced = self.is_voiced(frame)
        index = self.frames_seen
        self.frames_seen += 1
        if not self.in_speech:
            self._pre.append(frame)
            keep = max(1, int(cfg.pre_roll * 1000 / FRAME_MS)) + cfg.start_window
            del self._pre[:-keep]
            self._recent.append(voiced)
            del self._recent[: -cfg.start_window]
            if sum(self._recent) >= cfg.start_frames:
                self.in_speech = True
                self.speech_start_frame = index - len(self._recent) + 1
                self.frames = list(self._pre)
                self.last_voiced_frame = index
            return False
        self.frames.append(frame)
        if voiced:
            self.last_voiced_frame = index
            self._silent_run = 0
        else:
            self._silent_run += 1
        speech_frames = index - (self.speech_start_frame or 0)
        if (
            self._silent_run * FRAME_MS / 1000 >= cfg.end_silence
            or speech_frames * FRAME_MS / 1000 >= cfg.max_speech
        ):
            self.ended = True
            return True
        return False

    def utterance(self) -> PCM:
        if not self.frames:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self.frames)


# --- engines ----------------------------------------------------------------------------


class SpeechRecognizer(ABC):
    """A recognizer of short answers against a grammar."""

    name: str = "abstract"
    min_confidence: float = 0.0

    def session(
        self, grammar: Grammar, endpointing: Endpointing | None = None
    ) -> RecognitionSession:
        """A streaming session for one answer."""
        return RecognitionSession(self, grammar, endpointing)

    async def recognize(self, pcm8k: PCM, grammar: Grammar) -> Recognition:
        """Decode a whole 8 kHz utterance (no endpointing)."""
        return await self.decode(pcm8k, grammar)

    @abstractmethod
    async def decode(self, pcm8k: PCM, grammar: Grammar) -> Recognition:
        """Recognise one utterance of 8 kHz audio against ``grammar``."""

    async def warm_up(self) -> None:  # noqa: B027 - an optional hook
        """Load models ahead of the first call (optional)."""

    async def close(self) -> None:  # noqa: B027 - an optional hook
        """Release workers and models."""


class RecognitionSession:
    """One answer: ``await feed(frame)`` until it returns a Recognition, or ``finish()``."""

    def __init__(
        self, engine: SpeechRecognizer, grammar: Grammar, endpointing: Endpointing | None = None
    ) -> None:
        self.engine = engine
        self.grammar = grammar
        self.endpointer = Endpointer(endpointing)
        self.result: Recognition | None = None
        self._carry = np.zeros(0, dtype=np.int16)

    @property
    def speech_started(self) -> bool:
        """True once the caller started speaking (the edge stops the prompt: barge-in)."""
        return self.endpointer.in_speech

    @property
    def audio_seconds(self) -> float:
        return self.endpointer.frames_seen * FRAME_MS / 1000

    async def feed(self, frame: bytes | PCM) -> Recognition | None:
        """Add 8 kHz int16 audio (any length); returns the result once end of speech is seen."""
        if self.result is not None:
            raise RecognitionSessionError("this session has already decided")
        pcm = pcm_from_bytes(frame) if isinstance(frame, bytes | bytearray) else frame
        if pcm.dtype != np.int16 or pcm.ndim != 1:
            raise AudioFormatError("frames must be 1-D int16 PCM at 8 kHz")
        data = np.concatenate([self._carry, pcm]) if len(self._carry) else pcm
        whole = len(data) - len(data) % FRAME_SAMPLES
        self._carry = data[whole:].copy()
        for start in range(0, whole, FRAME_SAMPLES):
            if self.endpointer.push(data[start : start + FRAME_SAMPLES]):
                return await self._decide()
        return None

    async def finish(self) -> Recognition:
        """No more audio (the no-input timer fired, or the caller hung up): decide now."""
        if self.result is not None:
            return self.result
        if not self.endpointer.in_speech:
            self.result = Recognition(RecognitionStatus.NO_SPEECH)
            return self.result
        return await self._decide()

    async def _decide(self) -> Recognition:
        self.endpointer.ended = True
        audio = self.endpointer.utterance()
        self.result = await self.engine.decode(audio, self.grammar)
        return self.result


# --- pocketsphinx -----------------------------------------------------------------------

_local = threading.local()


def _decoder(grammar_key: str, jsgf: str, words: list[str]) -> Any:
    """The worker's decoder with the grammar's search active (decoders are per thread)."""
    from pocketsphinx import Decoder, set_loglevel

    decoder = getattr(_local, "decoder", None)
    if decoder is None:
        set_loglevel("FATAL")
        decoder = Decoder(samprate=DECODE_RATE, lm=None, loglevel="FATAL")
        _local.decoder = decoder
        _local.searches = []
    searches: list[str] = _local.searches
    if grammar_key not in searches:
        missing = [w for w in words if decoder.lookup_word(w) is None]
        if missing:
            raise GrammarError(f"words not in the pronunciation dictionary: {sorted(missing)}")
        decoder.add_jsgf_string(grammar_key, jsgf)
        searches.append(grammar_key)
        if len(searches) > 64:
            decoder.remove_search(searches.pop(0))
    decoder.activate_search(grammar_key)
    return decoder


def decode_utterance(
    grammar_key: str, jsgf: str, words: list[str], pcm8k: bytes, dither: float
) -> tuple[str | None, float, int, float]:
    """Worker job: (text, mean log acoustic score per speech frame, speech frames, seconds)."""
    import time

    began = time.perf_counter()
    decoder = _decoder(grammar_key, jsgf, words)
    samples = np.frombuffer(pcm8k, dtype="<i2").astype(np.float64)
    if dither > 0 and len(samples):
        # decoders choke on digital silence (exact zeros); real lines never carry it
        samples = samples + np.random.default_rng(0).normal(0.0, dither, len(samples))
    clipped = np.clip(samples, -32768, 32767).astype(np.int16)
    pcm16 = resample(clipped, TELEPHONY_RATE, DECODE_RATE)
    decoder.start_utt()
    decoder.process_raw(pcm16.tobytes(), full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    text = hyp.hypstr.strip() if hyp is not None else ""
    if not text:
        return None, 0.0, 0, time.perf_counter() - began
    log_score, frames = 0.0, 0
    for seg in decoder.seg():
        if seg.word.startswith("<") or seg.word.startswith("["):
            continue
        length = seg.end_frame - seg.start_frame + 1
        frames += length
        log_score += math.log(max(seg.ascore, 1e-300))
    per_frame = log_score / frames if frames else -100.0
    return text, per_frame, frames, time.perf_counter() - began


def confidence_from_score(per_frame: float) -> float:
    """Map the mean per-frame log acoustic score (≤ 0) to 0..1."""
    return max(0.0, min(1.0, math.exp(per_frame / 3.0)))


def _spawn_pool(workers: int) -> ProcessPoolExecutor:
    """Workers die with the node (even on SIGKILL): no orphan holds memory after a crash."""
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=get_context("spawn"),
        initializer=die_with_parent,
        initargs=(os.getpid(),),
    )


class Pocketsphinx(SpeechRecognizer):
    """CMU pocketsphinx with its bundled US English model, JSGF grammars only.

    ``executor``: where decoding runs; default a spawn-started process pool of ``workers``.
    """

    name = "pocketsphinx"

    def __init__(
        self,
        *,
        executor: Executor | None = None,
        workers: int = 1,
        min_confidence: float = 0.2,
        dither: float = 16.0,
    ) -> None:
        self._own_executor = executor is None
        self._executor = executor
        self.workers = workers
        self.min_confidence = min_confidence
        self.dither = dither

    @property
    def executor(self) -> Executor:
        if self._executor is None:
            self._executor = _spawn_pool(self.workers)
        return self._executor

    async def warm_up(self) -> None:
        """Start the workers and load the model (about 0.2 s each) before the first caller."""
        await self.decode(np.zeros(FRAME_SAMPLES * 10, dtype=np.int16), Grammar.keywords("yes"))

    async def decode(self, pcm8k: PCM, grammar: Grammar) -> Recognition:
        if len(pcm8k) == 0:
            return Recognition(RecognitionStatus.NO_SPEECH)
        loop = asyncio.get_running_loop()
        text, per_frame, frames, seconds = await loop.run_in_executor(
            self.executor,
            decode_utterance,
            grammar.key,
            grammar.to_jsgf(),
            sorted(grammar.words()),
            pcm8k.astype("<i2").tobytes(),
            self.dither,
        )
        speech = frames / 100.0  # pocketsphinx frames are 10 ms
        if text is None:
            return Recognition(RecognitionStatus.NO_MATCH, decode_seconds=seconds)
        confidence = confidence_from_score(per_frame)
        fits = confidence >= self.min_confidence and grammar.accepts(text)
        status = RecognitionStatus.MATCH if fits else RecognitionStatus.NO_MATCH
        return Recognition(status, text, confidence, speech, seconds)

    async def close(self) -> None:
        """Stop the worker processes (without blocking the loop)."""
        await asyncio.get_running_loop().run_in_executor(None, self.shutdown)

    def shutdown(self) -> None:
        """Stop the worker processes this engine started (a given executor is left alone)."""
        if self._own_executor and self._executor is not None:
            executor, self._executor = self._executor, None
            executor.shutdown(wait=True, cancel_futures=True)


# --- registry ---------------------------------------------------------------------------

RecognizerFactory = Callable[..., SpeechRecognizer]
_ENGINES: dict[str, RecognizerFactory] = {"pocketsphinx": Pocketsphinx}


def register_recognizer(name: str, factory: RecognizerFactory) -> None:
    """Make an engine (Vosk, Whisper, a cloud API...) available to ``create_recognizer``."""
    _ENGINES[name] = factory


def create_recognizer(config: Mapping[str, Any]) -> SpeechRecognizer:
    """Build an engine from configuration: ``{"engine": "pocketsphinx", "workers": 2}``.

    ``engine`` is a registered name or ``"package.module:Factory"``; other keys go to the
    factory. Environment ``CLOUDCC_ASR_ENGINE`` overrides the default name.
    """
    options = dict(config)
    name = str(options.pop("engine", os.environ.get("CLOUDCC_ASR_ENGINE", "pocketsphinx")))
    factory = _ENGINES.get(name)
    if factory is None:
        module_name, _, attr = name.partition(":")
        if not attr:
            raise UnknownEngineError(f"unknown ASR engine {name!r}; registered: {sorted(_ENGINES)}")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise UnknownEngineError(f"cannot load ASR engine {name!r}: {exc}") from None
    engine = factory(**options)
    if not isinstance(engine, SpeechRecognizer):
        raise UnknownEngineError(f"{name!r} did not build a SpeechRecognizer")
    return engine
