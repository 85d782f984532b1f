"""Jitter buffer and packet loss concealment for legs that are mixed or recorded.

The buffer is addressed by RTP timestamp (RFC 3550 §5.1), so packets of mixed
sizes (20 and 30 ms) and reordering are handled; it hands out fixed 20 ms frames
of payload bytes (G.711: one byte per sample). Comfort noise (RFC 3389) is
remembered as a level and played instead of concealment. The concealer follows
the idea of ITU-T G.711 Appendix I: repeat the last pitch period, fade out over
60 ms, and cross-fade back into real audio, so a lost packet is not a click.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class ComfortNoise:
    """RFC 3389 §3: noise level in -dBov (0..127) to generate until audio resumes."""

    level_dbov: int


class JitterBuffer:
    """Reorders packets by timestamp and hands out one frame per tick."""

    def __init__(
        self,
        frame_samples: int = 160,
        target_ms: int = 40,
        max_ms: int = 300,
        rate: int = 8000,
        bytes_per_sample: int = 1,
    ) -> None:
        self.frame = frame_samples
        self.bps = bytes_per_sample
        self.target = target_ms * rate // 1000
        self.max = max_ms * rate // 1000
        self._packets: dict[int, bytes | ComfortNoise] = {}
        self._keys: list[int] = []
        self._playout: int | None = None
        self._last_ext: int | None = None
        self._noise: ComfortNoise | None = None
        self.late = 0
        self.duplicates = 0
        self.dropped_overflow = 0
        self.resyncs = 0

    def reset(self) -> None:
        """Forget everything (new source or re-configuration)."""
        self._packets.clear()
        self._keys.clear()
        self._playout = None
        self._last_ext = None
        self._noise = None

    def _unwrap(self, ts: int) -> int:
        last = self._last_ext
        if last is None:
            ext = ts
        else:
            ext = last + ((ts - (last & 0xFFFFFFFF) + 0x80000000) & 0xFFFFFFFF) - 0x80000000
        if last is None or ext > last:
            self._last_ext = ext
        return ext

    def put(self, timestamp: int, payload: bytes | ComfortNoise) -> bool:
        """Add a packet's payload (or a comfort-noise level); False when dropped."""
        last = self._last_ext
        playout = self._playout
        if last is not None and playout is not None and type(payload) is bytes:
            ext = last + ((timestamp - (last & 0xFFFFFFFF) + 0x80000000) & 0xFFFFFFFF) - 0x80000000
            if last < ext and playout <= ext and ext - playout <= self.max:
                # the usual case: the newest packet so far, in the window
                self._last_ext = ext
                self._packets[ext] = payload
                self._keys.append(ext)
                return True
        return self._put(timestamp, payload)

    def _put(self, timestamp: int, payload: bytes | ComfortNoise) -> bool:
        ext = self._unwrap(timestamp)
        length = 0 if isinstance(payload, ComfortNoise) else len(payload) // self.bps
        if self._playout is None:
            self._playout = ext - self.target
        elif ext + max(length, 1) <= self._playout:
            if self._keys:
                self.late += 1
                return False
            # starved and behind: the sender's clock or timestamps moved; follow them
            self._playout = ext - self.target
            self.resyncs += 1
        elif ext - self._playout > self.max:
            self._playout = ext - self.target
            self._drop_before(self._playout)
            self.resyncs += 1
        if ext in self._packets:
            self.duplicates += 1
            return False
        self._packets[ext] = payload
        keys = self._keys
        if not keys or ext > keys[-1]:
            keys.append(ext)  # the usual case: in order
        else:
            bisect.insort(keys, ext)
        return True

    def _drop_before(self, point: int) -> None:
        while self._keys and self._keys[0] < point:
            del self._packets[self._keys.pop(0)]

    @property
    def depth_samples(self) -> int:
        """How far the newest packet reaches beyond the playout point."""
        if self._playout is None or not self._keys:
            return 0
        last = self._keys[-1]
        item = self._packets[last]
        length = 0 if isinstance(item, ComfortNoise) else len(item) // self.bps
        return last + length - self._playout

    def pop(self) -> bytes | ComfortNoise | None:
        """The next frame: payload bytes, a comfort-noise level, or None (nothing: conceal)."""
        p = self._playout
        if p is None:
            return None
        end = p + self.frame
        self._playout = end
        keys = self._keys
        packets = self._packets
        if not keys or keys[0] >= end:
            return self._noise if self._noise is not None else None
        first = keys[0]
        item = packets[first]
        # fast path: exactly one aligned full frame
        if first == p and not isinstance(item, ComfortNoise) and len(item) == self.frame * self.bps:
            del keys[0]
            del packets[first]
            self._noise = None
            self._control_depth()
            return item
        out = bytearray()
        cursor = p
        bps = self.bps
        while keys and keys[0] < end:
            k = keys[0]
            item = packets[k]
            if isinstance(item, ComfortNoise):
                self._noise = item
                del keys[0]
                del packets[k]
                continue
            k_end = k + len(item) // bps
            if k_end <= cursor:
                del keys[0]
                del packets[k]
                continue
            self._noise = None
            if k > cursor:
                _fill(out, (k - cursor) * bps)
                cursor = k
            take_end = min(k_end, end)
            out += item[(cursor - k) * bps : (take_end - k) * bps]
            cursor = take_end
            if k_end <= end:
                del keys[0]
                del packets[k]
            else:
                break
        if not out:
            return self._noise
        if cursor < end:
            _fill(out, (end - cursor) * bps)
        self._control_depth()
        return bytes(out)

    def _control_depth(self) -> None:
        """Keep latency bounded when the sender's clock runs faster than ours."""
        excess = self.depth_samples - self.max
        if excess > 0 and self._playout is not None:
            self._playout += excess
            self._drop_before(self._playout - self.frame)
            self.dropped_overflow += 1


