"""The engine over real UDP sockets on 127.0.0.1, judged by analysing the audio that arrives."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cloudcc.media.bridge import BridgeMode
from cloudcc.media.dtmf import DtmfEvent, DtmfSource, dtmf_tone
from cloudcc.media.engine import Leg, LegState, MediaEngine
from cloudcc.media.exceptions import LegBusy, LegClosed, PortRangeExhausted
from cloudcc.media.mixer import ParticipantMode
from cloudcc.media.player import PlaybackState
from cloudcc.media.rtp import RtpPacket
from cloudcc.media.testing import RtpPeer, rms_dbfs, sine, tone_level_dbfs
from cloudcc.media.wav import read_wav

from .conftest import MUSIC_HZ

Peers = Callable[..., Awaitable[RtpPeer]]


async def connected(
    engine: MediaEngine, peers: Peers, codec: str = "PCMU", **options: Any
) -> tuple[Leg, RtpPeer]:
    peer = await peers(codec=codec)
    leg = await engine.open_leg()
    leg.configure(peer.address, codec, **options)
    peer.connect((leg.host, leg.port))
    return leg, peer


async def eventually(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    """Wait until ``condition()`` holds (the engine works on its own clock)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def heard(peer: RtpPeer, since: float, until: float = float("inf")) -> np.ndarray:
    return peer.received_audio(since, until)


async def play_tones(*streams: tuple[RtpPeer, float], seconds: float = 1.5) -> float:
    """Each peer sends its tone; returns the time from which the steady state is heard."""
    start = time.monotonic()
    await asyncio.gather(*(peer.send_tone(freq, seconds) for peer, freq in streams))
    return start + 0.3


@pytest.mark.parametrize(("codec_a", "codec_b", "mode"), [
    ("PCMU", "PCMU", BridgeMode.RELAY),
    ("PCMA", "PCMA", BridgeMode.RELAY),
    ("PCMU", "PCMA", BridgeMode.TRANSLATE),
])  # fmt: skip
async def test_a_1khz_tone_crosses_the_bridge_and_lands_in_its_recording_channel_at_level(
    engine: MediaEngine, peers: Peers, tmp_path: Path, codec_a: str, codec_b: str, mode: BridgeMode
) -> None:
    a, pa = await connected(engine, peers, codec_a)
    b, pb = await connected(engine, peers, codec_b)
    bridge = engine.bridge(a, b)
    assert bridge.mode is mode
    recording = engine.record(tmp_path / "call.wav", left=a, right=b)
    steady = await play_tones((pa, 1000.0), (pb, 500.0), seconds=2.0)
    await asyncio.sleep(0.2)
    info = await recording.stop()
    at_b, at_a = heard(pb, steady), heard(pa, steady)
    assert abs(tone_level_dbfs(at_b, 1000) - -10.0) < 1.0
    assert tone_level_dbfs(at_b, 500) < -60  # b does not hear itself
    assert abs(tone_level_dbfs(at_a, 500) - -10.0) < 1.0
    pcm, rate = read_wav(info.path)
    assert rate == 8000 and pcm.shape[1] == 2
    left, right = pcm[4000:16000, 0], pcm[4000:16000, 1]
    assert abs(tone_level_dbfs(left, 1000) - -10.0) < 1.0
    assert abs(tone_level_dbfs(right, 500) - -10.0) < 1.0
    assert tone_level_dbfs(left, 500) < -60 and tone_level_dbfs(right, 1000) < -60
    assert info.duration_s == pytest.approx(len(pcm) / 8000)
    assert info.bytes == Path(info.path).stat().st_size and len(info.sha256) == 64


async def test_relayed_stream_carries_the_legs_own_ssrc_and_continuous_sequence(
    engine: MediaEngine, peers: Peers
) -> None:
    a, pa = await connected(engine, peers)
    b, pb = await connected(engine, peers)
    engine.bridge(a, b)
    await pa.send_tone(1000, 0.5)
    packets = [r.packet for r in pb.audio_packets()]
    assert len(packets) >= 24
    assert {p.ssrc for p in packets} == {b.session.sender.ssrc}
    seqs = [p.sequence for p in packets]
    assert all((y - x) & 0xFFFF == 1 for x, y in itertools.pairwise(seqs))


