"""DTMF: RFC 4733 telephone-events in and out, and in-band detection (Goertzel, ITU-T Q.23/Q.24).

Every detected key press becomes one :class:`DtmfEvent`, whatever carried it
(RFC 4733 packets, tones in the audio, or a SIP INFO the contact layer injects).
"""

from __future__ import annotations

import enum
import struct
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from .exceptions import InvalidDtmfDigit, TelephoneEventParseError

#: RFC 4733 §3.2 event codes 0-15
DIGITS: Final = "0123456789*#ABCD"
ROW_HZ: Final = (697.0, 770.0, 852.0, 941.0)
COL_HZ: Final = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD: Final = ("123A", "456B", "789C", "*0#D")


class DtmfSource(enum.Enum):
    RFC4733 = "rfc4733"
    INBAND = "inband"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    digit: str
    duration_ms: int
    source: DtmfSource


def event_code(digit: str) -> int:
    """RFC 4733 event code of a digit; raises InvalidDtmfDigit."""
    code = DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if code < 0:
        raise InvalidDtmfDigit(digit)
    return code


def validate_digits(digits: str) -> str:
    for d in digits:
        event_code(d)
    return digits.upper()


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """The 4-octet payload of RFC 4733 §2.3."""

    event: int
    end: bool
    volume: int  # 0..63, -dBm0
    duration: int  # timestamp units since the event began

    _FORMAT = struct.Struct("!BBH")

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        if len(payload) < 4:
            raise TelephoneEventParseError("payload shorter than 4 octets", len(payload))
        event, flags, duration = cls._FORMAT.unpack_from(payload)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def serialize(self) -> bytes:
        flags = (0x80 if self.end else 0) | (self.volume & 0x3F)
        return self._FORMAT.pack(self.event, flags, self.duration & 0xFFFF)


class TelephoneEventReceiver:
    """Turns a stream of RFC 4733 packets into one DtmfEvent per key press.

    An event is identified by (SSRC, RTP timestamp) (§2.5.2.1); the three
    redundant end packets (§2.5.1.4) and retransmitted updates of an event
    already reported are ignored, so a digit is never doubled.
    """

    def __init__(self, clock_rate: int = 8000, end_timeout: float = 0.5) -> None:
        self.clock_rate = clock_rate
        self.end_timeout = end_timeout
        self._current: tuple[int, int] | None = None
        self._current_code = 0
        self._current_duration = 0
        self._last_packet = 0.0
        self._finished: OrderedDict[tuple[int, int], float] = OrderedDict()

    def receive(self, ssrc: int, timestamp: int, payload: bytes, now: float) -> list[DtmfEvent]:
        """Feed one telephone-event payload; returns the events completed by it."""
        te = TelephoneEvent.parse(payload)
        key = (ssrc, timestamp)
        out: list[DtmfEvent] = []
        ended_at = self._finished.get(key)
        if ended_at is not None:
            if now - ended_at < 2.0:
                return out  # redundant end packet or late retransmission
            del self._finished[key]
        if self._current is not None and self._current != key:
            out.extend(self._finish())  # the previous event lost all its end packets
        if te.event >= len(DIGITS):
            return out  # not a keypad event (flash, tones): ignored
        self._current = key
        self._current_code = te.event
        self._current_duration = max(self._current_duration, te.duration)
        self._last_packet = now
        if te.end:
            self._current_duration = te.duration
            out.extend(self._finish(now))
        return out

    def poll(self, now: float) -> list[DtmfEvent]:
        """Report an event whose end packets never came, once it has been silent a while."""
        if self._current is not None and now - self._last_packet > self.end_timeout:
            return self._finish(now)
        return []

    def _finish(self, now: float | None = None) -> list[DtmfEvent]:
        assert self._current is not None
        self._finished[self._current] = self._last_packet if now is None else now
        while len(self._finished) > 32:
            self._finished.popitem(last=False)
        event = DtmfEvent(
            DIGITS[self._current_code],
            self._current_duration * 1000 // self.clock_rate,
            DtmfSource.RFC4733,
        )
        self._current = None
        self._current_duration = 0
        return [event]


class SenderState(enum.Enum):
    IDLE = "idle"
    TONE = "tone"  # sending updates of the current event
    ENDING = "ending"  # sending the redundant end packets
    GAP = "gap"  # pause between digits, audio flows


