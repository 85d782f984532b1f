"""How two legs are joined: relayed packet for packet when they share a codec,
byte-translated between µ-law and A-law, or decoded and re-encoded otherwise."""

from __future__ import annotations

import enum

from . import g711
from .codecs import is_g711


class BridgeMode(enum.Enum):
    RELAY = "relay"  # same codec: payloads pass untouched, headers rewritten
    TRANSLATE = "translate"  # PCMU <-> PCMA: one table lookup per byte, still per packet
    TRANSCODE = "transcode"  # anything else: through the 8 kHz bus, on the tick


def choose_mode(codec_a: str, codec_b: str) -> BridgeMode:
    a, b = codec_a.upper(), codec_b.upper()
    if a == b and is_g711(a):
        return BridgeMode.RELAY
    if is_g711(a) and is_g711(b):
        return BridgeMode.TRANSLATE
    return BridgeMode.TRANSCODE


def translation_table(from_codec: str, to_codec: str) -> bytes | None:
    """``bytes.translate`` table turning one G.711 law into the other (None: same law)."""
    a, b = from_codec.upper(), to_codec.upper()
    if a == b:
        return None
    if (a, b) == ("PCMU", "PCMA"):
        return g711.ULAW_TO_ALAW
    if (a, b) == ("PCMA", "PCMU"):
        return g711.ALAW_TO_ULAW
    raise ValueError(f"no byte translation from {from_codec} to {to_codec}")
