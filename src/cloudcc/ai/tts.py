"""Text to speech: the engine interface, espeak-ng (default) and flite engines, a disk cache.

Engines run their synthesizer as an asyncio subprocess (the loop never blocks), read the WAV
from its stdout and resample it with soxr to 8 kHz mono int16, the telephony format. The cache
keys rendered audio by a hash of (engine, voice, rate, text) and stores it as WAV files.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import json
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from cloudcc.ai.audio import TELEPHONY_RATE, Audio, read_wav, resample
from cloudcc.ai.exceptions import (
    AudioFormatError,
    TTSEngineError,
    TTSError,
    UnknownEngineError,
    UnsupportedVoiceError,
)

MAX_TEXT_LENGTH = 5000
SYNTHESIS_TIMEOUT = 30.0


class TextToSpeech(ABC):
    """A speech synthesizer producing 8 kHz mono int16 audio."""

    name: str = "abstract"
    default_rate: int = 160  # words per minute
    voices: ClassVar[Mapping[str, str]] = {}  # language tag (lower case) -> voice name

    def voice_for(self, language: str | None) -> str:
        """The engine voice for a BCP 47 tag such as ``en-US`` or ``zh-CN`` (or a voice name)."""
        if language is None:
            return self.voices["default"]
        tag = language.lower()
        for candidate in (tag, tag.split("-")[0]):
            if candidate in self.voices:
                return self.voices[candidate]
        if tag in self.voices.values():
            return tag
        raise UnsupportedVoiceError(f"{self.name} has no voice for language {language!r}")

    def cache_key(self, text: str, voice: str, rate: int) -> str:
        raw = json.dumps([self.name, voice, rate, TELEPHONY_RATE, text], ensure_ascii=False)
        return hashlib.sha256(raw.encode()).hexdigest()

    async def synthesize(
        self,
        text: str,
        *,
        language: str | None = None,
        voice: str | None = None,
        rate: int | None = None,
    ) -> Audio:
        """Speak ``text`` in ``language`` (or an explicit engine ``voice``) at ``rate`` wpm."""
        text = _check_text(text)
        return await self.render(text, voice or self.voice_for(language), rate or self.default_rate)

    @abstractmethod
    async def render(self, text: str, voice: str, rate: int) -> Audio:
        """Run the engine; returns 8 kHz audio."""


def _check_text(text: str) -> str:
    cleaned = " ".join(text.split())
    if not cleaned:
        raise TTSError("nothing to say: the text is empty")
    if len(cleaned) > MAX_TEXT_LENGTH:
        raise TTSError(f"text longer than {MAX_TEXT_LENGTH} characters")
    return cleaned


async def _run(engine: str, argv: list[str], stdin: bytes | None) -> bytes:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError:
        raise TTSEngineError(f"program {argv[0]!r} is not installed", engine=engine) from None
    try:
        async with asyncio.timeout(SYNTHESIS_TIMEOUT):
            out, err = await proc.communicate(stdin)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise TTSEngineError(f"no result within {SYNTHESIS_TIMEOUT:g} s", engine=engine) from None
    if proc.returncode != 0:
        message = err.decode(errors="replace").strip()[:300] or "failed"
        raise TTSEngineError(message, engine=engine, returncode=proc.returncode)
    return out


def _to_telephony(engine: str, wav: bytes) -> Audio:
    try:
        audio = read_wav(wav)
    except AudioFormatError as exc:
        raise TTSEngineError(f"unreadable output: {exc}", engine=engine) from None
    if len(audio.samples) == 0:
        raise TTSEngineError("produced no audio", engine=engine)
    return Audio(resample(audio.samples, audio.rate, TELEPHONY_RATE), TELEPHONY_RATE)


class EspeakNg(TextToSpeech):
    """espeak-ng (22.05 kHz) resampled to 8 kHz. Mandarin uses ``cmn-latn-pinyin``: it reads
    Hanzi and tone-numbered pinyin correctly, where ``cmn``/``zh`` garble them."""

    name = "espeak-ng"
    default_rate = 160
    voices: ClassVar[Mapping[str, str]] = {
        "default": "en-us",
        "en": "en-us",
        "en-us": "en-us",
        "en-gb": "en-gb",
        "zh": "cmn-latn-pinyin",
        "zh-cn": "cmn-latn-pinyin",
        "cmn": "cmn-latn-pinyin",
        "zh-hk": "yue",
        "yue": "yue",
        "fr": "fr",
        "de": "de",
        "es": "es",
        "ja": "ja",
    }

    def __init__(self, program: str = "espeak-ng") -> None:
        self.program = program
        self._installed: frozenset[str] | None = None

    async def installed_voices(self) -> frozenset[str]:
        """Voice names ``-v`` accepts (languages, names, files); espeak-ng silently falls back
        to its default voice for unknown names, so they are checked here."""
        if self._installed is None:
            listing = await _run(self.name, [self.program, "--voices"], None)
            names: set[str] = set()
            for line in listing.decode(errors="replace").splitlines()[1:]:
                cols = line.split()
                if len(cols) >= 5:
                    names.update({cols[1].lower(), cols[3].lower(), cols[4].lower()})
                    names.add(cols[4].rsplit("/", 1)[-1].lower())
            self._installed = frozenset(names)
        return self._installed

    async def render(self, text: str, voice: str, rate: int) -> Audio:
        if not 80 <= rate <= 450:
            raise TTSError(f"rate {rate} wpm is outside 80..450")
        if voice.split("+", 1)[0].lower() not in await self.installed_voices():
            raise UnsupportedVoiceError(f"espeak-ng has no voice {voice!r}")
        argv = [self.program, "-v", voice, "-s", str(rate), "--stdout", "--stdin"]
        wav = await _run(self.name, argv, text.encode())
        return _to_telephony(self.name, wav)


class Flite(TextToSpeech):
    """CMU flite (English only; 16 kHz voices slt, awb, rms and the 8 kHz kal)."""

    name = "flite"
    default_rate = 170
    voices: ClassVar[Mapping[str, str]] = {
        "default": "slt",
        "en": "slt",
        "en-us": "slt",
        "en-gb": "awb",
    }
    known_voices = frozenset({"slt", "awb", "rms", "kal", "kal16"})

    def __init__(self, program: str = "flite") -> None:
        self.program = program

    def voice_for(self, language: str | None) -> str:
        if language is not None and language.lower() in self.known_voices:
            return language.lower()
        return super().voice_for(language)

    async def render(self, text: str, voice: str, rate: int) -> Audio:
        if voice not in self.known_voices:
            raise UnsupportedVoiceError(f"flite has no voice {voice!r}")
        if not 80 <= rate <= 450:
            raise TTSError(f"rate {rate} wpm is outside 80..450")
        stretch = self.default_rate / rate
        argv = [
            self.program,
            "-voice",
            voice,
            "--setf",
            f"duration_stretch={stretch:.3f}",
            "-t",
            text,
            "-o",
            "/dev/stdout",
        ]
        wav = await _run(self.name, argv, None)
        return _to_telephony(self.name, wav)


class CachedTextToSpeech(TextToSpeech):
    """Wraps an engine with a disk cache; concurrent requests for one prompt render it once."""

    def __init__(self, engine: TextToSpeech, directory: str | os.PathLike[str]) -> None:
        self.engine = engine
        self.name = engine.name
        self.default_rate = engine.default_rate
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0
        self._inflight: dict[str, asyncio.Future[Audio]] = {}

    def voice_for(self, language: str | None) -> str:
        return self.engine.voice_for(language)

    def path_for(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.wav"

    async def render(self, text: str, voice: str, rate: int) -> Audio:
        key = self.engine.cache_key(text, voice, rate)
        path = self.path_for(key)
        if path.exists():
            try:
                audio = read_wav(path.read_bytes())
            except (AudioFormatError, OSError):
                audio = None  # a damaged entry is rendered again
            if audio is not None and audio.rate == TELEPHONY_RATE:
                self.hits += 1
                return audio
        pending = self._inflight.get(key)
        if pending is not None:
            self.hits += 1
            return await asyncio.shield(pending)
        future: asyncio.Future[Audio] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        self.misses += 1
        try:
            audio = await self.engine.render(text, voice, rate)
            self._store(path, audio)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters (if any) still get it
            raise
        else:
            future.set_result(audio)
            return audio
        finally:
            del self._inflight[key]

    def _store(self, path: Path, audio: Audio) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(audio.to_wav())
        os.replace(tmp, path)  # atomic: readers never see half a file

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.mkdir(parents=True, exist_ok=True)


TTSFactory = Callable[..., TextToSpeech]
_ENGINES: dict[str, TTSFactory] = {"espeak-ng": EspeakNg, "flite": Flite}


def register_tts(name: str, factory: TTSFactory) -> None:
    """Make an engine available to ``create_tts`` under ``name``."""
    _ENGINES[name] = factory


def create_tts(config: Mapping[str, Any]) -> TextToSpeech:
    """Build an engine from configuration, e.g. ``{"engine": "espeak-ng", "cache_dir": "..."}``.

    ``engine`` is a registered name or ``"package.module:Factory"``; other keys except
    ``cache_dir`` are passed to the factory.
    """
    options = dict(config)
    name = str(options.pop("engine", "espeak-ng"))
    cache_dir = options.pop("cache_dir", None)
    factory = _ENGINES.get(name) or _import_factory(name)
    engine = factory(**options)
    if not isinstance(engine, TextToSpeech):
        raise UnknownEngineError(f"{name!r} did not build a TextToSpeech engine")
    return CachedTextToSpeech(engine, cache_dir) if cache_dir else engine


def _import_factory(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise UnknownEngineError(f"unknown engine {spec!r}; registered: {sorted(_ENGINES)}")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UnknownEngineError(f"cannot load engine {spec!r}: {exc}") from None
