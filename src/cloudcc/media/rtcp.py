"""RTCP packets (RFC 3550 §6.4 SR/RR, §6.5 SDES, §6.6 BYE) and compound packets (§6.1)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from .exceptions import RtcpParseError

SR: Final = 200
RR: Final = 201
SDES: Final = 202
BYE: Final = 203
APP: Final = 204
SDES_CNAME: Final = 1

_HEAD = struct.Struct("!BBH")
_BLOCK = struct.Struct("!IIIIII")
_SENDER_INFO = struct.Struct("!IIIII")

NTP_EPOCH_OFFSET: Final = 2208988800  # seconds from 1900-01-01 to 1970-01-01


def ntp_from_unix(unix_seconds: float) -> int:
    """64-bit NTP timestamp (RFC 3550 §4) of a Unix time."""
    return int((unix_seconds + NTP_EPOCH_OFFSET) * (1 << 32)) & 0xFFFFFFFFFFFFFFFF


def ntp_middle32(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp, as LSR/DLSR use them (§6.4.1)."""
    return (ntp >> 16) & 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class ReportBlock:
    ssrc: int
    fraction_lost: int  # 0..255, fixed point /256
    cumulative_lost: int  # signed 24-bit
    highest_sequence: int  # extended highest sequence number received
    jitter: int  # timestamp units
    lsr: int
    dlsr: int  # 1/65536 s

    def serialize(self) -> bytes:
        lost = self.cumulative_lost & 0xFFFFFF
        return _BLOCK.pack(
            self.ssrc,
            (self.fraction_lost & 0xFF) << 24 | lost,
            self.highest_sequence,
            self.jitter,
            self.lsr,
            self.dlsr,
        )

    @classmethod
    def parse(cls, data: bytes, offset: int) -> ReportBlock:
        ssrc, lost_word, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(data, offset)
        cumulative = lost_word & 0xFFFFFF
        if cumulative & 0x800000:
            cumulative -= 1 << 24
        return cls(ssrc, lost_word >> 24, cumulative, highest, jitter, lsr, dlsr)


@dataclass(frozen=True, slots=True)
class SenderReport:
    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()

    def serialize(self) -> bytes:
        body = _SENDER_INFO.pack(
            self.ntp_timestamp >> 32,
            self.ntp_timestamp & 0xFFFFFFFF,
            self.rtp_timestamp,
            self.packet_count,
            self.octet_count,
        ) + b"".join(r.serialize() for r in self.reports)
        return _packet(SR, len(self.reports), struct.pack("!I", self.ssrc) + body)


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    ssrc: int
    reports: tuple[ReportBlock, ...] = ()

    def serialize(self) -> bytes:
        body = struct.pack("!I", self.ssrc) + b"".join(r.serialize() for r in self.reports)
        return _packet(RR, len(self.reports), body)


@dataclass(frozen=True, slots=True)
class SourceDescription:
    """SDES with one chunk per source: (ssrc, ((item type, text), ...))."""

    chunks: tuple[tuple[int, tuple[tuple[int, bytes], ...]], ...]

    def serialize(self) -> bytes:
        body = b""
        for ssrc, items in self.chunks:
            chunk = struct.pack("!I", ssrc)
            for kind, text in items:
                chunk += bytes([kind, len(text)]) + text
            chunk += b"\x00" * (4 - len(chunk) % 4)  # null item + pad to 32 bits (§6.5)
            body += chunk
        return _packet(SDES, len(self.chunks), body)


@dataclass(frozen=True, slots=True)
class Bye:
    ssrcs: tuple[int, ...]
    reason: bytes = b""

    def serialize(self) -> bytes:
        body = struct.pack(f"!{len(self.ssrcs)}I", *self.ssrcs)
        if self.reason:
            reason = bytes([len(self.reason)]) + self.reason
            body += reason + b"\x00" * (-len(reason) % 4)
        return _packet(BYE, len(self.ssrcs), body)


@dataclass(frozen=True, slots=True)
class UnknownRtcp:
    """APP or a packet type this module does not interpret, kept as bytes."""

    packet_type: int
    count: int
    body: bytes

    def serialize(self) -> bytes:
        return _packet(self.packet_type, self.count, self.body)


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Bye | UnknownRtcp


