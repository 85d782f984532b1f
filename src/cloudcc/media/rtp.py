"""RTP packets (RFC 3550 §5.1 fixed header, §5.3.1 header extension, padding)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from .exceptions import RtpParseError

RTP_VERSION: Final = 2
HEADER: Final = struct.Struct("!BBHII")
HEADER_SIZE: Final = 12
COMFORT_NOISE_PT: Final = 13  # RFC 3551 table 4 / RFC 3389 §4


@dataclass(frozen=True, slots=True)
class RtpExtension:
    """A header extension (RFC 3550 §5.3.1): 16-bit profile word and 32-bit-aligned data."""

    profile: int
    data: bytes


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: RtpExtension | None = None
    #: number of padding octets including the final count octet (0 = no padding)
    padding: int = 0

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Parse one RTP datagram; raise RtpParseError when it is not valid RTP."""
        size = len(data)
        if size < HEADER_SIZE:
            raise RtpParseError("shorter than the 12-octet fixed header", size)
        b0, b1, seq, ts, ssrc = HEADER.unpack_from(data)
        if b0 >> 6 != RTP_VERSION:
            raise RtpParseError(f"version {b0 >> 6}, expected 2", size)
        cc = b0 & 0x0F
        offset = HEADER_SIZE + 4 * cc
        if offset > size:
            raise RtpParseError(f"CSRC count {cc} runs past the end", size)
        csrcs = struct.unpack_from(f"!{cc}I", data, HEADER_SIZE) if cc else ()
        extension = None
        if b0 & 0x10:
            if offset + 4 > size:
                raise RtpParseError("extension header runs past the end", size)
            profile, words = struct.unpack_from("!HH", data, offset)
            end = offset + 4 + 4 * words
            if end > size:
                raise RtpParseError("extension data runs past the end", size)
            extension = RtpExtension(profile, bytes(data[offset + 4 : end]))
            offset = end
        end = size
        padding = 0
        if b0 & 0x20:
            padding = data[-1]
            if padding == 0 or offset + padding > size:
                raise RtpParseError(f"bad padding count {padding}", size)
            end -= padding
        return cls(
            payload_type=b1 & 0x7F,
            sequence=seq,
            timestamp=ts,
            ssrc=ssrc,
            payload=bytes(data[offset:end]),
            marker=bool(b1 & 0x80),
            csrcs=tuple(csrcs),
            extension=extension,
            padding=padding,
        )

    def serialize(self) -> bytes:
        b0 = (RTP_VERSION << 6) | len(self.csrcs)
        if self.padding:
            b0 |= 0x20
        if self.extension is not None:
            b0 |= 0x10
        b1 = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        parts = [HEADER.pack(b0, b1, self.sequence, self.timestamp, self.ssrc)]
        if self.csrcs:
            parts.append(struct.pack(f"!{len(self.csrcs)}I", *self.csrcs))
        if self.extension is not None:
            data = self.extension.data
            if len(data) % 4:
                data += b"\x00" * (4 - len(data) % 4)
            parts.append(struct.pack("!HH", self.extension.profile, len(data) // 4) + data)
        parts.append(self.payload)
        if self.padding:
            parts.append(b"\x00" * (self.padding - 1) + bytes([self.padding]))
        return b"".join(parts)


def header_fields(data: bytes) -> tuple[int, bool, int, int, int, int]:
    """Fast path: (payload_type, marker, sequence, timestamp, ssrc, payload_offset).

    Raises RtpParseError for datagrams that cannot be RTP; padding is not removed.
    """
    size = len(data)
    if size < HEADER_SIZE:
        raise RtpParseError("shorter than the 12-octet fixed header", size)
    b0, b1, seq, ts, ssrc = HEADER.unpack_from(data)
    if b0 & 0xC0 != 0x80:
        raise RtpParseError(f"version {b0 >> 6}, expected 2", size)
    offset = HEADER_SIZE + 4 * (b0 & 0x0F)
    if b0 & 0x10:
        if offset + 4 > size:
            raise RtpParseError("extension header runs past the end", size)
        offset += 4 + 4 * int.from_bytes(data[offset + 2 : offset + 4], "big")
    if offset > size:
        raise RtpParseError("header runs past the end", size)
    return b1 & 0x7F, bool(b1 & 0x80), seq, ts, ssrc, offset


def payload_of(data: bytes, offset: int) -> bytes:
    """The payload of a datagram whose header ends at ``offset`` (padding removed)."""
    if data[0] & 0x20:
        pad = data[-1]
        if pad == 0 or offset + pad > len(data):
            raise RtpParseError(f"bad padding count {pad}", len(data))
        return bytes(data[offset : len(data) - pad])
    return bytes(data[offset:])
