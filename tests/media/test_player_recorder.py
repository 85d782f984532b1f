"""Player (WAV, PCM, playlists, loop, barge-in) and recorder (states, crash safety)."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from cloudcc.media import g711
from cloudcc.media.exceptions import AudioFormatError, IllegalTransition
from cloudcc.media.player import PcmSource, PlaybackState, Player, Playlist, WavSource
from cloudcc.media.recorder import (
    FrameChannel,
    Recorder,
    RecordingState,
    TimelineChannel,
    file_sha256,
)
from cloudcc.media.testing import sine, tone_level_dbfs
from cloudcc.media.wav import read_wav, wav_header, write_wav

PROMPT = "/usr/share/asterisk/sounds/en_US_f_Allison/one-moment-please.wav"


def play_all(player: Player, limit: int = 100_000) -> np.ndarray:
    frames = []
    while (frame := player.next_frame()) is not None and len(frames) < limit:
        frames.append(frame)
    return np.concatenate(frames) if frames else np.zeros(0, dtype=np.int16)


def test_wav_prompt_plays_sample_for_sample(tmp_path: Path) -> None:
    tone = sine(1000, 0.5, -6.0)
    write_wav(tmp_path / "p.wav", tone)
    player = Player(WavSource(tmp_path / "p.wav"))
    out = play_all(player)
    assert np.array_equal(out[: len(tone)], tone)
    assert len(out) == 4000  # 25 whole frames
    assert player.state is PlaybackState.COMPLETED
    assert player.result().played_ms == 500


def test_a_16khz_stereo_wav_is_resampled_and_mixed_down(tmp_path: Path) -> None:
    tone = sine(700, 1.0, -10.0, rate=16000)
    write_wav(tmp_path / "s.wav", np.stack([tone, tone], axis=1), rate=16000)
    out = play_all(Player(WavSource(tmp_path / "s.wav")))
    assert abs(len(out) - 8000) <= 160
    assert abs(tone_level_dbfs(out[800:-800], 700) - -10.0) < 0.3


def test_mulaw_wav_is_read(tmp_path: Path) -> None:
    tone = sine(1000, 0.2, -10.0)
    codes = g711.ulaw_encode(tone)
    header = bytearray(wav_header(1, 8000, len(codes)))
    struct.pack_into("<HHIIHH", header, 20, 7, 1, 8000, 8000, 1, 8)  # WAVE_FORMAT_MULAW
    (tmp_path / "u.wav").write_bytes(bytes(header) + codes)
    out = play_all(Player(WavSource(tmp_path / "u.wav")))
    assert abs(tone_level_dbfs(out, 1000) - -10.0) < 0.2


def test_not_a_wav_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "x.wav").write_bytes(b"hello world, not audio")
    with pytest.raises(AudioFormatError, match="RIFF"):
        WavSource(tmp_path / "x.wav")
    with pytest.raises(AudioFormatError, match="cannot open"):
        WavSource(tmp_path / "missing.wav")


def test_tts_pcm_array_plays_and_loops() -> None:
    pcm = sine(500, 0.1, -10.0)  # 5 frames
    player = Player(PcmSource(pcm), loop=True)
    out = [player.next_frame() for _ in range(12)]
    assert all(f is not None for f in out)
    assert np.array_equal(out[5], out[0])  # started over


def test_music_playlist_moves_on_to_the_next_file_and_loops(tmp_path: Path) -> None:
    write_wav(tmp_path / "a.wav", np.full(320, 1000, dtype=np.int16))
    write_wav(tmp_path / "b.wav", np.full(320, 2000, dtype=np.int16))
    player = Player(Playlist([tmp_path / "a.wav", tmp_path / "b.wav"]), loop=True)
    values = [int(f[0]) for f in (player.next_frame() for _ in range(6)) if f is not None]
    player.stop()
    assert values == [1000, 1000, 2000, 2000, 1000, 1000]


def test_a_digit_interrupts_a_prompt_that_allows_barge_in() -> None:
    player = Player(PcmSource(sine(500, 2.0)), barge_in=True)
    player.next_frame()
    assert player.on_dtmf("5")
    assert player.next_frame() is None
    assert player.result().state is PlaybackState.INTERRUPTED
    assert player.result().digit == "5"


def test_a_digit_does_not_interrupt_music_without_barge_in() -> None:
    player = Player(PcmSource(sine(500, 2.0)), barge_in=False)
    assert not player.on_dtmf("5")
    assert player.next_frame() is not None


def test_stopped_playback_cannot_complete_later() -> None:
    player = Player(PcmSource(sine(500, 0.1)))
    player.stop()
    assert player.state is PlaybackState.STOPPED
    with pytest.raises(IllegalTransition):
        player._transition(PlaybackState.COMPLETED)


@pytest.mark.skipif(not os.path.exists(PROMPT), reason="asterisk prompts not installed")
def test_asterisk_prompt_plays_in_full() -> None:
    pcm, rate = read_wav(PROMPT)
    out = play_all(Player(WavSource(PROMPT)))
    assert rate == 8000
    assert np.array_equal(out[: len(pcm)], pcm[:, 0])


def test_stereo_recording_pause_resume_and_metadata(tmp_path: Path) -> None:
    left, right = FrameChannel(), FrameChannel()
    rec = Recorder(tmp_path / "r.wav", (left, right), now=0.0, margin=0.0)
    a, b = sine(1000, 0.02), sine(500, 0.02)

    def run(start: float, frames: int) -> None:
        for i in range(frames):
            left.put(a)
            right.put(b)
            t = start + (i + 1) * 0.02
            if rec.due(t):
                rec.flush(t)

    run(0.0, 50)
    rec.pause(1.0)
    run(1.0, 50)  # not recorded
    rec.resume(2.0)
    run(2.0, 25)
    path, duration, size = rec.stop(2.5)
    assert duration == pytest.approx(1.5)
    assert size == 44 + 75 * 160 * 4
    pcm, rate = read_wav(path)
    assert pcm.shape == (12000, 2) and rate == 8000
    assert abs(tone_level_dbfs(pcm[:, 0], 1000) - -10) < 0.1
    assert tone_level_dbfs(pcm[:, 0], 500) < -60
    assert [s for s, _ in rec.transitions] == [
        RecordingState.RECORDING,
        RecordingState.PAUSED,
        RecordingState.RECORDING,
        RecordingState.STOPPED,
    ]
    assert len(file_sha256(path)) == 64
    with pytest.raises(IllegalTransition):
        rec.resume(3.0)


def test_mono_recording_mixes_both_sides(tmp_path: Path) -> None:
    left, right = FrameChannel(), FrameChannel()
    rec = Recorder(tmp_path / "m.wav", (left, right), now=0.0, stereo=False)
    for _ in range(50):
        left.put(sine(1000, 0.02))
        right.put(sine(500, 0.02))
    path, duration, _ = rec.stop(1.0)
    pcm, _ = read_wav(path)
    assert pcm.shape[1] == 1 and duration == pytest.approx(1.0)
    assert abs(tone_level_dbfs(pcm[:, 0], 1000) - -10) < 0.2
    assert abs(tone_level_dbfs(pcm[:, 0], 500) - -10) < 0.2


def packets_of(pcm: np.ndarray, ts0: int) -> list[tuple[int, bytes]]:
    codes = g711.ulaw_encode(pcm)
    return [(ts0 + i, codes[i : i + 160]) for i in range(0, len(codes), 160)]


def test_timeline_channel_puts_reordered_packets_in_place() -> None:
    tone = sine(440, 1.0, -10.0)
    packets = packets_of(tone, 123456)
    order = list(range(len(packets)))
    for i in range(0, len(order) - 1, 2):
        order[i], order[i + 1] = order[i + 1], order[i]
    channel = TimelineChannel(start=0.0)
    for n, i in enumerate(order):
        ts, payload = packets[i]
        channel.put(ts, payload, arrival=n * 0.02)
    out = channel.take(8000)
    assert np.array_equal(out, g711.ulaw_decode(g711.ulaw_encode(tone)))


def test_timeline_channel_conceals_a_lost_packet_without_a_click() -> None:
    tone = sine(440, 1.0, -10.0)
    channel = TimelineChannel(start=0.0)
    for n, (ts, payload) in enumerate(packets_of(tone, 2**32 - 800)):  # wraps, too
        if n != 20:
            channel.put(ts, payload, arrival=n * 0.02)
    out = channel.take(8000).astype(float)
    coded = g711.ulaw_decode(g711.ulaw_encode(tone)).astype(float)
    clean = np.abs(np.diff(coded, 2)).max()
    assert np.abs(np.diff(out, 2)).max() < 1.3 * clean
    assert abs(tone_level_dbfs(out[3200:3360], 440) - -10) < 3


def test_timeline_channel_starts_at_the_first_packets_arrival() -> None:
    channel = TimelineChannel(start=10.0)
    channel.put(5000, g711.ulaw_encode(sine(440, 0.02)), arrival=10.5)
    out = channel.take(8000)
    assert not out[:4000].any()  # half a second of silence before the party spoke
    assert out[4000:4160].any()


def test_timeline_channel_translates_alaw_packets_into_its_law() -> None:
    tone = sine(1010, 0.2)  # not a divisor of 8 kHz: quantisation errors average out
    channel = TimelineChannel(start=0.0, law=0)
    codes = g711.alaw_encode(tone)
    for i in range(0, len(codes), 160):
        channel.put(i, codes[i : i + 160], arrival=i / 8000, law=1)
    assert abs(tone_level_dbfs(channel.take(1600), 1010) - -10) < 0.2


CHILD = textwrap.dedent(
    """
    import asyncio, sys, time
    from cloudcc.media.engine import MediaEngine
    from cloudcc.media.testing import RtpPeer

    async def main(path):
        engine = MediaEngine("127.0.0.1", 40000, 60000)
        await engine.start()
        leg = await engine.open_leg()
        peer = await RtpPeer.open()
        leg.configure(peer.address, "PCMU")
        peer.connect((leg.host, leg.port))
        engine.record(path, leg)
        print("recording", time.monotonic(), flush=True)
        await peer.send_tone(1000, 60.0)

    asyncio.run(main(sys.argv[1]))
    """
)


def test_a_killed_recording_process_leaves_a_valid_wav_missing_at_most_a_second(
    tmp_path: Path,
) -> None:
    path = tmp_path / "crash.wav"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.Popen(
        ["timeout", "60", sys.executable, str(script), str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("recording"), line
        started = float(line.split()[1])
        time.sleep(3.3)
        # timeout(1) is the parent: kill the python child itself, as a crash would
        child = int(Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()[0])
        killed_at = time.monotonic()
        os.kill(child, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    data = path.read_bytes()
    (riff_size,) = struct.unpack_from("<I", data, 4)
    (data_size,) = struct.unpack_from("<I", data, 40)
    assert data[:4] == b"RIFF" and data[36:40] == b"data"
    assert riff_size == 36 + data_size  # header patched to match
    assert data_size <= len(data) - 44
    recorded = data_size / 2 / 8000
    elapsed = killed_at - started
    assert recorded >= elapsed - 1.0, (recorded, elapsed)
    pcm, _ = read_wav(path)
    # the tone, at its level, in what survived (after the jitter buffer's start-up delay)
    assert abs(tone_level_dbfs(pcm[2000:, 0], 1000) - -10.0) < 1.0