def _packet(packet_type: int, count: int, body: bytes) -> bytes:
    if len(body) % 4:
        raise ValueError("RTCP body must be a multiple of 32 bits")
    return _HEAD.pack(0x80 | (count & 0x1F), packet_type, len(body) // 4) + body


def serialize_compound(packets: list[RtcpPacket] | tuple[RtcpPacket, ...]) -> bytes:
    return b"".join(p.serialize() for p in packets)


def parse_compound(data: bytes) -> list[RtcpPacket]:
    """Parse a compound RTCP datagram (validity checks of RFC 3550 §A.2)."""
    size = len(data)
    if size < 4:
        raise RtcpParseError("shorter than a header", size)
    packets: list[RtcpPacket] = []
    offset = 0
    while offset < size:
        if offset + 4 > size:
            raise RtcpParseError("trailing bytes after the last packet", size)
        b0, packet_type, words = _HEAD.unpack_from(data, offset)
        if b0 >> 6 != 2:
            raise RtcpParseError(f"version {b0 >> 6}, expected 2", size)
        end = offset + 4 + 4 * words
        if end > size:
            raise RtcpParseError(f"packet type {packet_type} runs past the end", size)
        count = b0 & 0x1F
        body_end = end
        if b0 & 0x20:  # padding, only legal in the last packet
            pad = data[end - 1]
            if end != size or pad == 0 or pad > end - offset - 4:
                raise RtcpParseError("bad padding", size)
            body_end -= pad
        body = bytes(data[offset + 4 : body_end])
        packets.append(_parse_one(packet_type, count, body, size))
        offset = end
    return packets


def _parse_one(packet_type: int, count: int, body: bytes, size: int) -> RtcpPacket:
    if packet_type == SR:
        if len(body) < 24 + 24 * count:
            raise RtcpParseError("SR shorter than its report count", size)
        ssrc = struct.unpack_from("!I", body)[0]
        msw, lsw, rtp_ts, pkts, octets = _SENDER_INFO.unpack_from(body, 4)
        blocks = tuple(ReportBlock.parse(body, 24 + 24 * i) for i in range(count))
        return SenderReport(ssrc, msw << 32 | lsw, rtp_ts, pkts, octets, blocks)
    if packet_type == RR:
        if len(body) < 4 + 24 * count:
            raise RtcpParseError("RR shorter than its report count", size)
        ssrc = struct.unpack_from("!I", body)[0]
        blocks = tuple(ReportBlock.parse(body, 4 + 24 * i) for i in range(count))
        return ReceiverReport(ssrc, blocks)
    if packet_type == SDES:
        return SourceDescription(_parse_sdes(body, count, size))
    if packet_type == BYE:
        if len(body) < 4 * count:
            raise RtcpParseError("BYE shorter than its source count", size)
        ssrcs = struct.unpack_from(f"!{count}I", body)
        reason = b""
        if len(body) > 4 * count:
            length = body[4 * count]
            reason = body[4 * count + 1 : 4 * count + 1 + length]
        return Bye(tuple(ssrcs), reason)
    return UnknownRtcp(packet_type, count, body)


def _parse_sdes(
    body: bytes, count: int, size: int
) -> tuple[tuple[int, tuple[tuple[int, bytes], ...]], ...]:
    chunks = []
    offset = 0
    for _ in range(count):
        if offset + 4 > len(body):
            raise RtcpParseError("SDES chunk runs past the end", size)
        ssrc = struct.unpack_from("!I", body, offset)[0]
        offset += 4
        items = []
        while True:
            if offset >= len(body):
                raise RtcpParseError("SDES items not terminated", size)
            kind = body[offset]
            if kind == 0:
                offset += 1
                offset += -offset % 4  # skip to the next 32-bit boundary
                break
            if offset + 2 > len(body) or offset + 2 + body[offset + 1] > len(body):
                raise RtcpParseError("SDES item runs past the end", size)
            length = body[offset + 1]
            items.append((kind, bytes(body[offset + 2 : offset + 2 + length])))
            offset += 2 + length
        chunks.append((ssrc, tuple(items)))
    return tuple(chunks)
