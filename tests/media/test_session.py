"""RTP session bookkeeping: RFC 3550 loss and jitter, RTCP reports and round-trip time, latching."""

from __future__ import annotations

import random

import pytest

from cloudcc.media.rtcp import ReceiverReport, SenderReport, parse_compound
from cloudcc.media.session import Latch, LatchState, ReceiverStats, RtpSession, is_routable


def feed(stats: ReceiverStats, seqs: list[int]) -> None:
    for s in seqs:
        stats.update_seq(s & 0xFFFF)


def test_loss_counts_the_missing_sequence_numbers() -> None:
    stats = ReceiverStats(1, 100, 8000)
    feed(stats, [100, 101, 102, 104, 105, 108, 109])
    # probation consumed 100; counted from 101: expected 101..109 = 9, received 6
    assert stats.expected == 9
    assert stats.lost == 3


def test_sequence_wrap_is_not_loss() -> None:
    stats = ReceiverStats(1, 65530, 8000)
    feed(stats, list(range(65530, 65536)) + list(range(0, 10)))
    assert stats.lost == 0
    assert stats.cycles == 65536
    assert stats.extended_max == 65536 + 9


def test_reordered_packets_are_not_counted_lost() -> None:
    stats = ReceiverStats(1, 10, 8000)
    feed(stats, [10, 11, 13, 12, 14])
    assert stats.lost == 0


def test_fraction_lost_is_per_interval() -> None:
    stats = ReceiverStats(1, 0, 8000)
    feed(stats, list(range(0, 101)))  # 100 counted, none lost
    assert stats.report_block(0, 0).fraction_lost == 0
    feed(stats, [x for x in range(101, 201) if x % 4 != 1])  # a quarter lost
    assert stats.report_block(0, 0).fraction_lost == 64  # 0.25 * 256


def test_jitter_of_a_perfectly_paced_stream_is_zero_and_grows_with_delay_variation() -> None:
    steady = ReceiverStats(1, 0, 8000)
    for i in range(50):
        steady.update_jitter(i * 160, 10.0 + i * 0.02)
    assert steady.jitter < 1e-6
    shaky = ReceiverStats(1, 0, 8000)
    rng = random.Random(1)
    for i in range(500):
        shaky.update_jitter(i * 160, 10.0 + i * 0.02 + rng.uniform(0, 0.01))
    # uniform 0..10 ms delay: mean |D| is 10/3 ms, the estimator converges near it
    assert 20 < shaky.jitter < 35  # timestamp units (2.5..4.4 ms)


def test_round_trip_time_from_sender_and_receiver_reports() -> None:
    rng = random.Random(3)
    a = RtpSession(8000, now=0.0, cname="a", rng=rng)
    b = RtpSession(8000, now=0.0, cname="b", rng=rng)
    # a sends media to b
    for i in range(10):
        a.sender.frame_header(0, 160, i * 0.02)
        a.sender.count(160)
        b.on_rtp(a.sender.ssrc, (a.sender.seq - 1) & 0xFFFF, i * 160, 160, i * 0.02, True)
    wall = 1_700_000_000.0
    sr = a.build_report(now=1.0, wall=wall)
    assert isinstance(parse_compound(sr)[0], SenderReport)
    one_way = 0.015
    b.on_rtcp(parse_compound(sr), now=1.0 + one_way, wall=wall + one_way)
    hold = 0.2  # b answers 200 ms later
    rr = b.build_report(now=1.0 + one_way + hold, wall=wall + one_way + hold)
    first = parse_compound(rr)[0]
    assert isinstance(first, ReceiverReport)
    assert first.reports[0].ssrc == a.sender.ssrc
    a.on_rtcp(parse_compound(rr), now=1.0 + 2 * one_way + hold, wall=wall + 2 * one_way + hold)
    assert a.rtt is not None
    assert abs(a.rtt - 2 * one_way) < 0.001


def test_sender_report_only_after_sending() -> None:
    s = RtpSession(8000, now=0.0, cname="x")
    assert isinstance(parse_compound(s.build_report(1.0, 1e9))[0], ReceiverReport)
    s.sender.frame_header(0, 160, 1.0)
    s.sender.count(160)
    assert isinstance(parse_compound(s.build_report(2.0, 1e9))[0], SenderReport)


