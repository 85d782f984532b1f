"""Jitter buffer (reordering, loss, mixed packet sizes, comfort noise) and loss concealment."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudcc.media.jitter import ComfortNoise, Concealer, JitterBuffer, comfort_noise
from cloudcc.media.testing import rms_dbfs, sine


def frame_bytes(n: int) -> bytes:
    return bytes([n % 256]) * 160


def drain(jb: JitterBuffer, count: int) -> list[bytes | ComfortNoise | None]:
    return [jb.pop() for _ in range(count)]


def test_in_order_packets_come_out_after_the_target_delay() -> None:
    jb = JitterBuffer(target_ms=40)
    for i in range(5):
        jb.put(1000 + i * 160, frame_bytes(i))
    out = drain(jb, 7)
    assert out[:2] == [None, None]  # 40 ms of initial delay
    assert out[2:] == [frame_bytes(i) for i in range(5)]


@settings(max_examples=50)
@given(st.permutations(list(range(8))))
def test_any_reordering_within_the_buffer_depth_is_undone(order: list[int]) -> None:
    jb = JitterBuffer(target_ms=200)
    for i in order:
        jb.put(5000 + i * 160, frame_bytes(i))
    out = [x for x in drain(jb, 20) if x is not None]
    assert out == [frame_bytes(i) for i in range(8)]


def test_a_missing_packet_is_a_gap_for_concealment() -> None:
    jb = JitterBuffer(target_ms=0)
    for i in (0, 1, 3):
        jb.put(i * 160, frame_bytes(i))
    assert drain(jb, 4) == [frame_bytes(0), frame_bytes(1), None, frame_bytes(3)]


def test_late_and_duplicate_packets_are_dropped_and_counted() -> None:
    jb = JitterBuffer(target_ms=0)
    jb.put(0, frame_bytes(0))
    jb.put(160, frame_bytes(1))
    assert not jb.put(160, frame_bytes(1))
    drain(jb, 2)
    jb.put(320, frame_bytes(2))
    assert not jb.put(0, frame_bytes(0))
    assert (jb.late, jb.duplicates) == (1, 1)


def test_thirty_ms_packets_come_out_as_twenty_ms_frames() -> None:
    jb = JitterBuffer(target_ms=0)
    data = bytes(range(240)) * 2
    jb.put(0, data[:240])
    jb.put(240, data[240:])
    out = drain(jb, 3)
    assert b"".join(x for x in out if isinstance(x, bytes)) == data


def test_timestamps_wrapping_around_2_to_the_32_keep_order() -> None:
    jb = JitterBuffer(target_ms=0)
    start = 2**32 - 320
    for i in range(4):
        jb.put((start + i * 160) & 0xFFFFFFFF, frame_bytes(i))
    assert drain(jb, 4) == [frame_bytes(i) for i in range(4)]


def test_comfort_noise_fills_the_silence_instead_of_concealment() -> None:
    jb = JitterBuffer(target_ms=0)
    jb.put(0, frame_bytes(1))
    jb.put(160, ComfortNoise(60))
    out = drain(jb, 5)
    assert out[0] == frame_bytes(1)
    assert out[1:] == [ComfortNoise(60)] * 4
    jb.put(800, frame_bytes(2))  # talk resumes
    assert jb.pop() == frame_bytes(2)


def test_comfort_noise_level_follows_rfc3389() -> None:
    noise = comfort_noise(40, 8000, np.random.default_rng(1))
    rms = float(np.sqrt(np.mean(noise.astype(float) ** 2)))
    assert abs(20 * np.log10(rms / 32767) - -40) < 0.5


def test_a_sender_running_fast_does_not_grow_latency_without_bound() -> None:
    jb = JitterBuffer(target_ms=40, max_ms=120)
    ts = 0
    for _ in range(500):  # two packets arrive for every frame taken out
        jb.put(ts, frame_bytes(1))
        jb.put(ts + 160, frame_bytes(1))
        ts += 320
        jb.pop()
    assert jb.depth_samples <= 120 * 8 + 320
    assert jb.dropped_overflow + jb.resyncs > 0


def clicks(x: np.ndarray) -> float:
    """Largest second difference: a step or a hole in a waveform shows up here."""
    return float(np.abs(np.diff(x.astype(np.float64), 2)).max())


def run_with_loss(signal: np.ndarray, lost: set[int], concealer: Concealer | None) -> np.ndarray:
    out = []
    for i in range(len(signal) // 160):
        frame = signal[i * 160 : (i + 1) * 160]
        if i in lost:
            out.append(concealer.conceal() if concealer else np.zeros(160, dtype=np.int16))
        else:
            out.append(concealer.good(frame) if concealer else frame)
    return np.concatenate(out)


def test_a_lost_packet_in_a_tone_is_not_a_click() -> None:
    tone = sine(440, 1.0, -10.0)
    clean = clicks(tone)
    concealed = run_with_loss(tone, {20}, Concealer())
    zeroed = run_with_loss(tone, {20}, None)
    assert clicks(concealed) <= 1.2 * clean
    assert clicks(zeroed) > 5 * clean
    # and the concealed frame carries the tone at nearly its level
    assert rms_dbfs(concealed[3200:3360]) > -11.0


def test_a_lost_packet_in_speech_like_audio_is_smooth() -> None:
    rng = np.random.default_rng(2)
    t = np.arange(8000) / 8000
    voiced = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 8))
    pcm = (voiced * 6000 * (1 + 0.2 * rng.standard_normal(1).item())).astype(np.int16)
    concealed = run_with_loss(pcm, {10, 30}, Concealer())
    zeroed = run_with_loss(pcm, {10, 30}, None)
    assert clicks(concealed) < 0.5 * clicks(zeroed)


def test_a_long_loss_fades_to_silence() -> None:
    tone = sine(300, 1.0, -10.0)
    out = run_with_loss(tone, set(range(10, 30)), Concealer())
    assert rms_dbfs(out[10 * 160 : 11 * 160]) > -12  # first lost frame still carries the tone
    assert rms_dbfs(out[14 * 160 : 30 * 160]) < -100  # after 60 ms: silence
