"""Call recording to WAV: stereo (customer left, agent right) or mixed mono.

Crash safety: buffered audio is written and the RIFF header sizes patched at
least every ``flush_interval`` seconds (0.5 s by default), so a killed process
leaves a valid WAV missing at most that much.
"""

from __future__ import annotations

import enum
import hashlib
import os
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from .exceptions import IllegalTransition
from .wav import WavWriter

PCM = NDArray[np.int16]


class RecordingState(enum.Enum):
    RECORDING = "recording"
    PAUSED = "paused"
    STOPPED = "stopped"


_TRANSITIONS: Final = {
    RecordingState.RECORDING: {RecordingState.PAUSED, RecordingState.STOPPED},
    RecordingState.PAUSED: {RecordingState.RECORDING, RecordingState.STOPPED},
}


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    path: str
    duration_s: float
    sha256: str
    bytes: int
    channels: int
    rate: int
    #: (state, monotonic time) of every transition, for reports
    transitions: tuple[tuple[RecordingState, float], ...]


class Recorder:
    """Writes one recording; fed one frame per tick by the engine."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        channels: int,
        now: float,
        rate: int = 8000,
        flush_interval: float = 0.5,
        durable: bool = False,
    ) -> None:
        if channels not in (1, 2):
            raise ValueError("a recording has 1 or 2 channels")
        self.channels = channels
        self.rate = rate
        self.flush_interval = flush_interval
        self.writer = WavWriter(path, channels, rate, durable=durable)
        self.state = RecordingState.RECORDING
        self.transitions: list[tuple[RecordingState, float]] = [(RecordingState.RECORDING, now)]
        self._last_flush = now
        self._stereo = np.empty((0, 2), dtype=np.int16)

    @property
    def path(self) -> str:
        return self.writer.path

    def _transition(self, target: RecordingState, now: float) -> None:
        if target not in _TRANSITIONS.get(self.state, set()):
            raise IllegalTransition("recording", self.state.value, target.value)
        self.state = target
        self.transitions.append((target, now))

    def write(self, left: PCM, right: PCM | None, now: float) -> None:
        """One frame of each side (``right`` None: a single source)."""
        if self.state is not RecordingState.RECORDING:
            return
        if self.channels == 2:
            if right is None:
                right = np.zeros_like(left)
            if self._stereo.shape[0] != len(left):
                self._stereo = np.empty((len(left), 2), dtype=np.int16)
            self._stereo[:, 0] = left
            self._stereo[:, 1] = right
            self.writer.append(self._stereo.tobytes())
        elif right is None:
            self.writer.append(left.astype("<i2", copy=False).tobytes())
        else:
            mixed = np.clip(left.astype(np.int32) + right, -32768, 32767).astype("<i2")
            self.writer.append(mixed.tobytes())
        if now - self._last_flush >= self.flush_interval:
            self.flush(now)

    def flush(self, now: float) -> None:
        self.writer.flush()
        self._last_flush = now

    def pause(self, now: float) -> None:
        self._transition(RecordingState.PAUSED, now)
        self.flush(now)

    def resume(self, now: float) -> None:
        self._transition(RecordingState.RECORDING, now)

    def stop(self, now: float) -> tuple[str, float, int]:
        """Close the file: (path, duration seconds, bytes)."""
        self._transition(RecordingState.STOPPED, now)
        self.writer.close()
        size = os.path.getsize(self.path)
        return self.path, self.writer.frames / self.rate, size

    @property
    def duration_s(self) -> float:
        return self.writer.frames / self.rate


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