def _fill(out: bytearray, size: int) -> None:
    """Fill a gap inside a frame by repeating the bytes just before it (sample repeat)."""
    if not out:
        out += b"\x00" * size  # replaced by concealment only at frame level
        return
    chunk = bytes(out[-min(len(out), size) :])
    while size > 0:
        piece = chunk[:size]
        out += piece
        size -= len(piece)


class Concealer:
    """Packet loss concealment on PCM frames (waveform repetition, G.711 Appendix I style).

    Good frames are only referenced (no copy), so a leg that loses nothing costs
    next to nothing; the pitch search runs once per loss burst.
    """

    MIN_LAG: Final = 20  # 400 Hz
    MAX_LAG: Final = 120  # 66 Hz
    FADE_START: Final = 80  # samples (10 ms) at full level
    FADE_LEN: Final = 400  # then linear fade to zero over 50 ms
    MERGE: Final = 40  # 5 ms cross-fade back into real audio

    def __init__(self, frame_samples: int = 160) -> None:
        self.frame = frame_samples
        self._prev: NDArray[np.int16] | None = None
        self._last: NDArray[np.int16] | None = None
        self._lost = 0  # samples concealed in the current run
        self._period: NDArray[np.float32] | None = None
        self._phase = 0
        self.concealed_frames = 0
        self._silence = np.zeros(frame_samples, dtype=np.int16)
        self._silence.flags.writeable = False

    @property
    def concealing(self) -> bool:
        return self._lost > 0

    def good(self, pcm: NDArray[np.int16]) -> NDArray[np.int16]:
        """A real frame: returned as is, or cross-faded after a concealment."""
        if self._lost:
            if self._period is not None:
                idx = np.arange(self._lost, self._lost + self.MERGE, dtype=np.float32)
                gain = np.clip(1.0 - (idx - self.FADE_START) / self.FADE_LEN, 0.0, 1.0)
                tail = self._synth(self.MERGE) * gain
                ramp = np.linspace(0.0, 1.0, self.MERGE, dtype=np.float32)
                merged = pcm.astype(np.float32)
                merged[: self.MERGE] = tail * (1 - ramp) + merged[: self.MERGE] * ramp
                pcm = np.clip(merged, -32768, 32767).astype(np.int16)
            self._lost = 0
            self._period = None
        self._prev = self._last
        self._last = pcm
        return pcm

    def conceal(self) -> NDArray[np.int16]:
        """A frame standing in for a lost one."""
        if self._last is None or self._lost >= self.FADE_START + self.FADE_LEN:
            self._lost += self.frame
            return self._silence  # nothing heard yet, or faded out: silence, no work
        if self._period is None:
            self._period = self._pick_period()
            self._phase = 0
        out = self._synth(self.frame)
        idx = np.arange(self._lost, self._lost + self.frame, dtype=np.float32)
        gain = np.clip(1.0 - (idx - self.FADE_START) / self.FADE_LEN, 0.0, 1.0)
        self._lost += self.frame
        self.concealed_frames += 1
        pcm = np.clip(out * gain, -32768, 32767).astype(np.int16)
        return pcm

    def _pick_period(self) -> NDArray[np.float32]:
        assert self._last is not None
        parts = [self._last] if self._prev is None else [self._prev, self._last]
        h = np.concatenate(parts).astype(np.float32)
        n = 2 * self.MIN_LAG
        ref = h[-n:]
        max_lag = min(self.MAX_LAG, len(h) - n)
        # normalised cross-correlation of the last n samples with each lagged window
        windows = np.lib.stride_tricks.sliding_window_view(h[: len(h) - self.MIN_LAG], n)
        lags = np.arange(self.MIN_LAG, max_lag + 1)
        cands = windows[len(h) - n - lags]
        num = cands @ ref
        den = np.sqrt(np.einsum("ij,ij->i", cands, cands) * float(ref @ ref)) + 1e-9
        score = num / den
        best_lag = int(lags[int(np.argmax(score + lags * -1e-4))])  # prefer the shortest on ties
        return h[-best_lag:].copy()

    def _synth(self, count: int) -> NDArray[np.float32]:
        period = self._period
        assert period is not None
        idx = (np.arange(count) + self._phase) % len(period)
        self._phase = (self._phase + count) % len(period)
        return period[idx]


def comfort_noise(level_dbov: int, samples: int, rng: np.random.Generator) -> NDArray[np.int16]:
    """White noise at ``-level_dbov`` dBov (RFC 3389 §3: 0 dBov is a full-scale square wave)."""
    rms = 32767 * 10 ** (-level_dbov / 20)
    return np.clip(rng.normal(0.0, rms, samples), -32768, 32767).astype(np.int16)
