"""RTP and RTCP packets: round trips (hypothesis), captured bytes, malformed input."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudcc.media.exceptions import RtcpParseError, RtpParseError
from cloudcc.media.rtcp import (
    Bye,
    ReceiverReport,
    ReportBlock,
    SenderReport,
    SourceDescription,
    UnknownRtcp,
    parse_compound,
    serialize_compound,
)
from cloudcc.media.rtp import RtpExtension, RtpPacket, header_fields, payload_of

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)

rtp_packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    sequence=u16,
    timestamp=u32,
    ssrc=u32,
    payload=st.binary(max_size=400),
    marker=st.booleans(),
    csrcs=st.lists(u32, max_size=15).map(tuple),
    extension=st.none()
    | st.builds(
        RtpExtension, profile=u16, data=st.binary(max_size=40).map(lambda b: b + bytes(-len(b) % 4))
    ),
    padding=st.integers(0, 255),
)


@given(rtp_packets)
def test_rtp_packet_survives_serialize_then_parse(packet: RtpPacket) -> None:
    assert RtpPacket.parse(packet.serialize()) == packet


@given(rtp_packets)
def test_fast_header_path_agrees_with_the_full_parser(packet: RtpPacket) -> None:
    data = packet.serialize()
    pt, marker, seq, ts, ssrc, offset = header_fields(data)
    assert (pt, marker, seq, ts, ssrc) == (
        packet.payload_type,
        packet.marker,
        packet.sequence,
        packet.timestamp,
        packet.ssrc,
    )
    assert payload_of(data, offset) == packet.payload


@given(st.binary(max_size=200))
def test_garbage_raises_rtp_parse_error_or_parses(data: bytes) -> None:
    try:
        RtpPacket.parse(data)
    except RtpParseError:
        pass


def test_captured_sipp_telephone_event_packet_parses() -> None:
    # the first packet of SIPp's dtmf_2833_1.pcap
    data = bytes.fromhex("80e51f30000033e00e05384e010a0000")
    packet = RtpPacket.parse(data)
    assert (packet.payload_type, packet.marker, packet.sequence) == (101, True, 0x1F30)
    assert packet.timestamp == 0x33E0 and packet.payload == bytes.fromhex("010a0000")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x80\x00\x00", "shorter"),
        (bytes([0x40]) + bytes(11), "version"),
        (bytes([0x8F]) + bytes(11), "CSRC"),
        (bytes([0x90]) + bytes(11) + b"\x00\x00\x00\x05", "extension"),
        (bytes([0xA0]) + bytes(11) + b"\x00", "padding"),
    ],
)
def test_malformed_rtp_is_rejected_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(RtpParseError, match=reason):
        RtpPacket.parse(data)


blocks = st.builds(
    ReportBlock,
    ssrc=u32,
    fraction_lost=u8,
    cumulative_lost=st.integers(-0x800000, 0x7FFFFF),
    highest_sequence=u32,
    jitter=u32,
    lsr=u32,
    dlsr=u32,
)
sdes_text = st.binary(min_size=1, max_size=40)
rtcp_packets = st.one_of(
    st.builds(
        SenderReport,
        ssrc=u32,
        ntp_timestamp=st.integers(0, 2**64 - 1),
        rtp_timestamp=u32,
        packet_count=u32,
        octet_count=u32,
        reports=st.lists(blocks, max_size=3).map(tuple),
    ),
    st.builds(ReceiverReport, ssrc=u32, reports=st.lists(blocks, max_size=3).map(tuple)),
    st.builds(
        SourceDescription,
        chunks=st.lists(
            st.tuples(
                u32, st.lists(st.tuples(st.integers(1, 8), sdes_text), max_size=3).map(tuple)
            ),
            min_size=1,
            max_size=3,
        ).map(tuple),
    ),
    st.builds(
        Bye, ssrcs=st.lists(u32, min_size=1, max_size=4).map(tuple), reason=st.binary(max_size=20)
    ),
    st.builds(
        UnknownRtcp,
        packet_type=st.just(204),
        count=st.integers(0, 31),
        body=st.binary(max_size=40).map(lambda b: b + bytes(-len(b) % 4)),
    ),
)


@given(st.lists(rtcp_packets, min_size=1, max_size=4))
def test_compound_rtcp_survives_serialize_then_parse(packets: list) -> None:  # type: ignore[type-arg]
    assert parse_compound(serialize_compound(packets)) == packets


@given(st.binary(max_size=120))
def test_garbage_raises_rtcp_parse_error_or_parses(data: bytes) -> None:
    try:
        parse_compound(data)
    except RtcpParseError:
        pass


def test_rtcp_report_block_carries_negative_cumulative_loss() -> None:
    rr = ReceiverReport(1, (ReportBlock(2, 0, -5, 100, 3, 0, 0),))
    assert parse_compound(rr.serialize())[0] == rr


def test_rtcp_length_running_past_the_datagram_is_rejected() -> None:
    data = struct.pack("!BBHI", 0x80, 201, 7, 1)
    with pytest.raises(RtcpParseError, match="past the end"):
        parse_compound(data)


DATA = Path(__file__).parent.parent / "data" / "media"


def test_captured_baresip_rtcp_parses_and_reserializes_byte_for_byte() -> None:
    app, first, second = ((DATA / f"baresip_rtcp_{i}.bin").read_bytes() for i in range(3))
    assert parse_compound(app)[0] == UnknownRtcp(204, 0, bytes.fromhex("42381a5450494e47504f4e47"))
    for data in (first, second):
        packets = parse_compound(data)
        assert serialize_compound(packets) == data
        sr, sdes = packets
        assert isinstance(sr, SenderReport) and isinstance(sdes, SourceDescription)
        block = sr.reports[0]
        assert block.ssrc == 0xABCDEF  # the stream our capture script sent to baresip
        assert block.cumulative_lost == 0 and block.fraction_lost == 0
        assert sdes.chunks == ((sr.ssrc, ((1, b"sip:t@127.0.0.1"),)),)
    second_sr = parse_compound(second)[0]
    assert isinstance(second_sr, SenderReport)
    assert second_sr.packet_count > parse_compound(first)[0].packet_count  # type: ignore[union-attr]
