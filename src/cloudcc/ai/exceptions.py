"""Errors raised by the AI engines (speech synthesis, speech recognition, engine registry)."""

from __future__ import annotations


class AiError(Exception):
    """Base class of every error raised by ``cloudcc.ai``."""


class AudioFormatError(AiError):
    """Audio bytes are not the PCM shape an engine needs (bad WAV, odd byte count, rate)."""


class TTSError(AiError):
    """Speech synthesis failed."""


class TTSEngineError(TTSError):
    """The synthesizer program failed, timed out or produced no audio."""

    def __init__(self, message: str, *, engine: str, returncode: int | None = None) -> None:
        self.engine = engine
        self.returncode = returncode
        super().__init__(f"{engine}: {message}")


class UnsupportedVoiceError(TTSError):
    """No voice of the engine speaks the requested language, or the voice name is unknown."""


class ASRError(AiError):
    """Speech recognition failed."""


class GrammarError(ASRError):
    """A recognition grammar is empty or uses words the engine cannot pronounce."""


class RecognitionSessionError(ASRError):
    """A recognition session was fed after it had decided."""


class UnknownEngineError(AiError):
    """Configuration names an engine that is not registered (or cannot be imported)."""
