"""A raw RTP peer and audio analysis helpers for tests (this package's and others').

``RtpPeer`` sends PCM/tones/WAV files as paced RTP and RFC 4733 digits, and keeps
every packet it receives so a test can analyse the audio (``tone_level_dbfs``).
It speaks real RTP over UDP on 127.0.0.1; no part of the engine is used except
the packet and codec code.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import socket
import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .codecs import create_codec, resample
from .dtmf import TelephoneEvent, event_code
from .exceptions import MalformedPacket
from .rtp import RtpPacket
from .wav import read_wav

PCM = NDArray[np.int16]
Address = tuple[str, int]


def sine(freq: float, seconds: float, level_dbfs: float = -10.0, rate: int = 8000) -> PCM:
    """A sine whose peak is ``level_dbfs`` below full scale."""
    t = np.arange(int(seconds * rate)) / rate
    amplitude = 32767 * 10 ** (level_dbfs / 20)
    return np.round(amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def tone_level_dbfs(pcm: PCM, freq: float, rate: int = 8000, band_hz: float = 10.0) -> float:
    """Peak level (dBFS) of the sine at ``freq`` in ``pcm``, measured by FFT (Hann window);
    -120 for nothing there."""
    x = np.asarray(pcm, dtype=np.float64)
    n = len(x)
    if n < 64:
        return -120.0
    w = np.hanning(n)
    spectrum = np.abs(np.fft.rfft(x * w)) ** 2
    freqs = np.fft.rfftfreq(n, 1 / rate)
    band = (freqs >= freq - band_hz) & (freqs <= freq + band_hz)
    power = float(spectrum[band].sum())
    amplitude = math.sqrt(4 * power / (n * float(np.sum(w * w))))
    if amplitude <= 0:
        return -120.0
    return max(-120.0, 20 * math.log10(amplitude / 32767))


def rms_dbfs(pcm: PCM) -> float:
    """RMS level relative to a full-scale sine's RMS (so a sine reads as its peak level)."""
    x = np.asarray(pcm, dtype=np.float64)
    if len(x) == 0:
        return -120.0
    rms = math.sqrt(float(np.mean(x * x)))
    if rms <= 0:
        return -120.0
    return max(-120.0, 20 * math.log10(rms / (32767 / math.sqrt(2))))


@dataclass(frozen=True, slots=True)
class Received:
    arrival: float  # time.monotonic()
    source: Address
    packet: RtpPacket


class _PeerProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.malformed = 0

    def datagram_received(self, data: bytes, addr: Address) -> None:
        try:
            packet = RtpPacket.parse(data)
        except MalformedPacket:
            self.malformed += 1
            return
        self.received.append(Received(time.monotonic(), addr, packet))