@dataclass(frozen=True, slots=True)
class EventPacket:
    payload: bytes
    marker: bool
    #: True on the first packet of an event: the caller fixes the event's timestamp
    starts_event: bool


class TelephoneEventSender:
    """Generates RFC 4733 packets for queued digits, one call to ``tick()`` per frame.

    Each digit: a first packet with the marker bit, updates every frame with a
    growing duration, then the final packet with the E bit sent three times
    (§2.5.1.4), then a gap of ``gap_ms`` during which audio flows again.
    """

    END_REPEATS: Final = 3

    def __init__(
        self,
        frame_samples: int = 160,
        duration_ms: int = 100,
        gap_ms: int = 60,
        volume: int = 10,
        clock_rate: int = 8000,
    ) -> None:
        self.frame_samples = frame_samples
        self.tone_frames = max(1, duration_ms * clock_rate // 1000 // frame_samples)
        self.gap_frames = max(1, gap_ms * clock_rate // 1000 // frame_samples)
        self.volume = volume
        self.state = SenderState.IDLE
        self._queue: list[int] = []
        self._code = 0
        self._frame = 0
        self._ends = 0

    def queue(self, digits: str) -> None:
        self._queue.extend(event_code(d) for d in digits)

    @property
    def busy(self) -> bool:
        """Whether this frame belongs to an event (audio must not be sent)."""
        return self.state in (SenderState.TONE, SenderState.ENDING) or (
            self.state is SenderState.IDLE and bool(self._queue)
        )

    @property
    def active(self) -> bool:
        """Whether digits are in progress or queued (including gaps between them)."""
        return self.state is not SenderState.IDLE or bool(self._queue)

    def tick(self) -> EventPacket | None:
        """The packet to send in this frame, or None (audio frame or idle)."""
        if self.state is SenderState.GAP:
            self._frame += 1
            if self._frame >= self.gap_frames:
                self.state = SenderState.IDLE
            return None
        if self.state is SenderState.IDLE:
            if not self._queue:
                return None
            self._code = self._queue.pop(0)
            self._frame = 0
            self.state = SenderState.TONE
        if self.state is SenderState.TONE:
            self._frame += 1
            duration = self._frame * self.frame_samples
            if self._frame >= self.tone_frames:
                self.state = SenderState.ENDING
                self._ends = 1
                return EventPacket(self._payload(duration, True), False, False)
            return EventPacket(self._payload(duration, False), self._frame == 1, self._frame == 1)
        # ENDING: repeat the final packet, same duration (§2.5.1.4)
        self._ends += 1
        final = self._payload(self.tone_frames * self.frame_samples, True)
        packet = EventPacket(final, False, False)
        if self._ends >= self.END_REPEATS:
            self.state = SenderState.GAP
            self._frame = 0
        return packet

    def _payload(self, duration: int, end: bool) -> bytes:
        return TelephoneEvent(self._code, end, self.volume, duration).serialize()


# In-band detection ---------------------------------------------------------------------------

FREQS: Final = ROW_HZ + COL_HZ


class GoertzelBank:
    """Power of the eight DTMF frequencies in many frames at once (a Goertzel/DFT bank)."""

    def __init__(self, frame_samples: int = 160, rate: int = 8000) -> None:
        n = np.arange(frame_samples)
        phase = 2 * np.pi * np.outer(n, np.array(FREQS)) / rate
        self.frame_samples = frame_samples
        self._basis = np.concatenate([np.cos(phase), np.sin(phase)], axis=1).astype(np.float32)

    def analyse(self, frames: NDArray[np.int16]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """(tone powers (n, 8), frame energies (n,)) in sample²; powers scaled so a pure
        tone's power equals its energy in the frame."""
        x = frames.astype(np.float32).reshape(-1, self.frame_samples)
        proj = x @ self._basis
        powers = (proj[:, :8] ** 2 + proj[:, 8:] ** 2) * (2.0 / self.frame_samples)
        energy = np.einsum("ij,ij->i", x, x)
        return powers.astype(np.float32), energy.astype(np.float32)

    def analyse_overlapped(
        self, previous: NDArray[np.int16], frames: NDArray[np.int16]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Two windows per frame, hop of half a frame: the one straddling the previous and
        the current frame, then the current frame. Shapes (n, 2, 8) and (n, 2)."""
        n, size = frames.shape
        half = size // 2
        straddle = np.concatenate([previous[:, half:], frames[:, :half]], axis=1)
        windows = np.stack([straddle, frames], axis=1).reshape(2 * n, size)
        powers, energy = self.analyse(windows)
        return powers.reshape(n, 2, 8), energy.reshape(n, 2)


class InbandDtmfDetector:
    """Per-leg decision logic over GoertzelBank results: one event per key press.

    Windows of 20 ms are analysed every 10 ms (GoertzelBank.analyse_overlapped). A
    window counts as digit d when its strongest row and column tones hold at least
    half the window's energy, dominate the other rows/columns by 8 dB, twist is within
    ±8 dB and the level is above -40 dBFS per tone. A digit starts after two such
    consecutive windows (30 ms of tone; Q.24 asks that 40 ms be accepted) and ends
    after two windows without it; it is reported at its end with its duration.
    """

    MIN_TONE_POWER: Final = (0.01 * 32768) ** 2 * 160 / 2  # -40 dBFS sine over a frame
    DOMINANCE: Final = 10 ** (8 / 10)
    TWIST: Final = 10 ** (8 / 10)
    CONCENTRATION: Final = 0.5

    def __init__(self, hop_ms: int = 10) -> None:
        self.frame_ms = hop_ms
        self._candidate: str | None = None
        self._candidate_frames = 0
        self._active: str | None = None
        self._active_frames = 0
        self._misses = 0

    def classify(self, powers: NDArray[np.float32], energy: float) -> str | None:
        """The digit a single frame carries, or None."""
        rows = powers[:4]
        cols = powers[4:]
        r = int(np.argmax(rows))
        c = int(np.argmax(cols))
        pr = float(rows[r])
        pc = float(cols[c])
        if pr < self.MIN_TONE_POWER or pc < self.MIN_TONE_POWER:
            return None
        if pr + pc < self.CONCENTRATION * energy:
            return None
        if pr > pc * self.TWIST or pc > pr * self.TWIST:
            return None
        other_rows = float(np.max(np.delete(rows, r)))
        other_cols = float(np.max(np.delete(cols, c)))
        if other_rows * self.DOMINANCE > pr or other_cols * self.DOMINANCE > pc:
            return None
        return KEYPAD[r][c]

    def feed_frame(
        self, powers: NDArray[np.float32], energy: NDArray[np.float32]
    ) -> DtmfEvent | None:
        """Feed one frame's two overlapped windows (rows of analyse_overlapped)."""
        first = self.feed(powers[0], float(energy[0]))
        second = self.feed(powers[1], float(energy[1]))
        return first or second

    def feed(self, powers: NDArray[np.float32], energy: float) -> DtmfEvent | None:
        """Feed one window's analysis; returns an event when a key press ends."""
        digit = self.classify(powers, energy)
        if self._active is not None:
            if digit == self._active:
                self._active_frames += 1 + self._misses
                self._misses = 0
                return None
            self._misses += 1
            if self._misses < 2:
                return None
            event = DtmfEvent(self._active, self._active_frames * self.frame_ms, DtmfSource.INBAND)
            self._active = None
            self._candidate = digit
            self._candidate_frames = 1 if digit else 0
            return event
        if digit is not None and digit == self._candidate:
            self._candidate_frames += 1
            if self._candidate_frames >= 2:
                self._active = digit
                self._active_frames = self._candidate_frames
                self._misses = 0
                self._candidate = None
            return None
        self._candidate = digit
        self._candidate_frames = 1 if digit else 0
        return None


def dtmf_tone(
    digit: str, duration_ms: int, rate: int = 8000, level_dbfs: float = -10.0
) -> NDArray[np.int16]:
    """Two-tone PCM of a DTMF digit, each tone at ``level_dbfs`` (peak)."""
    code = event_code(digit)
    key = DIGITS[code]
    row = next(i for i, keys in enumerate(KEYPAD) if key in keys)
    col = KEYPAD[row].index(key)
    t = np.arange(duration_ms * rate // 1000) / rate
    amplitude = 32767 * 10 ** (level_dbfs / 20)
    wave = amplitude * (np.sin(2 * np.pi * ROW_HZ[row] * t) + np.sin(2 * np.pi * COL_HZ[col] * t))
    return np.clip(wave, -32768, 32767).astype(np.int16)
