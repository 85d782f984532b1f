"""G.711 µ-law and A-law (ITU-T G.711) as numpy lookup tables.

The tables are built from the CCITT reference algorithm (Sun's g711.c as used by
CPython's audioop: 14-bit µ-law, 13-bit A-law), so results are byte-exact with it.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray

from .exceptions import FrameSizeError

# Segment end points of the reference algorithm.
_SEG_UEND = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_SEG_AEND = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)

ULAW_SILENCE: Final = 0xFF
ALAW_SILENCE: Final = 0xD5


def _all_pcm_by_uint16() -> NDArray[np.int32]:
    """Every int16 value, ordered by its uint16 bit pattern (the tables' index)."""
    return np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)


def _build_ulaw_encode() -> NDArray[np.uint8]:
    x = _all_pcm_by_uint16() >> 2  # 14-bit linear
    negative = x < 0
    mask = np.where(negative, 0x7F, 0xFF)
    mag = np.minimum(np.where(negative, -x, x), 8159) + 0x21  # clip, bias
    seg = np.searchsorted(_SEG_UEND, mag, side="left")
    segc = np.minimum(seg, 7)
    uval = (segc << 4) | ((mag >> (segc + 1)) & 0xF)
    out = np.where(seg >= 8, 0x7F ^ mask, uval ^ mask)
    return out.astype(np.uint8)


def _build_ulaw_decode() -> NDArray[np.int16]:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = ((u & 0x0F) << 3) + 0x84
    t <<= (u & 0x70) >> 4
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


def _build_alaw_encode() -> NDArray[np.uint8]:
    x = _all_pcm_by_uint16() >> 3  # 13-bit linear
    positive = x >= 0
    mask = np.where(positive, 0xD5, 0x55)
    mag = np.where(positive, x, -x - 1)
    seg = np.searchsorted(_SEG_AEND, mag, side="left")
    segc = np.minimum(seg, 7)
    shift = np.where(segc < 2, 1, segc)
    aval = (segc << 4) | ((mag >> shift) & 0xF)
    out = np.where(seg >= 8, 0x7F ^ mask, aval ^ mask)
    return out.astype(np.uint8)


def _build_alaw_decode() -> NDArray[np.int16]:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, t + 0x108)
    t = np.where(seg > 1, t << np.maximum(seg - 1, 0), t)
    return np.where(a & 0x80, t, -t).astype(np.int16)


#: index with ``pcm.view(np.uint16)``; value is the encoded byte
ULAW_ENCODE: Final = _build_ulaw_encode()
ALAW_ENCODE: Final = _build_alaw_encode()
#: index with the encoded byte; value is int16 PCM
ULAW_DECODE: Final = _build_ulaw_decode()
ALAW_DECODE: Final = _build_alaw_decode()
#: byte-to-byte transcoding tables for ``bytes.translate`` (PCMU <-> PCMA relay)
ULAW_TO_ALAW: Final = ALAW_ENCODE[ULAW_DECODE.view(np.uint16)].tobytes()
ALAW_TO_ULAW: Final = ULAW_ENCODE[ALAW_DECODE.view(np.uint16)].tobytes()


def _as_int16(pcm: NDArray[np.int16]) -> NDArray[np.int16]:
    if pcm.dtype != np.int16:
        raise FrameSizeError("int16 PCM", str(pcm.dtype))
    return pcm


def ulaw_encode(pcm: NDArray[np.int16]) -> bytes:
    """Encode int16 PCM to µ-law bytes."""
    return ULAW_ENCODE[_as_int16(pcm).view(np.uint16)].tobytes()


def alaw_encode(pcm: NDArray[np.int16]) -> bytes:
    """Encode int16 PCM to A-law bytes."""
    return ALAW_ENCODE[_as_int16(pcm).view(np.uint16)].tobytes()


def ulaw_decode(data: bytes) -> NDArray[np.int16]:
    """Decode µ-law bytes to int16 PCM."""
    return ULAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


def alaw_decode(data: bytes) -> NDArray[np.int16]:
    """Decode A-law bytes to int16 PCM."""
    return ALAW_DECODE[np.frombuffer(data, dtype=np.uint8)]