class RtpPeer:
    """A test endpoint: one UDP socket speaking RTP with a fixed codec."""

    def __init__(
        self,
        transport: asyncio.DatagramTransport,
        protocol: _PeerProtocol,
        port: int,
        host: str,
        codec: str,
        payload_type: int,
        dtmf_payload_type: int,
    ) -> None:
        self.transport = transport
        self.host = host
        self.port = port
        self.codec = create_codec(codec)
        self.payload_type = payload_type
        self.dtmf_payload_type = dtmf_payload_type
        self.remote: Address | None = None
        self._protocol = protocol
        rng = random.Random()
        self.ssrc = rng.getrandbits(32)
        self.seq = rng.randrange(65536)
        self.ts = rng.getrandbits(32)
        self.sent = 0

    @classmethod
    async def open(
        cls,
        host: str = "127.0.0.1",
        codec: str = "PCMU",
        payload_type: int | None = None,
        dtmf_payload_type: int = 101,
    ) -> RtpPeer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((host, 0))
        sock.setblocking(False)
        port = sock.getsockname()[1]
        protocol = _PeerProtocol()
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: protocol, sock=sock
        )
        pt = payload_type
        if pt is None:
            pt = create_codec(codec).static_payload_type
            assert pt is not None
        return cls(transport, protocol, port, host, codec, pt, dtmf_payload_type)

    @property
    def received(self) -> list[Received]:
        """Every valid RTP packet received, in arrival order."""
        return self._protocol.received

    @property
    def malformed(self) -> int:
        return self._protocol.malformed

    @property
    def address(self) -> Address:
        return (self.host, self.port)

    def connect(self, remote: Address) -> None:
        self.remote = remote

    def close(self) -> None:
        self.transport.close()

    def send_raw(self, data: bytes, remote: Address | None = None) -> None:
        target = remote or self.remote
        assert target is not None, "connect() the peer first"
        self.transport.sendto(data, target)

    def _packet(self, payload: bytes, pt: int, ts: int, marker: bool = False) -> bytes:
        packet = RtpPacket(pt, self.seq, ts & 0xFFFFFFFF, self.ssrc, payload, marker=marker)
        self.seq = (self.seq + 1) & 0xFFFF
        self.sent += 1
        return packet.serialize()

    async def send_pcm(
        self, pcm: PCM, ptime: int = 20, drop: set[int] | None = None, rate: int = 8000
    ) -> None:
        """Send PCM as RTP paced in real time against absolute deadlines.
        ``drop``: indexes of packets to skip (simulated loss; sequence numbers still advance)."""
        if rate != self.codec.sample_rate:
            pcm = resample(pcm, rate, self.codec.sample_rate)
        samples = ptime * self.codec.sample_rate // 1000
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i, offset in enumerate(range(0, len(pcm), samples)):
            chunk = pcm[offset : offset + samples]
            if len(chunk) < samples:
                chunk = np.concatenate([chunk, np.zeros(samples - len(chunk), dtype=np.int16)])
            deadline = start + i * ptime / 1000
            delay = deadline - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            data = self._packet(self.codec.encode(chunk), self.payload_type, self.ts, i == 0)
            if drop is None or i not in drop:
                self.send_raw(data)
            self.ts += self.codec.timestamp_units(samples)

    async def send_tone(self, freq: float, seconds: float, level_dbfs: float = -10.0) -> None:
        await self.send_pcm(sine(freq, seconds, level_dbfs))

    async def send_wav(self, path: str | os.PathLike[str]) -> None:
        pcm, rate = read_wav(path)
        await self.send_pcm(pcm.mean(axis=1).astype(np.int16), rate=rate)

    async def send_dtmf(
        self, digits: str, duration_ms: int = 100, gap_ms: int = 100, end_repeats: int = 3
    ) -> None:
        """Send digits as RFC 4733 events: marker on the first packet, updates every 20 ms,
        the end packet ``end_repeats`` times (§2.5.1.4)."""
        loop = asyncio.get_running_loop()
        for digit in digits:
            code = event_code(digit)
            start_ts = self.ts
            frames = max(1, duration_ms // 20)
            for i in range(1, frames + 1):
                end = i == frames
                payload = TelephoneEvent(code, end, 10, i * 160).serialize()
                self.send_raw(self._packet(payload, self.dtmf_payload_type, start_ts, i == 1))
                await asyncio.sleep(0.02)
            for _ in range(end_repeats - 1):
                payload = TelephoneEvent(code, True, 10, frames * 160).serialize()
                self.send_raw(self._packet(payload, self.dtmf_payload_type, start_ts))
            self.ts += frames * 160
            await asyncio.sleep(gap_ms / 1000)
            self.ts += int(gap_ms * 8)
        del loop

    # -- what arrived --------------------------------------------------------------------------

    def audio_packets(self, since: float = 0.0, until: float = math.inf) -> list[Received]:
        return [
            r
            for r in self.received
            if r.packet.payload_type == self.payload_type and since <= r.arrival < until
        ]

    def received_audio(self, since: float = 0.0, until: float = math.inf) -> PCM:
        """Decoded audio payloads received in [since, until), in arrival order."""
        packets = self.audio_packets(since, until)
        if not packets:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate([self.codec.decode(r.packet.payload) for r in packets])

    def received_events(self) -> list[tuple[RtpPacket, TelephoneEvent]]:
        return [
            (r.packet, TelephoneEvent.parse(r.packet.payload))
            for r in self.received
            if r.packet.payload_type == self.dtmf_payload_type
        ]

    def clear(self) -> None:
        self.received.clear()


def read_pcap_udp(path: str | os.PathLike[str]) -> list[tuple[float, bytes]]:
    """UDP payloads of a classic pcap file (Ethernet or Linux cooked capture, IPv4):
    (capture time, payload) in file order. For replaying SIPp's RTP captures."""
    import struct

    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic == b"\xd4\xc3\xb2\xa1":
        endian = "<"
    elif magic == b"\xa1\xb2\xc3\xd4":
        endian = ">"
    else:
        raise ValueError(f"{path}: not a classic pcap file")
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    link_header = {1: 14, 113: 16}.get(linktype)
    if link_header is None:
        raise ValueError(f"{path}: unsupported link type {linktype}")
    out: list[tuple[float, bytes]] = []
    offset = 24
    while offset + 16 <= len(data):
        sec, usec, incl, _ = struct.unpack_from(endian + "IIII", data, offset)
        frame = data[offset + 16 : offset + 16 + incl]
        offset += 16 + incl
        ip = frame[link_header:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        udp = ip[(ip[0] & 0x0F) * 4 :]
        out.append((sec + usec / 1e6, bytes(udp[8:])))
    return out
