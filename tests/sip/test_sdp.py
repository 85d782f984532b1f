"""SDP (RFC 4566) and offer/answer (RFC 3264): codecs, directions, several streams."""

from __future__ import annotations

import pytest

from cloudcc.sip.exceptions import OfferAnswerError, SdpError
from cloudcc.sip.sdp import (
    PCMA,
    PCMU,
    Codec,
    Direction,
    answer,
    make_offer,
    negotiated_codec,
    parse_sdp,
)

PHONE_OFFER = (
    "v=0\r\no=- 3790013700 3790013700 IN IP4 192.0.2.10\r\ns=phone\r\nc=IN IP4 192.0.2.10\r\n"
    "t=0 0\r\nm=audio 16384 RTP/AVP 8 0 18 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\na=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    "m=video 16386 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
)


def test_offer_with_audio_and_video_parses_codecs_in_format_order():
    sdp = parse_sdp(PHONE_OFFER)
    audio, video = sdp.media
    assert [c.name for c in audio.codecs] == ["PCMA", "PCMU", "G729", "telephone-event"]
    assert audio.codec("telephone-event") == Codec(101, "telephone-event", 8000, fmtp="0-16")
    assert audio.ptime == 20 and audio.direction is Direction.SENDRECV
    assert sdp.address_of(audio) == "192.0.2.10"
    assert video.media == "video" and video.codecs[0].name == "H264"


def test_sdp_round_trips():
    sdp = parse_sdp(PHONE_OFFER)
    again = parse_sdp(sdp.encode())
    assert str(again) == str(sdp)


def test_answer_keeps_the_offerers_payload_types_and_rejects_video():
    ans = answer(parse_sdp(PHONE_OFFER), "198.51.100.1", {"audio": 30000})
    audio, video = ans.media
    assert [c.payload_type for c in audio.codecs] == [8, 101]  # PCMA first, as offered
    assert audio.port == 30000 and audio.direction is Direction.SENDRECV
    assert video.port == 0  # rejected, but its line stays (RFC 3264 §6)
    assert negotiated_codec(ans, parse_sdp(PHONE_OFFER)) == PCMA


def test_hold_offer_is_answered_recvonly_and_inactive_stays_inactive():
    offer = parse_sdp(PHONE_OFFER).with_direction(Direction.SENDONLY)
    assert offer.is_hold
    assert answer(offer, "198.51.100.1", {"audio": 30000}).media[0].direction is Direction.RECVONLY
    inactive = parse_sdp(PHONE_OFFER).with_direction(Direction.INACTIVE)
    assert answer(inactive, "h", {"audio": 1}).media[0].direction is Direction.INACTIVE


def test_local_hold_is_kept_in_an_answer():
    ans = answer(parse_sdp(PHONE_OFFER), "h", {"audio": 1}, direction=Direction.SENDONLY)
    assert ans.media[0].direction is Direction.SENDONLY


def test_no_common_codec_is_488():
    offer = make_offer("192.0.2.1", 4000, [Codec(18, "G729", 8000)], telephone_event=False)
    with pytest.raises(OfferAnswerError) as info:
        answer(offer, "h", {"audio": 1}, {"audio": (PCMU, PCMA)})
    assert info.value.status == 488


def test_static_payload_without_rtpmap_is_known():
    sdp = parse_sdp(
        "v=0\r\no=u 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 h\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\n"
    )
    assert sdp.media[0].codecs == [PCMU]


def test_made_offer_lists_telephone_event_and_video_when_asked():
    offer = make_offer("192.0.2.5", 4000, video_port=4002, video_codecs=[Codec(96, "VP8", 90000)])
    assert [m.media for m in offer.media] == ["audio", "video"]
    assert offer.media[0].formats == ["0", "8", "101"]
    text = str(offer)
    assert "a=rtpmap:101 telephone-event/8000" in text and "a=fmtp:101 0-16" in text


@pytest.mark.parametrize(
    "bad",
    ["", "v=1\r\n", "v=0\r\nm=audio x RTP/AVP 0\r\n", "v=0\r\no=a b\r\n", "v=0\r\nxx\r\n"],
)
def test_broken_sdp_raises_sdp_error(bad):
    with pytest.raises(SdpError):
        parse_sdp(bad)


def test_stream_without_connection_address_is_an_error():
    with pytest.raises(SdpError):
        parse_sdp("v=0\r\no=u 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\n")
