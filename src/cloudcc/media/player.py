"""Playback of prompts and music: WAV files, PCM from TTS, looping playlists (sans-I/O).

A Player hands out one 20 ms frame per tick at the bus rate (8 kHz), resampling
sources at other rates, and can be interrupted by a DTMF digit (barge-in).
"""

from __future__ import annotations

import enum
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from .codecs import BUS_RATE, Resampler
from .exceptions import AudioFormatError, IllegalTransition
from .wav import WavReader

PCM = NDArray[np.int16]


class AudioSource(ABC):
    """Mono int16 audio read in blocks."""

    rate: int

    @abstractmethod
    def read(self, samples: int) -> PCM:
        """Up to ``samples`` samples; empty when the source is exhausted."""

    @abstractmethod
    def rewind(self) -> None:
        """Start again from the beginning (for looping)."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release files."""


class PcmSource(AudioSource):
    """An int16 array in memory (generated speech, tones)."""

    def __init__(self, pcm: PCM, rate: int = BUS_RATE) -> None:
        if pcm.dtype != np.int16:
            raise AudioFormatError("PCM array", f"expected int16 samples, got {pcm.dtype}")
        if pcm.ndim == 2:
            pcm = pcm.mean(axis=1).astype(np.int16)
        elif pcm.ndim != 1:
            raise AudioFormatError("PCM array", f"expected 1-D samples, got shape {pcm.shape}")
        self.pcm = pcm
        self.rate = rate
        self._pos = 0

    def read(self, samples: int) -> PCM:
        out = self.pcm[self._pos : self._pos + samples]
        self._pos += len(out)
        return out

    def rewind(self) -> None:
        self._pos = 0


class WavSource(AudioSource):
    """A WAV file streamed from disk."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._reader = WavReader(self.path)
        self.rate = self._reader.rate

    def read(self, samples: int) -> PCM:
        return self._reader.read(samples)

    def rewind(self) -> None:
        self._reader.close()
        self._reader = WavReader(self.path)

    def close(self) -> None:
        self._reader.close()


class Playlist(AudioSource):
    """Several WAV files one after the other (music on hold)."""

    def __init__(self, paths: Sequence[str | os.PathLike[str]]) -> None:
        if not paths:
            raise AudioFormatError("playlist", "no files")
        self.paths = [os.fspath(p) for p in paths]
        self._index = 0
        self._current = WavSource(self.paths[0])
        self.rate = self._current.rate

    def read(self, samples: int) -> PCM:
        pcm = self._current.read(samples)
        while len(pcm) == 0 and self._index + 1 < len(self.paths):
            self._current.close()
            self._index += 1
            self._current = WavSource(self.paths[self._index])
            if self._current.rate != self.rate:
                raise AudioFormatError(self.paths[self._index], "playlist files differ in rate")
            pcm = self._current.read(samples)
        return pcm

    def rewind(self) -> None:
        self._current.close()
        self._index = 0
        self._current = WavSource(self.paths[0])

    def close(self) -> None:
        self._current.close()


MOH_DIR: Final = "/usr/share/asterisk/moh"


def default_music_on_hold() -> Playlist:
    """The Debian opsound music-on-hold tracks, when installed."""
    try:
        names = sorted(n for n in os.listdir(MOH_DIR) if n.endswith(".wav"))
    except OSError as exc:
        raise AudioFormatError(MOH_DIR, "no music-on-hold directory") from exc
    return Playlist([os.path.join(MOH_DIR, n) for n in names])


class PlaybackState(enum.Enum):
    PLAYING = "playing"
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"  # by a DTMF digit (barge-in)
    STOPPED = "stopped"  # by the application or because the leg went away


_TRANSITIONS: Final = {
    PlaybackState.PLAYING: {
        PlaybackState.COMPLETED,
        PlaybackState.INTERRUPTED,
        PlaybackState.STOPPED,
    },
}


@dataclass(frozen=True, slots=True)
class PlaybackResult:
    state: PlaybackState
    digit: str | None
    played_ms: int


class Player:
    """Frames from a source, at the bus rate, until it ends, loops, or is interrupted."""

    BLOCK: Final = 4000  # samples read from the source at a time

    def __init__(
        self,
        source: AudioSource,
        loop: bool = False,
        barge_in: bool = True,
        frame_samples: int = 160,
    ) -> None:
        self.source = source
        self.loop = loop
        self.barge_in = barge_in
        self.frame = frame_samples
        self.state = PlaybackState.PLAYING
        self.digit: str | None = None
        self.frames_played = 0
        self._resampler = Resampler(source.rate, BUS_RATE)
        self._buffer = np.zeros(0, dtype=np.int16)
        self._exhausted = False

    def _transition(self, target: PlaybackState) -> None:
        if target not in _TRANSITIONS.get(self.state, set()):
            raise IllegalTransition("playback", self.state.value, target.value)
        self.state = target
        self.source.close()

    def _refill(self) -> None:
        while len(self._buffer) < self.frame and not self._exhausted:
            block = self.source.read(self.BLOCK)
            if len(block) == 0:
                if self.loop and self.frames_played + len(self._buffer) > 0:
                    self.source.rewind()
                    block = self.source.read(self.BLOCK)
                if len(block) == 0:
                    self._exhausted = True
                    block = self._resampler.process(np.zeros(0, dtype=np.int16), last=True)
                    self._buffer = np.concatenate([self._buffer, block])
                    break
            self._buffer = np.concatenate([self._buffer, self._resampler.process(block)])

    def next_frame(self) -> PCM | None:
        """The next frame, or None once finished (state tells why)."""
        if self.state is not PlaybackState.PLAYING:
            return None
        self._refill()
        if len(self._buffer) == 0:
            self._transition(PlaybackState.COMPLETED)
            return None
        frame = self._buffer[: self.frame]
        self._buffer = self._buffer[self.frame :]
        if len(frame) < self.frame:
            frame = np.concatenate([frame, np.zeros(self.frame - len(frame), dtype=np.int16)])
        self.frames_played += 1
        return frame.astype(np.int16, copy=False)

    def on_dtmf(self, digit: str) -> bool:
        """Barge-in: a digit stops an interruptible prompt; True when it did."""
        if self.barge_in and self.state is PlaybackState.PLAYING:
            self.digit = digit
            self._transition(PlaybackState.INTERRUPTED)
            return True
        return False

    def stop(self) -> None:
        if self.state is PlaybackState.PLAYING:
            self._transition(PlaybackState.STOPPED)

    def result(self) -> PlaybackResult:
        return PlaybackResult(self.state, self.digit, self.frames_played * self.frame // 8)
