"""DTMF: RFC 4733 receive/send (one digit per press, never doubled) and in-band Goertzel."""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest

from cloudcc.media.codecs import resample
from cloudcc.media.dtmf import (
    DIGITS,
    DtmfSource,
    GoertzelBank,
    InbandDtmfDetector,
    SenderState,
    TelephoneEvent,
    TelephoneEventReceiver,
    TelephoneEventSender,
    dtmf_tone,
)
from cloudcc.media.exceptions import InvalidDtmfDigit, TelephoneEventParseError
from cloudcc.media.rtp import RtpPacket
from cloudcc.media.testing import read_pcap_udp
from cloudcc.media.wav import read_wav

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "media")
PCAPS = {
    "0": "0", "1": "1", "2": "2", "3": "3", "4": "4", "5": "5", "6": "6", "7": "7",
    "8": "8", "9": "9", "*": "star", "#": "pound",
}  # fmt: skip
PROMPTS = "/usr/share/asterisk/sounds/en_US_f_Allison"
MOH = "/usr/share/asterisk/moh"


def test_telephone_event_payload_round_trip() -> None:
    te = TelephoneEvent(11, True, 10, 800)
    assert TelephoneEvent.parse(te.serialize()) == te
    with pytest.raises(TelephoneEventParseError):
        TelephoneEvent.parse(b"\x01\x02")


@pytest.mark.parametrize("digit", list(PCAPS))
def test_sipp_capture_of_each_digit_yields_exactly_that_digit_once(digit: str) -> None:
    rx = TelephoneEventReceiver()
    events = []
    for t, payload in read_pcap_udp(os.path.join(DATA, f"dtmf_2833_{PCAPS[digit]}.pcap")):
        packet = RtpPacket.parse(payload)
        events += rx.receive(packet.ssrc, packet.timestamp, packet.payload, t)
    events += rx.poll(1e12)
    assert [e.digit for e in events] == [digit]
    assert events[0].duration_ms == 280  # 2240 timestamp units in the captures
    assert events[0].source is DtmfSource.RFC4733


def test_all_twelve_captures_in_one_stream_give_twelve_digits() -> None:
    rx = TelephoneEventReceiver()
    events = []
    now = 0.0
    for digit, name in PCAPS.items():
        del digit
        for _, payload in read_pcap_udp(os.path.join(DATA, f"dtmf_2833_{name}.pcap")):
            now += 0.02
            packet = RtpPacket.parse(payload)
            events += rx.receive(packet.ssrc, packet.timestamp, packet.payload, now)
    assert "".join(e.digit for e in events) == "0123456789*#"


def test_lost_end_packets_still_report_the_digit_once() -> None:
    rx = TelephoneEventReceiver(end_timeout=0.2)
    updates = [TelephoneEvent(5, False, 10, d).serialize() for d in (160, 320, 480)]
    events = []
    for i, payload in enumerate(updates):
        events += rx.receive(7, 1000, payload, i * 0.02)
    assert events == []
    events += rx.poll(0.1)
    assert events == []
    events += rx.poll(0.5)
    assert [e.digit for e in events] == ["5"]
    # a late retransmitted end packet of the same event is not a second press
    events += rx.receive(7, 1000, TelephoneEvent(5, True, 10, 640).serialize(), 0.6)
    assert len(events) == 1


def test_a_new_event_reports_the_previous_one_whose_end_was_lost() -> None:
    rx = TelephoneEventReceiver()
    rx.receive(7, 1000, TelephoneEvent(1, False, 10, 160).serialize(), 0.0)
    events = rx.receive(7, 3000, TelephoneEvent(2, False, 10, 160).serialize(), 0.3)
    assert [e.digit for e in events] == ["1"]


def test_sender_packets_follow_rfc4733_and_decode_to_one_digit_each() -> None:
    tx = TelephoneEventSender(duration_ms=100)
    tx.queue("7#")
    rx = TelephoneEventReceiver()
    packets = []
    start_ts = {0: 0}
    events = []
    frame = 0
    ts = 0
    while tx.active and frame < 200:
        packet = tx.tick()
        if packet is not None:
            if packet.starts_event:
                start_ts[0] = ts
            packets.append(packet)
            events += rx.receive(1, start_ts[0], packet.payload, frame * 0.02)
        ts += 160
        frame += 1
    parsed = [TelephoneEvent.parse(p.payload) for p in packets]
    first_digit = parsed[:8]
    assert packets[0].marker and not any(p.marker for p in packets[1:7])
    assert [p.duration for p in first_digit[:5]] == [160, 320, 480, 640, 800]
    assert [p.end for p in first_digit] == [False] * 4 + [True] * 3 + [False]
    assert first_digit[5] == first_digit[4] == first_digit[6]  # three identical end packets
    assert [e.digit for e in events] == ["7", "#"]
    assert tx.state is SenderState.IDLE


