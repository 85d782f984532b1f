"""Telephony audio helpers: int16 mono PCM buffers, WAV reading/writing, soxr resampling."""

from __future__ import annotations

import io
import struct
import wave
from dataclasses import dataclass

import numpy as np
import soxr
from numpy.typing import NDArray

from cloudcc.ai.exceptions import AudioFormatError

TELEPHONY_RATE = 8000
PCM = NDArray[np.int16]


@dataclass(frozen=True, slots=True, eq=False)
class Audio:
    """Mono 16-bit PCM samples at ``rate`` Hz."""

    samples: PCM
    rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / self.rate

    def rms(self) -> float:
        """Root mean square level (0..32768)."""
        if len(self.samples) == 0:
            return 0.0
        return float(np.sqrt(np.mean(self.samples.astype(np.float64) ** 2)))

    def to_wav(self) -> bytes:
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(self.rate)
            w.writeframes(self.samples.astype("<i2").tobytes())
        return buf.getvalue()


def resample(samples: PCM, from_rate: int, to_rate: int) -> PCM:
    """High-quality resampling (soxr) of int16 PCM, e.g. 22050 → 8000 or 8000 → 16000."""
    if from_rate == to_rate:
        return samples.astype(np.int16, copy=False)
    if len(samples) == 0:
        return np.zeros(0, dtype=np.int16)
    out = soxr.resample(samples.astype(np.float32), from_rate, to_rate, quality="HQ")
    result: PCM = np.clip(np.round(out), -32768, 32767).astype(np.int16)
    return result


def pcm_from_bytes(data: bytes) -> PCM:
    """Little-endian int16 samples from raw bytes."""
    if len(data) % 2:
        raise AudioFormatError(f"PCM16 needs an even number of bytes, got {len(data)}")
    return np.frombuffer(data, dtype="<i2").astype(np.int16)


def read_wav(data: bytes) -> Audio:
    """Parse a PCM16 WAV, tolerating the bogus sizes of streamed WAVs (``espeak-ng --stdout``)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioFormatError("not a RIFF/WAVE file")
    pos = 12
    fmt: tuple[int, int, int, int] | None = None
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        body = pos + 8
        if chunk_id == b"fmt ":
            if size < 16:
                raise AudioFormatError("WAV fmt chunk too short")
            audio_format, channels, rate, _, _, bits = struct.unpack(
                "<HHIIHH", data[body : body + 16]
            )
            fmt = (audio_format, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise AudioFormatError("WAV data chunk before fmt chunk")
            audio_format, channels, rate, bits = fmt
            if channels < 1 or not 1 <= rate <= 384_000:
                raise AudioFormatError(f"WAV has {channels} channels at {rate} Hz")
            if audio_format != 1 or bits != 16:
                raise AudioFormatError(
                    f"WAV must be 16-bit PCM, got format {audio_format}/{bits} bits"
                )
            end = min(body + size, len(data))
            raw = data[body:end]
            raw = raw[: len(raw) - len(raw) % (2 * channels)]
            samples = pcm_from_bytes(raw)
            if channels > 1:
                samples = samples.reshape(-1, channels).mean(axis=1).astype(np.int16)
            return Audio(samples, rate)
        pos = body + size + (size & 1)
    raise AudioFormatError("WAV has no data chunk")