@pytest.mark.parametrize(
    ("codec", "payload_type", "rate"), [("G722", 9, 16000), ("opus", 111, 48000)]
)
async def test_wideband_leg_is_transcoded_to_a_pcmu_leg(
    engine: MediaEngine, peers: Peers, codec: str, payload_type: int, rate: int
) -> None:
    pw = await peers(codec=codec, payload_type=payload_type)
    wide = await engine.open_leg()
    wide.configure(pw.address, codec, payload_type)
    pw.connect((wide.host, wide.port))
    narrow, pn = await connected(engine, peers, "PCMU")
    assert engine.bridge(wide, narrow).mode is BridgeMode.TRANSCODE
    steady = await play_tones((pw, 1000.0), (pn, 600.0), seconds=2.0)
    assert abs(tone_level_dbfs(heard(pn, steady), 1000) - -10.0) < 1.5
    packets = pw.audio_packets(steady)
    wide_heard = np.concatenate([pw.codec.decode(r.packet.payload) for r in packets])
    assert abs(tone_level_dbfs(wide_heard, 600, rate=rate) - -10.0) < 1.5
    stamps = [r.packet.timestamp for r in packets]
    assert {(b - a) & 0xFFFFFFFF for a, b in itertools.pairwise(stamps)} == {
        pw.codec.timestamp_units(rate // 50)
    }


async def test_mix_minus_each_participant_hears_the_other_two_tones_not_its_own(
    engine: MediaEngine, peers: Peers, tmp_path: Path
) -> None:
    conf = engine.conference()
    tones = [440.0, 1020.0, 1730.0]  # no low-order intermodulation product lands on another
    members = [await connected(engine, peers) for _ in tones]
    for leg, _ in members:
        conf.add(leg)
    recording = engine.record(tmp_path / "conf.wav", conf)
    steady = await play_tones(*((peer, f) for (_, peer), f in zip(members, tones, strict=True)))
    info = await recording.stop()
    for (_, peer), own in zip(members, tones, strict=True):
        audio = heard(peer, steady)
        assert len(audio) > 4000
        for f in tones:
            level = tone_level_dbfs(audio, f)
            if f == own:
                assert level < -45, (own, f, level)  # 35 dB below the others: absent
            else:
                assert abs(level - -10.0) < 1.0, (own, f, level)
    pcm, _ = read_wav(info.path)
    for f in tones:  # the conversation's recording has all three
        # 1.5 dB: a tick made late by a loaded machine is concealed in the file, which costs
        # the 0.75 s window a fraction of a dB (seen: 1.04 dB with two test suites running).
        assert abs(tone_level_dbfs(pcm[4000:10000, 0], f) - -10.0) < 1.5


@pytest.mark.parametrize(
    ("mode", "customer_hears", "agent_hears", "supervisor_hears"),
    [
        (ParticipantMode.LISTEN, {1000}, {500}, {500, 1000}),
        (ParticipantMode.WHISPER, {1000}, {500, 1500}, {500, 1000}),
        (ParticipantMode.BARGE, {1000, 1500}, {500, 1500}, {500, 1000}),
    ],
)
async def test_supervision_modes_decide_who_hears_whom(
    engine: MediaEngine,
    peers: Peers,
    mode: ParticipantMode,
    customer_hears: set[int],
    agent_hears: set[int],
    supervisor_hears: set[int],
) -> None:
    customer, pc = await connected(engine, peers)
    agent, pa = await connected(engine, peers)
    supervisor, ps = await connected(engine, peers)
    conf = engine.conference()
    conf.add(customer)
    conf.add(agent)
    conf.add(supervisor, mode="listen")
    if mode is not ParticipantMode.LISTEN:
        conf.set_mode(supervisor, mode, whisper_to=agent)
    steady = await play_tones((pc, 500.0), (pa, 1000.0), (ps, 1500.0))
    for peer, expected in ((pc, customer_hears), (pa, agent_hears), (ps, supervisor_hears)):
        audio = heard(peer, steady)
        found = {f for f in (500, 1000, 1500) if tone_level_dbfs(audio, f) > -20}
        assert found == expected, (mode, expected, found)


async def test_held_party_hears_music_and_the_other_side_hears_silence(
    engine: MediaEngine, peers: Peers
) -> None:
    customer, pc = await connected(engine, peers)
    agent, pa = await connected(engine, peers)
    engine.bridge(customer, agent)
    engine.hold(customer)
    steady = await play_tones((pc, 500.0), (pa, 1000.0))
    at_customer, at_agent = heard(pc, steady), heard(pa, steady)
    assert abs(tone_level_dbfs(at_customer, MUSIC_HZ) - -12.0) < 1.0  # the music
    assert tone_level_dbfs(at_customer, 1000) < -60  # not the agent
    assert rms_dbfs(at_agent) < -60  # neither the customer nor the music
    engine.unhold(customer)
    steady = await play_tones((pc, 500.0), (pa, 1000.0))
    assert abs(tone_level_dbfs(heard(pa, steady), 500) - -10.0) < 1.0
    assert tone_level_dbfs(heard(pc, steady), MUSIC_HZ) < -60


@pytest.mark.skipif(
    not Path("/usr/share/asterisk/moh").is_dir(), reason="music on hold not installed"
)
async def test_default_music_on_hold_is_real_music(peers: Peers) -> None:
    engine = MediaEngine("127.0.0.1", 52000, 52600)
    await engine.start()
    try:
        leg, peer = await connected(engine, peers)
        engine.hold(leg)
        await asyncio.sleep(1.5)
        assert rms_dbfs(peer.received_audio()) > -40
    finally:
        await engine.stop()


async def test_muted_party_is_not_heard_but_still_hears(engine: MediaEngine, peers: Peers) -> None:
    a, pa = await connected(engine, peers)
    b, pb = await connected(engine, peers)
    engine.bridge(a, b)
    engine.mute(a)
    steady = await play_tones((pa, 500.0), (pb, 1000.0))
    assert rms_dbfs(heard(pb, steady)) < -60
    assert abs(tone_level_dbfs(heard(pa, steady), 1000) - -10.0) < 1.0
    engine.unmute(a)
    steady = await play_tones((pa, 500.0), (pb, 1000.0))
    assert abs(tone_level_dbfs(heard(pb, steady), 500) - -10.0) < 1.0


async def test_rfc4733_digits_arrive_once_each_through_the_async_iterator(
    engine: MediaEngine, peers: Peers
) -> None:
    leg, peer = await connected(engine, peers)
    events: list[DtmfEvent] = []

    async def collect() -> None:
        async for event in leg.dtmf_events():
            events.append(event)

    task = asyncio.create_task(collect())
    await asyncio.sleep(0)
    await peer.send_dtmf("1234567890*#", duration_ms=80, gap_ms=60)
    await asyncio.sleep(0.2)
    leg.close()
    await asyncio.wait_for(task, 2)
    assert "".join(e.digit for e in events) == "1234567890*#"
    assert all(e.source is DtmfSource.RFC4733 and e.duration_ms == 80 for e in events)


async def test_inband_tones_are_detected_on_a_leg_without_telephone_event(
    engine: MediaEngine, peers: Peers
) -> None:
    leg, peer = await connected(engine, peers, "PCMA", dtmf_payload_type=None)
    events: list[DtmfEvent] = []
    leg.on_dtmf(events.append)
    pcm = np.concatenate(
        [np.concatenate([dtmf_tone(d, 80), np.zeros(640, dtype=np.int16)]) for d in "19#*0"]
    )
    await peer.send_pcm(np.concatenate([pcm, np.zeros(1600, dtype=np.int16)]))
    for _ in range(20):  # the last press ends once the tick has played out the buffer
        if len(events) >= 5:
            break
        await asyncio.sleep(0.05)
    assert "".join(e.digit for e in events) == "19#*0"
    assert {e.source for e in events} == {DtmfSource.INBAND}


async def test_sip_info_digit_arrives_through_the_same_event(
    engine: MediaEngine, peers: Peers
) -> None:
    leg, _ = await connected(engine, peers)
    events: list[DtmfEvent] = []
    leg.on_dtmf(events.append)
    leg.inject_dtmf("7", duration_ms=250)
    assert events == [DtmfEvent("7", 250, DtmfSource.INFO)]


async def test_sent_digits_are_rfc4733_with_three_end_packets(
    engine: MediaEngine, peers: Peers
) -> None:
    leg, peer = await connected(engine, peers)
    leg.send_dtmf("42", duration_ms=100)
    await eventually(lambda: sum(te.end for _, te in peer.received_events()) >= 6)
    await asyncio.sleep(0.1)  # nothing more may follow
    events = peer.received_events()
    by_ts: dict[int, list[Any]] = {}
    for packet, te in events:
        by_ts.setdefault(packet.timestamp, []).append((packet, te))
    assert len(by_ts) == 2
    for (ts, items), digit in zip(sorted(by_ts.items()), (4, 2), strict=True):
        del ts
        assert items[0][0].marker and items[0][1].event == digit
        ends = [te for _, te in items if te.end]
        assert len(ends) == 3 and {te.duration for te in ends} == {800}


async def test_digits_sent_to_a_leg_without_telephone_event_are_tones(
    engine: MediaEngine, peers: Peers
) -> None:
    leg, peer = await connected(engine, peers, dtmf_payload_type=None)
    leg.send_dtmf("5", duration_ms=200)
    await eventually(lambda: len(peer.received_audio()) >= 1600 + 480)
    audio = peer.received_audio()
    assert tone_level_dbfs(audio, 770) > -16 and tone_level_dbfs(audio, 1336) > -16


async def test_prompt_is_interrupted_by_a_digit_barge_in(engine: MediaEngine, peers: Peers) -> None:
    leg, peer = await connected(engine, peers)
    playback = engine.play(leg, sine(440, 10.0, -10.0))
    await asyncio.sleep(0.6)
    await peer.send_dtmf("5")
    result = await asyncio.wait_for(playback, 2)
    assert result.state is PlaybackState.INTERRUPTED and result.digit == "5"
    assert abs(tone_level_dbfs(peer.received_audio(), 440) - -10.0) < 1.0
    assert 400 < result.played_ms < 2000


async def test_a_prompt_plays_to_completion_from_a_wav(
    engine: MediaEngine, peers: Peers, tmp_path: Path
) -> None:
    from cloudcc.media.wav import write_wav

    write_wav(tmp_path / "p.wav", sine(900, 0.6, -10.0))
    leg, peer = await connected(engine, peers)
    result = await asyncio.wait_for(engine.play(leg, tmp_path / "p.wav"), 3)
    assert result.state is PlaybackState.COMPLETED and result.played_ms == 600
    assert abs(tone_level_dbfs(peer.received_audio(), 900) - -10.0) < 1.0


async def test_a_leg_moves_from_prompt_to_queue_music_to_agent_to_conference_and_back(
    engine: MediaEngine, peers: Peers
) -> None:
    caller, pc = await connected(engine, peers)
    agent, pa = await connected(engine, peers)
    supervisor, ps = await connected(engine, peers)
    # IVR prompt
    await asyncio.wait_for(engine.play(caller, sine(300, 0.5, -10.0)), 3)
    # queue music
    since = time.monotonic()
    music = engine.play(caller, sine(350, 5.0, -10.0), loop=True, barge_in=False)
    await asyncio.sleep(0.6)
    assert tone_level_dbfs(heard(pc, since + 0.1), 350) > -12
    music.stop()
    assert (await music).state is PlaybackState.STOPPED
    # bridged to the agent
    engine.bridge(caller, agent)
    steady = await play_tones((pc, 500.0), (pa, 1000.0))
    assert tone_level_dbfs(heard(pc, steady), 1000) > -11
    assert tone_level_dbfs(heard(pc, steady), 350) < -60
    # a third party: conference
    conf = engine.conference()
    for leg in (caller, agent, supervisor):
        conf.add(leg)
    assert caller.bridge is None
    steady = await play_tones((pc, 500.0), (pa, 1000.0), (ps, 1500.0))
    assert {f for f in (500, 1000, 1500) if tone_level_dbfs(heard(pc, steady), f) > -20} == {
        1000,
        1500,
    }
    # back to two: the supervisor leaves, caller and agent are bridged again
    conf.close()
    engine.bridge(caller, agent)
    steady = await play_tones((pc, 500.0), (pa, 1000.0), (ps, 1500.0))
    assert {f for f in (500, 1000, 1500) if tone_level_dbfs(heard(pc, steady), f) > -20} == {1000}


async def test_symmetric_rtp_latches_to_where_packets_come_from(
    engine: MediaEngine, peers: Peers
) -> None:
    peer = await peers()
    stranger = await peers()
    leg = await engine.open_leg()
    leg.configure(("127.0.0.1", 9), "PCMU")  # SDP says a port nothing listens on (NAT)
    engine.play(leg, sine(800, 3.0, -10.0))
    peer.connect((leg.host, leg.port))
    stranger.connect((leg.host, leg.port))
    await peer.send_tone(400, 0.2)
    assert leg.remote == peer.address
    await stranger.send_tone(400, 0.2)
    await asyncio.sleep(0.3)
    assert len(peer.received_audio()) > 0
    assert len(stranger.received) == 0
    assert leg.stats().foreign_dropped >= 9


async def test_a_stale_stream_on_a_reused_port_does_not_take_the_new_call(
    engine: MediaEngine, peers: Peers, caplog: pytest.LogCaptureFixture
) -> None:
    # issue 18.12: after a crash the old call's far end keeps sending to a port that a new
    # call now uses; the new caller (behind NAT: not from the SDP's address) must win
    stale = await peers()
    caller = await peers()
    leg = await engine.open_leg()
    stale.connect((leg.host, leg.port))
    old_stream = asyncio.create_task(stale.send_tone(300, 1.5))
    await asyncio.sleep(0.15)  # the stale stream arrives before the leg is configured
    leg.configure(("127.0.0.1", 9), "PCMU")
    engine.play(leg, sine(800, 3.0, -10.0))
    await asyncio.sleep(0.2)
    assert leg.remote == ("127.0.0.1", 9)  # not latched onto the stale stream
    caller.connect((leg.host, leg.port))
    await caller.send_tone(400, 0.3)
    await old_stream
    assert leg.remote == caller.address
    assert len(caller.received_audio()) > 0
    assert stale.received == []  # none of the new caller's audio went to the old party
    assert leg.stats().foreign_dropped >= 40
    assert any("refused" in r.getMessage() and str(stale.address[1]) in r.getMessage()
               for r in caplog.records)  # fmt: skip


async def test_malformed_and_unexpected_packets_are_dropped_without_harm(
    engine: MediaEngine, peers: Peers
) -> None:
    a, pa = await connected(engine, peers)
    b, pb = await connected(engine, peers)
    engine.bridge(a, b)
    junk = [
        b"\x80",
        b"\x00" * 12,  # version 0
        bytes([0x8F]) + bytes(15),  # CSRC count past the end
        bytes([0xA0, 0]) + bytes(10) + b"\xff",  # padding longer than the packet
        RtpPacket(99, 1, 1, 1, b"x" * 160).serialize(),  # payload type not negotiated
        RtpPacket(101, 1, 1, 1, b"\x01").serialize(),  # truncated telephone-event
    ]
    for data in junk:
        pa.send_raw(data)
    await asyncio.sleep(0.05)
    steady = await play_tones((pa, 1000.0), (pb, 500.0))
    assert abs(tone_level_dbfs(heard(pb, steady), 1000) - -10.0) < 1.0
    assert a.stats().malformed_dropped == len(junk)
    assert engine.tick_errors == 0


async def test_stats_count_loss_and_measure_rtt(engine: MediaEngine, peers: Peers) -> None:
    a, pa = await connected(engine, peers)
    b = await engine.open_leg()
    c = await engine.open_leg()
    b.configure((c.host, c.port), "PCMU")  # two engine legs talking to each other
    c.configure((b.host, b.port), "PCMU")
    engine.play(b, sine(500, 5.0))
    engine.play(c, sine(600, 5.0))
    await pa.send_pcm(sine(1000, 2.0), drop={10, 11, 30})
    await asyncio.sleep(0.5)
    stats = a.stats()
    assert stats.packets_received == 97
    assert stats.packets_lost == 3
    assert stats.loss_ratio == pytest.approx(3 / 99, abs=0.011)
    assert stats.jitter_ms < 5
    assert b.stats().rtt_ms is not None and 0 <= b.stats().rtt_ms < 20  # type: ignore[operator]
    assert c.stats().packets_sent > 50


async def test_listeners_receive_the_legs_audio_frames(engine: MediaEngine, peers: Peers) -> None:
    leg, peer = await connected(engine, peers)
    got: list[np.ndarray] = []

    async def consume() -> None:
        async for frame in leg.frames():
            got.append(frame)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    await peer.send_tone(1000, 1.0)
    await asyncio.sleep(0.2)
    leg.close()
    await asyncio.wait_for(task, 2)
    audio = np.concatenate(got)
    assert all(len(f) == 160 for f in got)
    assert abs(tone_level_dbfs(audio[800:-800], 1000) - -10.0) < 1.0


async def test_lost_packets_are_concealed_in_what_listeners_hear(
    engine: MediaEngine, peers: Peers
) -> None:
    leg, peer = await connected(engine, peers)
    got: list[np.ndarray] = []
    leg.add_listener(lambda f: got.append(f.copy()))
    await peer.send_pcm(sine(440, 1.0, -10.0), drop={20})
    await asyncio.sleep(0.2)
    audio = np.concatenate(got).astype(float)
    start = int(np.argmax(np.abs(audio) > 1000))
    body = audio[start + 160 : start + 7000]
    assert (
        np.abs(np.diff(body, 2)).max()
        < 1.5 * np.abs(np.diff(sine(440, 0.5, -10.0).astype(float), 2)).max()
    )
    assert leg.stats().concealed_frames >= 1


async def test_comfort_noise_packets_become_noise_at_their_level(
    engine: MediaEngine, peers: Peers
) -> None:
    leg, peer = await connected(engine, peers)
    got: list[np.ndarray] = []
    leg.add_listener(lambda f: got.append(f.copy()))
    await peer.send_tone(1000, 0.3)
    peer.send_raw(RtpPacket(13, peer.seq, peer.ts, peer.ssrc, bytes([50])).serialize())
    await asyncio.sleep(0.6)
    tail = np.concatenate(got[-15:])
    assert abs(rms_dbfs(tail) - (-50 + 3.01)) < 2  # -50 dBov noise (RMS vs sine-peak scale)


async def test_closed_leg_refuses_use_and_frees_its_port(engine: MediaEngine, peers: Peers) -> None:
    leg, _ = await connected(engine, peers)
    port = leg.port
    leg.close()
    assert leg.state is LegState.CLOSED
    with pytest.raises(LegClosed):
        leg.configure(("127.0.0.1", 4000), "PCMU")
    with pytest.raises(LegClosed):
        engine.play(leg, sine(440, 0.1))
    import socket

    await asyncio.sleep(0.01)  # transports close on the next loop iteration
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", port))


async def test_an_unsupported_codec_leaves_the_leg_unconfigured(
    engine: MediaEngine, peers: Peers
) -> None:
    from cloudcc.media.exceptions import UnsupportedCodec

    leg = await engine.open_leg()
    with pytest.raises(UnsupportedCodec):
        leg.configure(("127.0.0.1", 4000), "GSM")
    assert leg.state is LegState.OPEN and leg.config is None


async def test_a_leg_cannot_be_in_two_bridges(engine: MediaEngine, peers: Peers) -> None:
    a, _ = await connected(engine, peers)
    b, _ = await connected(engine, peers)
    c, _ = await connected(engine, peers)
    engine.bridge(a, b)
    with pytest.raises(LegBusy):
        engine.bridge(a, c)


async def test_port_range_exhaustion_is_a_specific_error() -> None:
    engine = MediaEngine("127.0.0.1", 53010, 53013)
    await engine.start()
    try:
        await engine.open_leg()
        await engine.open_leg()
        with pytest.raises(PortRangeExhausted):
            await engine.open_leg()
    finally:
        await engine.stop()


async def test_the_clock_reports_its_ticks_and_lateness(engine: MediaEngine) -> None:
    await asyncio.sleep(1.0)
    stats = engine.tick_stats()
    assert 45 <= stats.ticks <= 56  # skipped frames (after a long stall) count as ticks too
    assert stats.max_lateness_ms >= stats.p99_lateness_ms - 0.1 >= -0.1
    assert engine.late_ticks == stats.late_ticks


async def test_reinvite_to_another_codec_turns_the_relay_into_translation(
    engine: MediaEngine, peers: Peers
) -> None:
    a, pa = await connected(engine, peers)
    b, _ = await connected(engine, peers)
    bridge = engine.bridge(a, b)
    assert bridge.mode is BridgeMode.RELAY
    pb = await peers(codec="PCMA")  # the far end re-INVITEs with PCMA from a new port
    b.configure(pb.address, "PCMA")
    pb.connect((b.host, b.port))
    assert bridge.mode is BridgeMode.TRANSLATE
    steady = await play_tones((pa, 1000.0), (pb, 500.0))
    assert abs(tone_level_dbfs(heard(pb, steady), 1000) - -10.0) < 1.0
    assert abs(tone_level_dbfs(heard(pa, steady), 500) - -10.0) < 1.0


async def test_digits_sent_on_a_relaying_leg_interrupt_the_relay_only_while_they_play(
    engine: MediaEngine, peers: Peers
) -> None:
    a, pa = await connected(engine, peers)
    b, pb = await connected(engine, peers)
    engine.bridge(a, b)
    sending = asyncio.create_task(pa.send_tone(1000, 2.0))
    await asyncio.sleep(0.5)
    b.send_dtmf("9", duration_ms=100)
    await sending
    events = pb.received_events()
    assert [te.event for _, te in events if te.end] == [9, 9, 9]
    assert len({p.timestamp for p, _ in events}) == 1
    # the relayed audio went on after the digit, on the same stream
    last_event = max(r.arrival for r in pb.received if r.packet.payload_type == 101)
    after = heard(pb, last_event + 0.1)
    assert len(after) > 4000 and abs(tone_level_dbfs(after, 1000) - -10.0) < 1.0
    seqs = [r.packet.sequence for r in pb.received]
    assert all((y - x) & 0xFFFF == 1 for x, y in itertools.pairwise(seqs))


async def test_a_paused_recording_leaves_out_what_was_said_meanwhile(
    engine: MediaEngine, peers: Peers, tmp_path: Path
) -> None:
    leg, peer = await connected(engine, peers)
    recording = engine.record(tmp_path / "paused.wav", leg)
    await peer.send_tone(1000, 1.0)
    await asyncio.sleep(0.05)  # packets in flight land before the pause
    recording.pause()
    await peer.send_tone(500, 1.0)
    await asyncio.sleep(0.05)
    recording.resume()
    await peer.send_tone(1000, 1.0)
    info = await recording.stop()
    pcm, _ = read_wav(info.path)
    assert 1.8 < info.duration_s < 2.3
    assert tone_level_dbfs(pcm[:, 0], 500) < -40
    assert abs(tone_level_dbfs(pcm[:, 0], 1000) - -10.0) < 1.5
    assert [state for state, _ in info.transitions][-1].value == "stopped"


async def test_a_held_conference_participant_hears_music_and_is_not_heard(
    engine: MediaEngine, peers: Peers
) -> None:
    conf = engine.conference()
    members = [await connected(engine, peers) for _ in range(3)]
    for leg, _ in members:
        conf.add(leg)
    (held, ph), (_, p2), (_, p3) = members
    engine.hold(held)
    steady = await play_tones((ph, 440.0), (p2, 1020.0), (p3, 1730.0))
    assert abs(tone_level_dbfs(heard(ph, steady), MUSIC_HZ) - -12.0) < 1.0
    assert tone_level_dbfs(heard(ph, steady), 1020) < -40
    for peer, other in ((p2, 1730.0), (p3, 1020.0)):
        audio = heard(peer, steady)
        assert tone_level_dbfs(audio, 440) < -40 and tone_level_dbfs(audio, MUSIC_HZ) < -40
        assert abs(tone_level_dbfs(audio, other) - -10.0) < 1.0
