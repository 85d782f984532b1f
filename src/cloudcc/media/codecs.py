"""Audio codecs behind one interface, and resampling between rates.

G.711 (ITU-T G.711, RTP payload types 0 and 8, RFC 3551 §4.5.14) is native and
stateless; G.722 (RFC 3551 §4.5.2: 16 kHz audio, 8 kHz RTP clock) and Opus
(RFC 7587: 48 kHz clock) go through PyAV/ffmpeg and keep state, so every leg
direction gets its own instance from :func:`create_codec`. Resampling uses soxr.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Final

import numpy as np
import soxr
from numpy.typing import NDArray

from . import g711
from .exceptions import FrameSizeError, UnsupportedCodec

PCM = NDArray[np.int16]

#: the rate of the mixing bus: every leg's audio meets at 8 kHz int16
BUS_RATE: Final = 8000


class Codec(ABC):
    """One direction of one codec: ``encode`` PCM at ``sample_rate`` to a payload and back."""

    name: ClassVar[str]
    sample_rate: ClassVar[int]
    #: RTP timestamp units per second (differs from sample_rate for G.722 and Opus)
    clock_rate: ClassVar[int]
    #: static RTP payload type (RFC 3551 table 4), or None for dynamic
    static_payload_type: ClassVar[int | None]

    @abstractmethod
    def encode(self, pcm: PCM) -> bytes:
        """Encode one frame of int16 PCM at ``sample_rate``."""

    @abstractmethod
    def decode(self, payload: bytes) -> PCM:
        """Decode one RTP payload to int16 PCM at ``sample_rate``."""

    def timestamp_units(self, samples: int) -> int:
        """RTP timestamp increment for ``samples`` samples of PCM."""
        return samples * self.clock_rate // self.sample_rate


class G711Codec(Codec):
    """G.711: one byte per sample, so payload slices are sample slices."""

    sample_rate: ClassVar[int] = 8000
    clock_rate: ClassVar[int] = 8000
    silence_byte: ClassVar[int]
    encode_table: ClassVar[NDArray[np.uint8]]
    decode_table: ClassVar[NDArray[np.int16]]

    def encode(self, pcm: PCM) -> bytes:
        if pcm.dtype != np.int16:
            raise FrameSizeError("int16 PCM", str(pcm.dtype))
        return self.encode_table[pcm.view(np.uint16)].tobytes()

    def decode(self, payload: bytes) -> PCM:
        return self.decode_table[np.frombuffer(payload, dtype=np.uint8)]


class Pcmu(G711Codec):
    name = "PCMU"
    static_payload_type = 0
    silence_byte = g711.ULAW_SILENCE
    encode_table = g711.ULAW_ENCODE
    decode_table = g711.ULAW_DECODE


class Pcma(G711Codec):
    name = "PCMA"
    static_payload_type = 8
    silence_byte = g711.ALAW_SILENCE
    encode_table = g711.ALAW_ENCODE
    decode_table = g711.ALAW_DECODE


class PyAvCodec(Codec):
    """A codec from ffmpeg through PyAV (stateful: one instance per direction)."""

    av_name: ClassVar[str]

    def __init__(self) -> None:
        import av  # imported lazily: only wideband legs pay for it

        self._av: Any = av
        self._encoder: Any = None
        self._decoder: Any = None
        self._pts = 0

    def _open(self, mode: str) -> Any:
        ctx = self._av.CodecContext.create(self.av_name, mode)
        ctx.sample_rate = self.sample_rate
        ctx.layout = "mono"
        if mode == "w":
            ctx.format = "s16"
        return ctx

    def encode(self, pcm: PCM) -> bytes:
        if pcm.dtype != np.int16:
            raise FrameSizeError("int16 PCM", str(pcm.dtype))
        if self._encoder is None:
            self._encoder = self._open("w")
        frame = self._av.AudioFrame.from_ndarray(
            np.ascontiguousarray(pcm).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = self.sample_rate
        frame.pts = self._pts
        self._pts += len(pcm)
        return b"".join(bytes(p) for p in self._encoder.encode(frame))

    def decode(self, payload: bytes) -> PCM:
        if self._decoder is None:
            self._decoder = self._open("r")
        parts: list[PCM] = []
        for frame in self._decoder.decode(self._av.Packet(payload)):
            array = frame.to_ndarray().reshape(-1)
            if array.dtype != np.int16:  # float planar decoders (opus): scale to int16
                array = np.clip(array * 32768.0, -32768, 32767).astype(np.int16)
            parts.append(array)
        if not parts:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(parts)


class G722(PyAvCodec):
    name = "G722"
    av_name = "g722"
    sample_rate = 16000
    clock_rate = 8000  # RFC 3551 §4.5.2: an historical error kept for compatibility
    static_payload_type = 9


class Opus(PyAvCodec):
    name = "opus"
    av_name = "libopus"
    sample_rate = 48000
    clock_rate = 48000  # RFC 7587 §4.1
    static_payload_type = None


_CODECS: Final[dict[str, type[Codec]]] = {
    "PCMU": Pcmu,
    "PCMA": Pcma,
    "G722": G722,
    "OPUS": Opus,
}


def create_codec(name: str) -> Codec:
    """A fresh codec instance by SDP encoding name (case-insensitive)."""
    try:
        cls = _CODECS[name.upper()]
    except KeyError:
        raise UnsupportedCodec(name) from None
    return cls()


def is_g711(name: str) -> bool:
    return name.upper() in ("PCMU", "PCMA")


class Resampler:
    """Streaming resampler (soxr) for one direction of one leg; keeps filter state."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream = (
            None
            if in_rate == out_rate
            else soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16", quality="HQ")
        )

    def process(self, pcm: PCM, last: bool = False) -> PCM:
        """Resample a chunk; output length follows the rate ratio over time, not per call."""
        if self._stream is None:
            return pcm
        out: PCM = self._stream.resample_chunk(pcm, last=last)
        return out


def resample(pcm: PCM, in_rate: int, out_rate: int) -> PCM:
    """Resample a whole signal at once."""
    if in_rate == out_rate:
        return pcm
    out: PCM = soxr.resample(pcm, in_rate, out_rate, quality="HQ")
    return out.astype(np.int16, copy=False)