def test_relayed_stream_gets_our_ssrc_and_continuous_sequence_numbers() -> None:
    s = RtpSession(8000, now=0.0, cname="x", rng=random.Random(5))
    sender = s.sender
    sender.frame_header(0, 160, 0.0)
    own_next = sender.seq
    h1 = sender.translate(0xAAAA, 5000, 1000, 0, False, 0.02)
    h2 = sender.translate(0xAAAA, 5001, 1160, 0, False, 0.04)
    seq1, ts1, ssrc1 = int.from_bytes(h1[2:4], "big"), int.from_bytes(h1[4:8], "big"), h1[8:12]
    seq2, ts2 = int.from_bytes(h2[2:4], "big"), int.from_bytes(h2[4:8], "big")
    assert ssrc1 == sender.ssrc.to_bytes(4, "big")
    assert seq1 == own_next and seq2 == (own_next + 1) & 0xFFFF
    assert (ts2 - ts1) & 0xFFFFFFFF == 160
    assert h1[1] & 0x80  # marker on the first packet of a new source


def test_latch_follows_the_first_source_and_drops_others() -> None:
    latch = Latch(("10.0.0.1", 4000))  # a private address: the phone may be behind NAT
    assert latch.destination == ("10.0.0.1", 4000)
    assert latch.accept(("203.0.113.9", 31000), 0.0)  # behind NAT: another address
    assert latch.state is LatchState.LATCHED
    assert latch.destination == ("203.0.113.9", 31000)
    assert not latch.accept(("198.51.100.1", 5000), 0.02)
    assert latch.refused == 1


def test_disabled_latch_keeps_the_signalled_address() -> None:
    latch = Latch(("10.0.0.1", 4000), enabled=False)
    assert latch.accept(("10.0.0.1", 4002), 0.0)
    assert not latch.accept(("10.9.9.9", 4000), 0.0)
    assert latch.destination == ("10.0.0.1", 4000)


def test_a_routable_sdp_address_is_the_only_source_taken() -> None:
    # issue 18.12: anyone who guesses the port must not take the leg over
    latch = Latch(("8.8.4.4", 4000))
    assert latch.strict
    assert not latch.accept(("1.2.3.4", 4000), 0.0)  # first packet, but not the SDP's IP
    assert latch.destination == ("8.8.4.4", 4000)
    assert latch.accept(("8.8.4.4", 4002), 0.1)  # the SDP's IP, another port: symmetric
    assert latch.destination == ("8.8.4.4", 4002)
    assert not latch.accept(("1.2.3.4", 4000), 10.0)  # even after a long silence
    assert latch.refused == 2


@pytest.mark.parametrize("host", ["10.1.2.3", "192.168.0.7", "127.0.0.1", "100.64.0.1", "fe80::1",
                                  "203.0.113.5", "pbx.example.com"])  # fmt: skip
def test_private_loopback_documentation_and_names_are_not_routable(host: str) -> None:
    assert not is_routable(host)
    assert is_routable("8.8.8.8") and is_routable("2001:4860:4860::8888")


def test_after_the_window_another_source_latches_only_when_the_current_one_fell_silent() -> None:
    latch = Latch(("10.0.0.1", 4000), window=2.0, silence=2.0)
    assert latch.accept(("203.0.113.9", 31000), 0.0)
    for t in range(1, 50):  # the latched source keeps sending every 20 ms
        assert latch.accept(("203.0.113.9", 31000), t * 0.02)
        assert not latch.accept(("198.51.100.1", 5000), t * 0.02)
    assert latch.refused == 49
    # the latched source stops (NAT rebinding): after 2 s of silence the new one is taken
    assert not latch.accept(("203.0.113.9", 31002), 2.0)
    assert latch.accept(("203.0.113.9", 31002), 3.1)
    assert latch.destination == ("203.0.113.9", 31002) and latch.relatched == 1


def test_the_exact_sdp_address_wins_over_a_source_latched_in_the_window() -> None:
    latch = Latch(("10.0.0.1", 4000), window=2.0)
    assert latch.accept(("10.0.0.9", 6000), 0.0)  # someone else got there first
    assert latch.accept(("10.0.0.1", 4000), 0.5)  # the signalled peer, inside the window
    assert latch.destination == ("10.0.0.1", 4000)
    assert not latch.accept(("10.0.0.9", 6000), 0.52)
    # outside the window the exact address is no longer enough while another is heard
    late = Latch(("10.0.0.1", 4000), window=2.0)
    assert late.accept(("10.0.0.9", 6000), 0.0)
    for t in range(1, 150):
        late.accept(("10.0.0.9", 6000), t * 0.02)
    assert not late.accept(("10.0.0.1", 4000), 3.0)


def test_a_stream_that_was_sending_before_the_leg_was_configured_is_stale() -> None:
    stale = ("10.0.0.66", 7000)
    latch = Latch(("10.0.0.1", 4000), stale=frozenset({stale}))
    assert not latch.accept(stale, 0.0)
    assert not latch.accept(stale, 5.0)  # never, while it is not the SDP's address
    assert latch.accept(("203.0.113.9", 31000), 5.1)  # the real (NATed) caller
