"""Call recording to WAV: stereo (customer left, agent right) or mixed mono.

A party's channel is filled straight from its RTP packets, placed by timestamp
(RFC 3550 §5.1) on the recording's clock (:class:`TimelineChannel`), so
recording costs almost nothing per packet and nothing per tick; a mix (a
conference) is fed one frame per tick (:class:`FrameChannel`). Audio is written
``margin`` seconds behind real time so late packets still land in place; holes
left by lost packets are concealed.

Crash safety: everything due is written and the RIFF header sizes patched every
``flush_interval`` seconds, so a killed process leaves a valid WAV missing at
most ``flush_interval + margin`` (0.7 s by default).
"""

from __future__ import annotations

import enum
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np
from numpy.typing import NDArray

from . import g711
from .exceptions import IllegalTransition
from .jitter import Concealer
from .wav import WavWriter

PCM = NDArray[np.int16]
RATE: Final = 8000
FRAME: Final = 160
_DECODE: Final = (g711.ULAW_DECODE, g711.ALAW_DECODE)
_SILENCE_CODE: Final = (g711.ULAW_SILENCE, g711.ALAW_SILENCE)
_TRANSLATE: Final = ((None, g711.ULAW_TO_ALAW), (g711.ALAW_TO_ULAW, None))  # [from][to]


class Channel(Protocol):
    def take(self, count: int) -> PCM:
        """The next ``count`` samples of the recording clock."""

    def pause(self) -> None:
        """Stop taking audio in."""

    def resume(self) -> None:
        """Take audio in again."""


