"""G.711 tables against the CCITT reference algorithm (and audioop, which implements it)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from cloudcc.media import g711
from cloudcc.media.codecs import create_codec, resample
from cloudcc.media.exceptions import FrameSizeError, UnsupportedCodec
from cloudcc.media.testing import sine, tone_level_dbfs

ALL_PCM = np.arange(-32768, 32768, dtype=np.int16)
SEG_UEND = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]
SEG_AEND = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF]


def _search(value: int, table: list[int]) -> int:
    for i, end in enumerate(table):
        if value <= end:
            return i
    return len(table)


def ref_linear2ulaw(pcm: int) -> int:
    """Sun/CCITT g711.c, 14-bit input (pcm >> 2), as CPython's audioop uses it."""
    val = pcm >> 2
    if val < 0:
        val, mask = -val, 0x7F
    else:
        mask = 0xFF
    val = min(val, 8159) + 0x21
    seg = _search(val, SEG_UEND)
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((val >> (seg + 1)) & 0xF)) ^ mask


def ref_linear2alaw(pcm: int) -> int:
    val = pcm >> 3
    if val >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        val = -val - 1
    seg = _search(val, SEG_AEND)
    if seg >= 8:
        return 0x7F ^ mask
    aval = seg << 4
    aval |= ((val >> 1) if seg < 2 else (val >> seg)) & 0xF
    return aval ^ mask


def ref_ulaw2linear(u: int) -> int:
    u = ~u & 0xFF
    t = ((u & 0x0F) << 3) + 0x84
    t <<= (u & 0x70) >> 4
    return 0x84 - t if u & 0x80 else t - 0x84


def ref_alaw2linear(a: int) -> int:
    a ^= 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if a & 0x80 else -t


def test_ulaw_encoding_is_byte_exact_with_the_ccitt_algorithm_for_every_input() -> None:
    expected = bytes(ref_linear2ulaw(int(x)) for x in ALL_PCM)
    assert g711.ulaw_encode(ALL_PCM) == expected


def test_alaw_encoding_is_byte_exact_with_the_ccitt_algorithm_for_every_input() -> None:
    expected = bytes(ref_linear2alaw(int(x)) for x in ALL_PCM)
    assert g711.alaw_encode(ALL_PCM) == expected


def test_decoding_matches_the_ccitt_algorithm_for_every_code() -> None:
    codes = bytes(range(256))
    assert g711.ulaw_decode(codes).tolist() == [ref_ulaw2linear(c) for c in codes]
    assert g711.alaw_decode(codes).tolist() == [ref_alaw2linear(c) for c in codes]


def test_tables_agree_with_audioop_where_it_still_exists() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")
    raw = ALL_PCM.tobytes()
    assert g711.ulaw_encode(ALL_PCM) == audioop.lin2ulaw(raw, 2)
    assert g711.alaw_encode(ALL_PCM) == audioop.lin2alaw(raw, 2)
    codes = bytes(range(256))
    assert g711.ulaw_decode(codes).tobytes() == audioop.ulaw2lin(codes, 2)
    assert g711.alaw_decode(codes).tobytes() == audioop.alaw2lin(codes, 2)


def test_ulaw_alaw_translation_tables_equal_decode_then_encode() -> None:
    codes = bytes(range(256))
    assert codes.translate(g711.ULAW_TO_ALAW) == g711.alaw_encode(g711.ulaw_decode(codes))
    assert codes.translate(g711.ALAW_TO_ULAW) == g711.ulaw_encode(g711.alaw_decode(codes))


def test_silence_codes_decode_to_near_zero() -> None:
    assert g711.ulaw_decode(bytes([g711.ULAW_SILENCE]))[0] == 0
    assert abs(int(g711.alaw_decode(bytes([g711.ALAW_SILENCE]))[0])) <= 8


def test_codec_rejects_pcm_that_is_not_int16() -> None:
    with pytest.raises(FrameSizeError):
        create_codec("PCMU").encode(np.zeros(160, dtype=np.float32))  # type: ignore[arg-type]


def test_unknown_codec_name_raises_unsupported_codec() -> None:
    with pytest.raises(UnsupportedCodec):
        create_codec("GSM")


@pytest.mark.parametrize("name", ["PCMU", "PCMA"])
def test_g711_keeps_a_tone_level_within_a_tenth_of_a_db(name: str) -> None:
    codec = create_codec(name)
    tone = sine(1000, 1.0, -10.0)
    assert abs(tone_level_dbfs(codec.decode(codec.encode(tone)), 1000) - -10.0) < 0.1


def test_g722_through_pyav_carries_a_wideband_tone() -> None:
    codec = create_codec("G722")
    tone = sine(5000, 1.0, -10.0, rate=16000)  # above the narrowband limit
    out = np.concatenate(
        [codec.decode(codec.encode(tone[i : i + 320])) for i in range(0, len(tone), 320)]
    )
    assert len(out) == len(tone)
    assert abs(tone_level_dbfs(out[3200:], 5000, rate=16000) - -10.0) < 1.5
    assert codec.timestamp_units(320) == 160  # RFC 3551 §4.5.2: 8 kHz RTP clock


def test_resampling_8k_to_16k_and_back_keeps_a_tone() -> None:
    tone = sine(1000, 1.0, -10.0)
    up = resample(tone, 8000, 16000)
    assert len(up) == 16000
    assert abs(tone_level_dbfs(up, 1000, rate=16000) - -10.0) < 0.2
    down = resample(up, 16000, 8000)
    assert abs(tone_level_dbfs(down, 1000) - -10.0) < 0.2
