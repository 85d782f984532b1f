"""A browser stand-in for tests and benchmarks: aiortc's RTCPeerConnection (full ICE,
DTLS-SRTP, rtcp-mux, BUNDLE, as Chromium does) with a tone as its microphone and what
it hears kept as 8 kHz PCM."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import math
import time
from typing import Any

import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

_PTIME = 0.02


def loopback_only() -> None:
    """Let aioice offer 127.0.0.1 (it skips loopback addresses by default)."""
    import aioice.ice

    def loopback(use_ipv4: bool = True, use_ipv6: bool = False) -> list[str]:
        return ["127.0.0.1"]

    aioice.ice.get_host_addresses = loopback


class ToneTrack(MediaStreamTrack):
    """A microphone that plays a sine tone (8 kHz mono, paced in real time)."""

    kind = "audio"

    def __init__(self, freq: float, level_dbfs: float = -10.0) -> None:
        super().__init__()
        self.freq = freq
        self.amplitude = 32767 * 10 ** (level_dbfs / 20)
        self._start: float | None = None
        self._samples = 0

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        rate, n = 8000, int(_PTIME * 8000)
        if self._start is None:
            self._start = time.time()
        else:
            await asyncio.sleep(max(0.0, self._start + self._samples / rate - time.time()))
        t = (np.arange(n) + self._samples) / rate
        pcm = (self.amplitude * np.sin(2 * math.pi * self.freq * t)).astype(np.int16)
        frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, rate)
        self._samples += n
        return frame


class BrowserPeer:
    """One WebRTC peer: offers or answers, sends a tone, records what it receives."""

    def __init__(self, freq: float = 500.0) -> None:
        self.pc = RTCPeerConnection()
        self.pc.addTrack(ToneTrack(freq))
        self.received: list[tuple[float, np.ndarray]] = []  # (arrival, 8 kHz mono int16)
        self._reader: asyncio.Task[None] | None = None

        @self.pc.on("track")
        def on_track(track: Any) -> None:
            self._reader = asyncio.ensure_future(self._read(track))

    async def _read(self, track: Any) -> None:
        from cloudcc.media.codecs import resample

        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                pcm = frame.to_ndarray().reshape(-1)
                if frame.layout.name != "mono":
                    pcm = pcm.reshape(-1, len(frame.layout.channels))[:, 0]
                pcm = pcm.astype(np.int16)
                if frame.sample_rate != 8000:
                    pcm = resample(pcm, frame.sample_rate, 8000)
                self.received.append((time.monotonic(), pcm))

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)  # aiortc gathers before returning

    async def accept(self, answer: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    async def answer(self, offer: str) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return str(self.pc.localDescription.sdp)

    def audio(self, since: float = 0.0) -> np.ndarray:
        parts = [pcm for t, pcm in self.received if t >= since]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)

    async def close(self) -> None:
        await self.pc.close()
        if self._reader is not None:
            self._reader.cancel()