def test_invalid_digit_is_refused() -> None:
    with pytest.raises(InvalidDtmfDigit):
        TelephoneEventSender().queue("1x")


def run_detector(pcm: np.ndarray) -> list[str]:
    """Frames through the same overlapped analysis the engine uses."""
    bank = GoertzelBank()
    det = InbandDtmfDetector()
    pcm = np.concatenate([pcm, np.zeros(160 * 4 - len(pcm) % 160, dtype=np.int16)])
    frames = pcm.reshape(-1, 160)
    previous = np.vstack([np.zeros((1, 160), dtype=np.int16), frames[:-1]])
    powers, energy = bank.analyse_overlapped(previous, frames)
    out = []
    for p, e in zip(powers, energy, strict=True):
        event = det.feed_frame(p, e)
        if event is not None:
            out.append(event.digit)
    return out


def keyed(
    digits: str, on_ms: int = 80, off_ms: int = 80, level: float = -10.0, offset: int = 0
) -> np.ndarray:
    parts = [np.zeros(offset, dtype=np.int16)]
    for d in digits:
        parts += [dtmf_tone(d, on_ms, level_dbfs=level), np.zeros(off_ms * 8, dtype=np.int16)]
    return np.concatenate(parts)


def test_inband_detector_finds_all_sixteen_digits_once_each() -> None:
    assert "".join(run_detector(keyed(DIGITS))) == DIGITS


@pytest.mark.parametrize("offset", [0, 37, 80, 133])
def test_inband_detector_finds_40ms_presses_at_any_alignment(offset: int) -> None:
    assert "".join(run_detector(keyed("159#", on_ms=40, off_ms=40, offset=offset))) == "159#"


@pytest.mark.parametrize("level", [-3.0, -20.0, -30.0])
def test_inband_detector_works_across_levels(level: float) -> None:
    assert "".join(run_detector(keyed("2580", level=level))) == "2580"


def test_inband_detector_tolerates_1_5_percent_frequency_error() -> None:
    t = np.arange(800) / 8000
    a = 0.3 * 32767
    tone = a * np.sin(2 * np.pi * 697 * 1.015 * t) + a * np.sin(2 * np.pi * 1209 * 0.985 * t)
    pcm = np.concatenate([tone.astype(np.int16), np.zeros(800, dtype=np.int16)])
    assert run_detector(pcm) == ["1"]


def test_inband_detector_survives_g711_and_noise() -> None:
    from cloudcc.media.codecs import create_codec

    codec = create_codec("PCMA")
    rng = np.random.default_rng(4)
    pcm = keyed("3690")
    noisy = np.clip(pcm + rng.normal(0, 300, len(pcm)), -32768, 32767).astype(np.int16)
    assert "".join(run_detector(codec.decode(codec.encode(noisy)))) == "3690"


def test_a_long_press_is_one_digit() -> None:
    assert run_detector(keyed("8", on_ms=2000)) == ["8"]


def test_white_noise_gives_no_digits() -> None:
    rng = np.random.default_rng(7)
    noise = rng.normal(0, 3000, 8000 * 20).astype(np.int16)
    assert run_detector(noise) == []


@pytest.mark.skipif(not os.path.isdir(PROMPTS), reason="asterisk prompts not installed")
def test_speech_prompts_give_no_false_digits() -> None:
    paths = sorted(glob.glob(os.path.join(PROMPTS, "*.wav")))[:120]
    speech = []
    for path in paths:
        pcm, rate = read_wav(path)
        speech.append(resample(pcm[:, 0], rate, 8000))
    total = np.concatenate(speech)
    assert len(total) > 8000 * 60  # more than a minute of speech
    assert run_detector(total) == []


@pytest.mark.skipif(not os.path.isdir(MOH), reason="music on hold not installed")
def test_music_on_hold_gives_no_false_digits() -> None:
    music = []
    for path in sorted(glob.glob(os.path.join(MOH, "*.wav"))):
        pcm, rate = read_wav(path)
        music.append(resample(pcm[: rate * 60, 0], rate, 8000))
    assert run_detector(np.concatenate(music)) == []
