"""Fixtures for media tests: an engine on a random high port range, raw RTP peers."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest

from cloudcc.media.engine import MediaEngine
from cloudcc.media.player import AudioSource, PcmSource
from cloudcc.media.testing import RtpPeer, sine

MUSIC_HZ = 700.0


def tone_music() -> AudioSource:
    """Music on hold for tests: a 700 Hz tone, easy to find by FFT."""
    return PcmSource(sine(MUSIC_HZ, 1.0, -12.0))


@pytest.fixture
async def engine() -> AsyncIterator[MediaEngine]:
    base = random.randrange(40000, 59000, 2)  # the engine skips ports in use
    eng = MediaEngine(
        "127.0.0.1", base, base + 600, music_on_hold=tone_music, rtcp_interval=0.5, seed=None
    )
    await eng.start()
    try:
        yield eng
    finally:
        await eng.stop()
    assert eng.tick_errors == 0, "a media tick raised (see the log)"


@pytest.fixture
async def peers() -> AsyncIterator[Callable[..., Awaitable[RtpPeer]]]:
    opened: list[RtpPeer] = []

    async def make(**kwargs: object) -> RtpPeer:
        peer = await RtpPeer.open(**kwargs)  # type: ignore[arg-type]
        opened.append(peer)
        return peer

    try:
        yield make
    finally:
        for peer in opened:
            peer.close()


@pytest.fixture
def wav_dir(tmp_path: Path) -> Path:
    return tmp_path


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * 8000), dtype=np.int16)