class TimelineChannel:
    """One party's G.711 audio placed by RTP timestamp, straight from the packets.

    Sample k of the channel is recording-clock sample k: the first packet is
    anchored at its arrival time, later ones follow their timestamps.
    """

    MAX_AHEAD: Final = RATE * 5  # a jump further than this re-anchors (new source, gap)

    def __init__(self, start: float, law: int = 0) -> None:
        self.start = start
        self.law = law  # 0: µ-law codes, 1: A-law codes
        self._codes = bytearray()  # codes of samples [self._base, ...)
        self._filled = bytearray()  # one flag per frame of self._codes
        self._base = 0
        self._anchor: int | None = None  # extended timestamp of clock sample 0
        self._last_ext = 0
        self._concealer = Concealer(FRAME)
        self.late = 0
        self._paused = False

    def put(self, timestamp: int, payload: bytes, arrival: float, law: int = 0) -> None:
        """Place one packet's payload (codes of ``law``) at its timestamp."""
        if self._paused:
            return
        if law != self.law:
            table = _TRANSLATE[law][self.law]
            assert table is not None
            payload = payload.translate(table)
        anchor = self._anchor
        if anchor is None:
            self._last_ext = timestamp
            anchor = self._anchor = timestamp - self._clock_position(arrival)
        last = self._last_ext
        ext = last + ((timestamp - (last & 0xFFFFFFFF) + 0x80000000) & 0xFFFFFFFF) - 0x80000000
        pos = ext - anchor - self._base
        codes = self._codes
        if pos == len(codes) and not pos % FRAME and len(payload) == FRAME:
            codes += payload  # the usual case: the next frame, in order
            self._filled.append(1)
            self._last_ext = ext
            return
        self._place(ext, pos, payload, arrival)

    def _clock_position(self, arrival: float) -> int:
        """Where a packet arriving now belongs: the recording clock, on a frame boundary."""
        return max(self._base, round((arrival - self.start) * RATE / FRAME) * FRAME)

    def _place(self, ext: int, pos: int, payload: bytes, arrival: float) -> None:
        assert self._anchor is not None
        expected = round((arrival - self.start) * RATE) - self._base
        if abs(pos - expected) > self.MAX_AHEAD:  # new source or a long gap: follow the clock
            self._anchor = ext - self._clock_position(arrival)
            pos = ext - self._anchor - self._base
        if ext > self._last_ext:
            self._last_ext = ext
        if pos < 0:
            if self._base or not self._codes:
                self.late += 1  # its place was already written out
                return
            # reordered at the very start: shift what is buffered to make room
            shift = -(pos // FRAME) * FRAME
            self._codes[0:0] = bytes([_SILENCE_CODE[self.law]]) * shift
            self._filled[0:0] = bytes(shift // FRAME)
            self._anchor -= shift
            pos += shift
        end = pos + len(payload)
        codes = self._codes
        if end > len(codes):
            codes.extend(bytes([_SILENCE_CODE[self.law]]) * (end - len(codes)))
            self._filled.extend(bytes(-(-len(codes) // FRAME) - len(self._filled)))
        codes[pos:end] = payload
        for frame in range(pos // FRAME, (end - 1) // FRAME + 1):
            self._filled[frame] = 1

    def pause(self) -> None:
        """Ignore packets until resume(); what is buffered ahead of the clock is dropped."""
        self._paused = True
        self._codes.clear()
        self._filled.clear()

    def resume(self) -> None:
        """Accept packets again, anchored afresh on the next one."""
        self._paused = False
        self._anchor = None
        self._concealer = Concealer(FRAME)

    def take(self, count: int) -> PCM:
        have = min(count, len(self._codes))
        frames = count // FRAME
        codes = bytes(self._codes[:have]) + bytes([_SILENCE_CODE[self.law]]) * (count - have)
        filled = bytes(self._filled[:frames]).ljust(frames, b"\x00")
        del self._codes[:have]
        del self._filled[:frames]
        self._base += count
        pcm = _DECODE[self.law][np.frombuffer(codes, dtype=np.uint8)]
        if count % FRAME == 0 and (filled.count(0) == 0 or self._anchor is None):
            if frames >= 2:
                self._concealer.good(pcm[-2 * FRAME : -FRAME])
                self._concealer.good(pcm[-FRAME:])
            return pcm
        # holes from lost packets: conceal them frame by frame (rare)
        out = pcm.copy()
        for i in range(frames):
            frame = out[i * FRAME : (i + 1) * FRAME]
            if filled[i]:
                out[i * FRAME : (i + 1) * FRAME] = self._concealer.good(frame)
            else:
                out[i * FRAME : (i + 1) * FRAME] = self._concealer.conceal()
        return out


class FrameChannel:
    """Audio handed over one frame per tick (a conference mix, a wideband leg)."""

    def __init__(self) -> None:
        self._frames: list[PCM] = []
        self._pending = 0
        self._paused = False

    def put(self, frame: PCM) -> None:
        if self._paused:
            return
        self._frames.append(frame)
        self._pending += len(frame)

    def pause(self) -> None:
        self._paused = True
        self._frames = []
        self._pending = 0

    def resume(self) -> None:
        self._paused = False

    def take(self, count: int) -> PCM:
        if self._pending >= count:
            joined = np.concatenate(self._frames) if self._frames else np.zeros(0, np.int16)
        else:
            missing = np.zeros(count - self._pending, dtype=np.int16)
            joined = np.concatenate([*self._frames, missing])
        out, rest = joined[:count], joined[count:]
        self._frames = [rest] if len(rest) else []
        self._pending = len(rest)
        return out


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


class WavSink(Protocol):
    """Where a Recorder's samples go: a WavWriter, or one whose I/O runs on a thread."""

    path: str

    def append(self, samples: bytes) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...

    @property
    def frames(self) -> int: ...

    @property
    def size(self) -> int: ...


class Recorder:
    """Writes one recording from one or two channels; the engine calls ``flush`` often.

    With the default WavWriter the file I/O happens in ``flush`` (and raises
    RecordingWriteError); the engine hands in a writer that queues it to a thread.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        sources: tuple[Channel] | tuple[Channel, Channel],
        now: float,
        stereo: bool = True,
        flush_interval: float = 0.5,
        margin: float = 0.2,
        durable: bool = False,
        first_flush: float | None = None,
        writer: Callable[[int], WavSink] | None = None,
    ) -> None:
        self.sources = sources
        self.channels = 2 if stereo and len(sources) == 2 else 1
        self.rate = RATE
        self.flush_interval = flush_interval
        self.margin = margin
        self.writer: WavSink = (
            writer(self.channels)
            if writer is not None
            else WavWriter(path, self.channels, RATE, durable=durable)
        )
        self.state = RecordingState.RECORDING
        self.transitions: list[tuple[RecordingState, float]] = [(RecordingState.RECORDING, now)]
        self.start = now
        self._consumed = 0  # samples of the recording clock taken from the channels
        self._next_flush = now + flush_interval if first_flush is None else first_flush

    @property
    def path(self) -> str:
        return self.writer.path

    def _check(self, target: RecordingState) -> None:
        if target not in _TRANSITIONS.get(self.state, set()):
            raise IllegalTransition("recording", self.state.value, target.value)

    def _transition(self, target: RecordingState, now: float) -> None:
        self._check(target)
        self.state = target
        self.transitions.append((target, now))

    def due(self, now: float) -> bool:
        return now >= self._next_flush

    def flush(self, now: float, margin: float | None = None) -> None:
        """Write the audio of the recording clock up to ``now - margin`` and patch the header."""
        self._next_flush = now + self.flush_interval
        lag = self.margin if margin is None else margin
        target = int((now - lag - self.start) * RATE) // FRAME * FRAME
        count = target - self._consumed
        if count > 0:
            parts = [source.take(count) for source in self.sources]
            self._consumed = target
            if self.state is RecordingState.RECORDING:
                self.writer.append(_combine(parts, self.channels))
        self.writer.flush()

    def pause(self, now: float) -> None:
        """Write what was said up to now; nothing said until resume() is kept."""
        self._check(RecordingState.PAUSED)
        self.flush(now, margin=0.0)
        self._transition(RecordingState.PAUSED, now)
        for source in self.sources:
            source.pause()

    def resume(self, now: float) -> None:
        self.flush(now, margin=0.0)  # the recording clock skips the pause, nothing written
        self._transition(RecordingState.RECORDING, now)
        for source in self.sources:
            source.resume()

    def stop(self, now: float) -> tuple[str, float, int]:
        """Write what is left and close the file: (path, duration seconds, bytes).

        With a queued writer the bytes are those handed over; the file's own size is
        known once the writer has closed it.
        """
        if self.state is not RecordingState.STOPPED:
            self.flush(now, margin=0.0)
        self._transition(RecordingState.STOPPED, now)
        self.writer.close()
        return self.path, self.duration_s, self.writer.size

    @property
    def duration_s(self) -> float:
        return self.writer.frames / RATE


def _combine(parts: list[PCM], channels: int) -> bytes:
    if len(parts) == 1:
        out: bytes = parts[0].astype("<i2", copy=False).tobytes()
    elif channels == 2:
        out = np.stack(parts, axis=1).astype("<i2", copy=False).tobytes()
    else:
        mixed = np.clip(parts[0].astype(np.int32) + parts[1], -32768, 32767)
        out = mixed.astype("<i2").tobytes()
    return out


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
