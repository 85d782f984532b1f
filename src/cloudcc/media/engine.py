"""The asyncio side of the media engine: UDP port pairs, legs, and the one 20 ms tick
that drives playing, mixing, transcoding, recording and in-band DTMF for every leg.

Packets of bridged legs that share a codec are relayed as they arrive (the fast
path); everything that needs audio is batched per tick with numpy across all legs.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
import os
import random
import socket
import time
from collections.abc import AsyncIterator, Callable, Generator
from dataclasses import dataclass
from typing import Any, Final, Protocol

import numpy as np
from numpy.typing import NDArray

from . import g711
from .bridge import BridgeMode, choose_mode, translation_table
from .clock import TickClock, TickStats
from .codecs import Codec, G711Codec, Resampler, create_codec
from .diskwriter import QueuedWavWriter, WriterThread
from .dtmf import (
    DtmfEvent,
    DtmfSource,
    GoertzelBank,
    InbandDtmfDetector,
    TelephoneEventReceiver,
    TelephoneEventSender,
    dtmf_tone,
    event_code,
    validate_digits,
)
from .exceptions import (
    EngineNotRunning,
    IllegalTransition,
    LegBusy,
    LegClosed,
    LegNotConfigured,
    MalformedPacket,
    MediaError,
    NotAParticipant,
    PortRangeExhausted,
)
from .jitter import ComfortNoise, Concealer, JitterBuffer, comfort_noise
from .mixer import Mix, ParticipantMode
from .player import (
    AudioSource,
    PcmSource,
    PlaybackResult,
    PlaybackState,
    Player,
    Playlist,
    WavSource,
    default_music_on_hold,
)
from .recorder import (
    RATE,
    Channel,
    FrameChannel,
    Recorder,
    RecordingInfo,
    RecordingState,
    TimelineChannel,
    file_sha256,
)
from .rtcp import parse_compound
from .rtp import COMFORT_NOISE_PT, HEADER, header_fields, payload_of
from .session import Latch, LegStats, ReceiverStats, RtpSession

log = logging.getLogger(__name__)
_UNPACK_HEADER: Final = HEADER.unpack_from
_monotonic: Final = time.monotonic

PCM = NDArray[np.int16]
Address = tuple[str, int]
FRAME: Final = 160  # samples per 20 ms tick at 8 kHz
_MAX_SOURCES: Final = 8  # early and refused source addresses remembered per leg
SILENCE_PCM: Final = np.zeros(FRAME, dtype=np.int16)
SILENCE_PCM.flags.writeable = False

# decode: index = byte + 256 * law (0 µ, 1 A); encode: index = uint16(pcm) + 65536 * law
_DECODE_2: Final = np.concatenate([g711.ULAW_DECODE, g711.ALAW_DECODE])
_ENCODE_2: Final = np.concatenate([g711.ULAW_ENCODE, g711.ALAW_ENCODE])


class LegState(enum.Enum):
    OPEN = "open"  # bound to a port pair, waiting for configure()
    ACTIVE = "active"  # remote and codec known: media flows
    CLOSED = "closed"


_LEG_TRANSITIONS: Final = {
    LegState.OPEN: {LegState.ACTIVE, LegState.CLOSED},
    LegState.ACTIVE: {LegState.ACTIVE, LegState.CLOSED},
}


class _Out(enum.IntEnum):
    """What feeds a leg's outgoing stream on a tick (in priority order of _refresh)."""

    NONE = 0
    RELAYED = 1  # the bridge peer's packets, relayed on arrival
    SILENCE = 2
    PLAYER = 3
    CONFERENCE = 4
    TRANSCODE = 5


class _RtpProtocol(asyncio.DatagramProtocol):
    def __init__(self, leg: Leg) -> None:
        self.leg = leg

    def datagram_received(self, data: bytes, addr: Address) -> None:
        try:
            self.leg._on_rtp(data, addr)
        except Exception:  # never let one packet kill the transport
            log.exception("leg %s: RTP packet handling failed", self.leg.id)

    def error_received(self, exc: Exception) -> None:
        log.debug("leg %s: RTP socket error %s", self.leg.id, exc)


class _SecureProtocol(asyncio.DatagramProtocol):
    """A leg's RTP socket once a secure transport sits in front of the leg."""

    def __init__(self, leg: Leg, secure: SecureTransport) -> None:
        self.leg = leg
        self.received = secure.datagram_received

    def datagram_received(self, data: bytes, addr: Address) -> None:
        try:
            self.received(data, addr)
        except Exception:  # never let one packet kill the transport
            log.exception("leg %s: secure packet handling failed", self.leg.id)

    def error_received(self, exc: Exception) -> None:
        log.debug("leg %s: RTP socket error %s", self.leg.id, exc)


class _RtcpProtocol(asyncio.DatagramProtocol):
    def __init__(self, leg: Leg) -> None:
        self.leg = leg

    def datagram_received(self, data: bytes, addr: Address) -> None:
        leg = self.leg
        try:
            if leg._secure is None:
                leg._on_rtcp(data, addr)
            elif leg._secure_rtcp is not None:
                leg._secure_rtcp(data, addr)
            # else: the secure transport muxes RTCP on the RTP port (RFC 5761)
        except Exception:
            log.exception("leg %s: RTCP packet handling failed", self.leg.id)

    def error_received(self, exc: Exception) -> None:
        log.debug("leg %s: RTCP socket error %s", self.leg.id, exc)


class SecureTransport(Protocol):
    """What sits between a leg's socket and the leg when its media is protected (WebRTC:
    ICE, DTLS and SRTP on the RTP port): it gets every datagram the socket receives and
    hands the leg plain RTP/RTCP (``Leg._on_rtp``/``_on_rtcp``); the leg's RTP goes out
    through its ``sendto``. One that keeps RTCP on its own port (SDES on SIP legs) also
    has ``rtcp_datagram_received``."""

    def datagram_received(self, data: bytes, addr: Address) -> None: ...

    def sendto(self, data: bytes, addr: Address | None = None) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class LegConfig:
    remote: Address
    codec: str
    payload_type: int
    dtmf_payload_type: int | None
    ptime: int
    latching: bool
    inband_dtmf: bool
    rtcp_remote: Address


class Leg:
    """One RTP stream pair bound to a local port (RTCP on port + 1)."""

    def __init__(
        self,
        engine: MediaEngine,
        leg_id: str,
        host: str,
        port: int,
        now: float,
    ) -> None:
        self.engine = engine
        self.id = leg_id
        self.host = host
        self.port = port
        self.rtcp_port = port + 1
        self.state = LegState.OPEN
        self.transitions: list[tuple[LegState, float]] = [(LegState.OPEN, now)]
        self.config: LegConfig | None = None
        self.codec: Codec | None = None
        self.held = False
        self.muted = False
        self._rtp: asyncio.DatagramTransport
        self._fast_addr: Address | None = None
        self._fast_source: ReceiverStats | None = None
        self._rtcp: asyncio.DatagramTransport
        self._secure: SecureTransport | None = None
        self._secure_rtcp: Callable[[bytes, Address], None] | None = None  # SRTCP, own port
        self._pinned: Address | None = None
        self._event_ts = 0
        self.session = RtpSession(
            8000,
            now,
            cname=f"{leg_id}@cloudcc",
            rng=engine._rng,
            rtcp_interval=engine.rtcp_interval,
        )
        self._latch = Latch(None)
        self._rtcp_latch = Latch(None)
        self._early_sources: set[Address] = set()  # sending before configure(): stale
        self._refused_sources: set[Address] = set()  # logged once each (bounded)
        self._jb = JitterBuffer(FRAME, target_ms=engine.jitter_ms)
        self._plc = Concealer(FRAME)
        self._te_rx = TelephoneEventReceiver()
        self._te_tx = TelephoneEventSender(FRAME)
        self._inband: InbandDtmfDetector | None = None
        self._inband_previous: PCM = SILENCE_PCM
        self._tones: list[PCM] = []  # in-band DTMF to send (legs without telephone-event)
        self._law = 0
        self._pt = 0
        self._dtmf_pt: int | None = None
        self._g711 = True
        self._wide_in: Resampler | None = None
        self._wide_out: Resampler | None = None
        self._out_buffer = np.zeros(0, dtype=np.int16)
        self._wide_pending = np.zeros(0, dtype=np.int16)
        # attachments
        self.bridge: Bridge | None = None
        self.conference: Conference | None = None
        self._player: Player | None = None
        self._playback: Playback | None = None
        self._hold_player: Player | None = None
        self._timelines: list[TimelineChannel] = []  # recordings fed by this leg's packets
        self._frame_recordings = 0  # recordings fed from decoded frames (wideband legs)
        # per tick
        self._out = _Out.NONE
        self._needs_audio = False
        self._relay_target: Leg | None = None
        self._relay_table: bytes | None = None
        self._accepts_relay = False
        self._in_frame: PCM = SILENCE_PCM
        self._noise_rng: np.random.Generator | None = None
        # consumers
        self._listeners: list[Callable[[PCM], None]] = []
        self._dtmf_callbacks: list[Callable[[DtmfEvent], None]] = []

    def __repr__(self) -> str:
        return f"<Leg {self.id} {self.host}:{self.port} {self.state.value}>"

    # -- configuration ------------------------------------------------------------------------

    def configure(
        self,
        remote: Address,
        codec: str = "PCMU",
        payload_type: int | None = None,
        dtmf_payload_type: int | None = 101,
        ptime: int = 20,
        latching: bool = True,
        inband_dtmf: bool | None = None,
        rtcp_remote: Address | None = None,
    ) -> None:
        """Set the far end after offer/answer; may be called again (re-INVITE)."""
        if self.state is LegState.CLOSED:
            raise LegClosed(self.id)
        new_codec = create_codec(codec)  # UnsupportedCodec before anything changes
        if ptime <= 0 or ptime % 10:
            raise ValueError(f"ptime must be a positive multiple of 10 ms, got {ptime}")
        pt = payload_type if payload_type is not None else new_codec.static_payload_type
        if pt is None:
            raise ValueError(f"codec {codec} has no static payload type; pass payload_type")
        self._transition(LegState.ACTIVE)
        previous = self.config
        self.config = LegConfig(
            remote=remote,
            codec=new_codec.name,
            payload_type=pt,
            dtmf_payload_type=dtmf_payload_type,
            ptime=ptime,
            latching=latching,
            inband_dtmf=dtmf_payload_type is None if inband_dtmf is None else inband_dtmf,
            rtcp_remote=rtcp_remote or (remote[0], remote[1] + 1),
        )
        self._fast_addr = None
        self._fast_source = None
        if self._pinned is not None:
            pass  # the address an ICE check came from stays (pin_remote)
        elif previous is None or previous.remote != remote or previous.latching != latching:
            stale = frozenset(self._early_sources)
            self._latch = Latch(remote, enabled=latching, stale=stale)
            self._rtcp_latch = Latch(
                self.config.rtcp_remote,
                enabled=latching,
                stale=stale,
                silence=3 * self.engine.rtcp_interval,  # RTCP comes every few seconds
            )
        if previous is None or previous.codec != new_codec.name:
            self.codec = new_codec
            self._g711 = isinstance(new_codec, G711Codec)
            self._law = 1 if new_codec.name == "PCMA" else 0
            self._jb = JitterBuffer(
                FRAME, self.engine.jitter_ms, bytes_per_sample=1 if self._g711 else 2
            )
            self._wide_in = None if self._g711 else Resampler(new_codec.sample_rate, 8000)
            self._wide_out = None if self._g711 else Resampler(8000, new_codec.sample_rate)
            self.session.clock_rate = new_codec.clock_rate  # RTP clock for jitter and RTCP
            self.session.sender.clock_rate = new_codec.clock_rate
            self.session.source = None
            self.session.sender.restart_source()
        self._pt = pt
        self._dtmf_pt = dtmf_payload_type
        self._inband = InbandDtmfDetector() if self.config.inband_dtmf else None
        self.engine._rewire(self)

    @property
    def sockets(self) -> tuple[Any, Any]:
        """The RTP and RTCP datagram transports (for a secure transport to wrap)."""
        return self._rtp, self._rtcp

    @property
    def secure_transport(self) -> SecureTransport | None:
        return self._secure

    def use_transport(self, secure: SecureTransport, rtcp_sender: Any) -> None:
        """Route this leg's datagrams through ``secure`` (which decrypts them for the leg)
        and send its RTP through it and its RTCP through ``rtcp_sender`` (``sendto`` and
        ``close`` like a datagram transport); closing the leg closes both. A ``secure``
        that is itself a datagram protocol (one that never raises) gets the socket's
        datagrams directly, without a wrapper's call per packet."""
        self._secure = secure
        self._secure_rtcp = getattr(secure, "rtcp_datagram_received", None)
        protocol = secure if isinstance(secure, asyncio.DatagramProtocol) else None
        self._rtp.set_protocol(protocol or _SecureProtocol(self, secure))
        self._rtp = secure  # type: ignore[assignment]
        self._rtcp = rtcp_sender
        self._fast_addr = None

    def pin_remote(self, remote: Address) -> None:
        """The far end's address was learnt from an authenticated exchange (an ICE check):
        send there and take RTP and RTCP only from that host."""
        self._pinned = remote
        self._latch = Latch(remote, strict=True)
        self._rtcp_latch = Latch(remote, strict=True, silence=3 * self.engine.rtcp_interval)
        self._fast_addr = None

    def close(self) -> None:
        """Release the ports; detaches the leg from bridges, conferences and players."""
        if self.state is LegState.CLOSED:
            return
        self.engine._leg_closing(self)
        self._transition(LegState.CLOSED)
        self._fast_addr = None
        self._rtp.close()
        self._rtcp.close()
        self.engine._rewire(self)

    def _transition(self, target: LegState) -> None:
        if target not in _LEG_TRANSITIONS.get(self.state, set()):
            if self.state is LegState.CLOSED:
                raise LegClosed(self.id)
            raise IllegalTransition(f"leg {self.id}", self.state.value, target.value)
        self.state = target
        self.transitions.append((target, time.monotonic()))

    def stats(self) -> LegStats:
        self.session.concealed = self._plc.concealed_frames
        return self.session.stats()

    @property
    def remote(self) -> Address | None:
        """Where RTP is sent now (the latched source address once media arrived)."""
        return self._latch.destination

    # -- DTMF ----------------------------------------------------------------------------------

    def on_dtmf(self, callback: Callable[[DtmfEvent], None]) -> Callable[[], None]:
        """Call ``callback`` for every key press on this leg; returns an unsubscribe function."""
        self._dtmf_callbacks.append(callback)

        def unsubscribe() -> None:
            if callback in self._dtmf_callbacks:
                self._dtmf_callbacks.remove(callback)

        return unsubscribe

    async def dtmf_events(self, max_queue: int = 64) -> AsyncIterator[DtmfEvent]:
        """Key presses as an async iterator (ends when the leg closes)."""
        queue: asyncio.Queue[DtmfEvent | None] = asyncio.Queue(max_queue)
        unsubscribe = self.on_dtmf(lambda e: _offer(queue, e))
        self.engine._closers.setdefault(self.id, []).append(lambda: _offer(queue, None))
        try:
            while (event := await queue.get()) is not None:
                yield event
        finally:
            unsubscribe()

    def send_dtmf(self, digits: str, duration_ms: int = 100) -> None:
        """Send digits as RFC 4733 events (or as tones when telephone-event was not agreed)."""
        digits = validate_digits(digits)
        if self.config is None:
            raise LegNotConfigured(self.id)
        if self._dtmf_pt is not None:
            wanted = max(1, duration_ms // 20)
            if self._te_tx.tone_frames != wanted and not self._te_tx.active:
                self._te_tx = TelephoneEventSender(FRAME, duration_ms=duration_ms)
            self._te_tx.queue(digits)
        else:
            for d in digits:
                self._tones.append(dtmf_tone(d, duration_ms))
                self._tones.append(np.zeros(8 * 60, dtype=np.int16))
        self.engine._rewire(self)

    def inject_dtmf(self, digit: str, duration_ms: int = 100) -> None:
        """A digit received by signalling (SIP INFO): delivered like any other DTMF event."""
        event_code(digit)
        self._deliver_dtmf(DtmfEvent(digit.upper(), duration_ms, DtmfSource.INFO))

    def _deliver_dtmf(self, event: DtmfEvent) -> None:
        if self._player is not None and self._player.on_dtmf(event.digit):
            self.engine._playback_finished(self)
        for callback in list(self._dtmf_callbacks):
            try:
                callback(event)
            except Exception:
                log.exception("leg %s: DTMF callback failed", self.id)

    # -- audio consumers -----------------------------------------------------------------------

    def add_listener(self, callback: Callable[[PCM], None]) -> Callable[[], None]:
        """Call ``callback(frame)`` with every 20 ms frame (8 kHz int16) this leg receives,
        after jitter buffering and loss concealment; returns an unsubscribe function."""
        self._listeners.append(callback)
        self.engine._rewire(self)

        def unsubscribe() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)
                self.engine._rewire(self)

        return unsubscribe

    async def frames(self, max_queue: int = 50) -> AsyncIterator[PCM]:
        """Received audio as an async iterator of 20 ms frames (oldest dropped if you lag)."""
        queue: asyncio.Queue[PCM | None] = asyncio.Queue(max_queue)
        unsubscribe = self.add_listener(lambda f: _offer(queue, f.copy()))
        self.engine._closers.setdefault(self.id, []).append(lambda: _offer(queue, None))
        try:
            while (frame := await queue.get()) is not None:
                yield frame
        finally:
            unsubscribe()

    # -- packet path ---------------------------------------------------------------------------

    def _on_rtp(self, data: bytes, addr: Address) -> None:
        # Fast path: a plain in-sequence audio packet from the latched address of the
        # current source (nearly every packet); anything else takes the general path.
        if addr == self._fast_addr and len(data) > 12:
            b0, b1, seq, ts, ssrc = _UNPACK_HEADER(data, 0)
            src = self._fast_source
            if (
                b0 == 0x80
                and (b1 & 0x7F) == self._pt
                and src is not None
                and ssrc == src.ssrc
                and seq == ((src.max_seq + 1) & 0xFFFF)
            ):
                now = _monotonic()
                self._latch.last_heard = now
                if seq == 0:
                    src.cycles += 65536
                src.max_seq = seq
                src.received += 1
                session = self.session
                session.packets_received += 1
                session.octets_received += len(data) - 12
                # RFC 3550 §A.8 interarrival jitter, inlined from ReceiverStats.update_jitter
                transit = now * src.clock_rate - ts
                last_transit = src.transit
                if last_transit is not None:
                    d = transit - last_transit
                    if d < 0:
                        d = -d
                    if d < src.clock_rate * 10:
                        src.jitter += (d - src.jitter) * 0.0625
                src.transit = transit
                payload = data[12:]
                target = self._relay_target
                if target is not None and target._accepts_relay:
                    table = self._relay_table
                    out = payload if table is None else payload.translate(table)
                    target._send_relayed(ssrc, seq, ts, target._pt, bool(b1 & 0x80), out, now)
                if self._needs_audio:
                    if self._g711:
                        self._jb.put(ts, payload)
                    else:
                        self._put_audio(ts, payload)
                if self._timelines and not (self.held or self.muted):
                    for channel in self._timelines:
                        channel.put(ts, payload, now, self._law)
                return
        self._on_rtp_general(data, addr)

    def _on_rtp_general(self, data: bytes, addr: Address) -> None:
        session = self.session
        if self.state is not LegState.ACTIVE:
            if self.state is LegState.OPEN and len(self._early_sources) < _MAX_SOURCES:
                self._early_sources.add(addr)
            return
        try:
            pt, marker, seq, ts, ssrc, offset = header_fields(data)
            payload = payload_of(data, offset)
        except MalformedPacket:
            session.malformed += 1
            return
        now = time.monotonic()
        if not self._latch.accept(addr, now):
            session.foreign += 1
            self._log_refused("RTP", addr)
            return
        self._fast_addr = addr
        if pt == self._pt:
            source = session.source
            if source is not None and source.ssrc != ssrc:
                self._jb.reset()
            session.on_rtp(ssrc, seq, ts, len(data) - offset, now, True)
            source = session.source
            self._fast_source = source if source is not None and not source.probation else None
            target = self._relay_target
            if target is not None and target._accepts_relay:
                table = self._relay_table
                out = payload if table is None else payload.translate(table)
                target._send_relayed(ssrc, seq, ts, target._pt, marker, out, now)
            if self._needs_audio:
                self._put_audio(ts, payload)
            if self._timelines and not (self.held or self.muted):
                for channel in self._timelines:
                    channel.put(ts, payload, now, self._law)
        elif pt == self._dtmf_pt:
            session.on_rtp(ssrc, seq, ts, len(data) - offset, now, False)
            try:
                events = self._te_rx.receive(ssrc, ts, payload, now)
            except MalformedPacket:
                session.malformed += 1
                return
            target = self._relay_target
            if target is not None and target._accepts_relay and target._dtmf_pt is not None:
                target._send_relayed(ssrc, seq, ts, target._dtmf_pt, marker, payload, now)
            for event in events:
                self._deliver_dtmf(event)
        elif pt == COMFORT_NOISE_PT:
            session.on_rtp(ssrc, seq, ts, len(data) - offset, now, False)
            level = payload[0] & 0x7F if payload else 127  # RFC 3389 §3
            self._jb.put(ts, ComfortNoise(level))
            target = self._relay_target
            if target is not None and target._accepts_relay:
                target._send_relayed(ssrc, seq, ts, COMFORT_NOISE_PT, marker, payload, now)
        else:
            session.malformed += 1  # a payload type that was not negotiated

    def _log_refused(self, kind: str, addr: Address) -> None:
        if addr in self._refused_sources or len(self._refused_sources) >= _MAX_SOURCES:
            return
        self._refused_sources.add(addr)
        log.warning(
            "leg %s: %s from %s:%d refused (latched %s, signalled %s); %d refused so far",
            self.id,
            kind,
            addr[0],
            addr[1],
            self._latch.latched,
            self._latch.signalled,
            self.session.foreign,
        )

    def _put_audio(self, ts: int, payload: bytes) -> None:
        if self._g711:
            self._jb.put(ts, payload)
            return
        assert self.codec is not None and self._wide_in is not None
        try:
            pcm = self._wide_in.process(self.codec.decode(payload))
        except Exception:  # a corrupt wideband payload: count and drop
            self.session.malformed += 1
            return
        # the buffer counts 8 kHz samples: timestamps of other clocks (Opus: 48 kHz) are
        # scaled to it (the scaled value wraps every ~25 h at 48 kHz: one resync then)
        bus_ts = ts * 8000 // self.codec.clock_rate & 0xFFFFFFFF
        self._jb.put(bus_ts, pcm.astype("<i2").tobytes())

    def _send_relayed(
        self, ssrc: int, seq: int, ts: int, pt: int, marker: bool, payload: bytes, now: float
    ) -> None:
        dest = self._latch.destination
        if dest is None:
            return
        header = self.session.sender.translate(ssrc, seq, ts, pt, marker, now, len(payload))
        self._rtp.sendto(header + payload, dest)

    def _on_rtcp(self, data: bytes, addr: Address) -> None:
        if self.state is not LegState.ACTIVE:
            return
        try:
            packets = parse_compound(data)
        except MalformedPacket:
            self.session.malformed += 1
            return
        if not self._rtcp_latch.accept(addr, time.monotonic()):
            self.session.foreign += 1
            self._log_refused("RTCP", addr)
            return
        self.session.on_rtcp(packets, time.monotonic(), time.time())

    def _send_frame(self, pcm: PCM | None, payload: bytes | None, now: float) -> None:
        """Send one tick's audio (already encoded when ``payload`` is given)."""
        config = self.config
        dest = self._latch.destination
        if config is None or dest is None:
            return
        sender = self.session.sender
        if config.ptime == 20 and payload is not None:
            self._rtp.sendto(sender.frame(self._pt, FRAME, now, payload), dest)
            return
        if pcm is None:
            assert payload is not None
            pcm = _DECODE_2[
                np.frombuffer(payload, dtype=np.uint8).astype(np.intp) + 256 * self._law
            ]
        self._out_buffer = np.concatenate([self._out_buffer, pcm])
        samples = config.ptime * 8
        codec = self.codec
        assert codec is not None
        while len(self._out_buffer) >= samples:
            chunk, self._out_buffer = self._out_buffer[:samples], self._out_buffer[samples:]
            units = samples
            if self._wide_out is not None:
                # the resampler's output size varies by a sample or two: encode fixed blocks
                self._wide_pending = np.concatenate(
                    [self._wide_pending, self._wide_out.process(chunk)]
                )
                need = config.ptime * codec.sample_rate // 1000
                if len(self._wide_pending) < need:
                    continue
                chunk, self._wide_pending = self._wide_pending[:need], self._wide_pending[need:]
                units = codec.timestamp_units(need)
            data = codec.encode(chunk)
            self._rtp.sendto(sender.frame_header(self._pt, units, now) + data, dest)
            sender.count(len(data))

    def _send_event(self, now: float) -> None:
        packet = self._te_tx.tick()
        sender = self.session.sender
        if packet is None or self._dtmf_pt is None:
            return
        if packet.starts_event:
            self._event_ts = sender.start_ts(now)
            sender.next_ts = self._event_ts
            sender.marker_pending = False
        dest = self._latch.destination
        if dest is not None:
            data = sender.event_header(self._dtmf_pt, self._event_ts, packet.marker)
            self._rtp.sendto(data + packet.payload, dest)
            sender.count(len(packet.payload))
        # the stream's clock keeps running under the event (RFC 4733 §2.5.1.2)
        if sender.next_ts is not None:
            sender.next_ts = (sender.next_ts + FRAME) & 0xFFFFFFFF

    def _send_rtcp(self, now: float, wall: float) -> None:
        dest = self._rtcp_latch.destination
        report = self.session.build_report(now, wall)
        if dest is not None:
            self._rtcp.sendto(report, dest)


def _offer(queue: asyncio.Queue[Any], item: Any) -> None:
    """Put without blocking; a full queue drops its oldest item."""
    if queue.full():
        try:
            queue.get_nowait()
        except asyncio.QueueEmpty:
            pass
    queue.put_nowait(item)


class Bridge:
    """Two legs joined; each hears the other."""

    def __init__(self, engine: MediaEngine, a: Leg, b: Leg) -> None:
        self.engine = engine
        self.a = a
        self.b = b
        self.mode = BridgeMode.RELAY
        self.update_mode()

    def update_mode(self) -> None:
        assert self.a.config is not None and self.b.config is not None
        self.mode = choose_mode(self.a.config.codec, self.b.config.codec)

    def peer(self, leg: Leg) -> Leg:
        return self.b if leg is self.a else self.a

    def unbridge(self) -> None:
        self.engine.unbridge(self)


class Conference:
    """An N-party mix with mix-minus and supervision modes."""

    def __init__(self, engine: MediaEngine, conference_id: str) -> None:
        self.engine = engine
        self.id = conference_id
        self.mix = Mix()
        self.legs: dict[str, Leg] = {}
        self._public: PCM = SILENCE_PCM

    def add(
        self,
        leg: Leg,
        mode: ParticipantMode | str = ParticipantMode.SPEAK,
        whisper_to: Leg | None = None,
    ) -> None:
        """Join a leg (it leaves a bridge it was in)."""
        if leg.state is LegState.CLOSED:
            raise LegClosed(leg.id)
        if leg.conference is not None and leg.conference is not self:
            raise LegBusy(leg.id, f"conference {leg.conference.id}")
        if leg.bridge is not None:
            self.engine.unbridge(leg.bridge)
        self.legs[leg.id] = leg
        self.mix.add(leg.id, ParticipantMode(mode), whisper_to.id if whisper_to else None)
        self.mix.update(leg.id, muted=leg.muted, held=leg.held)
        leg.conference = self
        self.engine._rewire(leg)

    def set_mode(
        self, leg: Leg, mode: ParticipantMode | str, whisper_to: Leg | None = None
    ) -> None:
        target = whisper_to.id if whisper_to else None
        self.mix.update(leg.id, mode=ParticipantMode(mode), whisper_to=target)
        self.engine._lists_dirty = True

    def remove(self, leg: Leg) -> None:
        if leg.id not in self.legs:
            raise NotAParticipant(leg.id)
        self.mix.remove(leg.id)
        del self.legs[leg.id]
        leg.conference = None
        leg.session.sender.restart_source()
        self.engine._rewire(leg)

    def close(self) -> None:
        for leg in list(self.legs.values()):
            self.remove(leg)
        self.engine._conferences.pop(self.id, None)

    def hears(self, listener: Leg, speaker: Leg) -> bool:
        return self.mix.hears(listener.id, speaker.id)


@dataclass(frozen=True, slots=True)
class _MixGroup:
    """Conferences with the same number of participants, mixed in one batch."""

    conferences: list[Conference]
    index: NDArray[np.intp]  # (conferences, size): rows of the tick's inbound array
    weights: NDArray[np.float32]  # (conferences, size, size): who hears whom
    public: NDArray[np.float32]  # (conferences, size): what a recording of it keeps


class Playback:
    """A prompt or music playing on a leg; await it for a PlaybackResult."""

    def __init__(self, leg: Leg, player: Player, future: asyncio.Future[PlaybackResult]) -> None:
        self.leg = leg
        self.player = player
        self._future = future

    def __await__(self) -> Generator[Any, None, PlaybackResult]:
        return asyncio.shield(self._future).__await__()

    def done(self) -> bool:
        return self._future.done()

    @property
    def state(self) -> PlaybackState:
        return self.player.state

    def stop(self) -> None:
        if self.player.state is PlaybackState.PLAYING:
            self.player.stop()
            self.leg.engine._playback_finished(self.leg)


RecordSource = Leg | Conference


class Recording:
    """A recording in progress: pause, resume, stop (returns RecordingInfo)."""

    def __init__(
        self,
        engine: MediaEngine,
        recorder: Recorder,
        left: RecordSource,
        right: RecordSource | None,
        feeds: list[tuple[RecordSource, Channel]],
    ) -> None:
        self.engine = engine
        self.recorder = recorder
        self.left = left
        self.right = right
        self.feeds = feeds
        self.info: RecordingInfo | None = None
        #: why the file could not be written (read-only or full storage); audio is then
        #: no longer taken, the file keeps what was written, the call is not touched
        self.failure: str | None = None
        #: called once, on the loop, with the reason when the recording fails
        self.on_failure: Callable[[str], None] | None = None

    @property
    def path(self) -> str:
        return self.recorder.path

    @property
    def state(self) -> RecordingState:
        return self.recorder.state

    def pause(self) -> None:
        """Stop writing audio (the file keeps what was recorded; duration excludes pauses)."""
        self.recorder.pause(time.monotonic())

    def resume(self) -> None:
        self.recorder.resume(time.monotonic())

    async def stop(self) -> RecordingInfo:
        """Finish the file and compute its checksum (off the event loop)."""
        if self.info is not None:
            return self.info
        path, duration, size = self.engine._finish_recording(self)
        writer = self.recorder.writer
        if isinstance(writer, QueuedWavWriter):
            await writer.wait_closed()  # every queued write done, the descriptor closed
            size = writer.size
            duration = writer.data_bytes / (2 * writer.channels * writer.rate)
        digest = await asyncio.to_thread(file_sha256, path) if size else ""
        self.info = RecordingInfo(
            path=path,
            duration_s=duration,
            sha256=digest,
            bytes=size,
            channels=self.recorder.channels,
            rate=self.recorder.rate,
            transitions=tuple(self.recorder.transitions),
        )
        return self.info


class MediaEngine:
    """RTP legs on ports from ``port_min``..``port_max``, driven by one 20 ms clock."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port_min: int = 20000,
        port_max: int = 29999,
        *,
        jitter_ms: int = 40,
        late_threshold_ms: float = 5.0,
        recording_flush_s: float = 0.5,
        durable_recordings: bool = False,
        music_on_hold: Callable[[], AudioSource] | None = None,
        rtcp_interval: float = 5.0,
        seed: int | None = None,
    ) -> None:
        if port_min > port_max - 1 or port_min < 1 or port_max > 65535:
            raise ValueError(f"bad port range {port_min}-{port_max}")
        self.host = host
        self.port_min = port_min + (port_min & 1)  # RTP on even ports (RFC 3550 §11)
        self.port_max = port_max
        self.jitter_ms = jitter_ms
        self.rtcp_interval = rtcp_interval
        self.late_threshold = late_threshold_ms / 1000
        self.recording_flush_s = recording_flush_s
        self.durable_recordings = durable_recordings
        self._disk = WriterThread()
        self._music_on_hold = music_on_hold or default_music_on_hold
        self._rng = random.Random(seed)
        self._next_port = self.port_min
        self._ids = itertools.count(1)
        self._legs: dict[str, Leg] = {}
        self._conferences: dict[str, Conference] = {}
        self._recordings: list[Recording] = []
        self._frame_feeds: list[tuple[RecordSource, FrameChannel]] = []
        self._flush_phase = 0.0
        self._mix_groups: list[_MixGroup] = []
        self._bridges: list[Bridge] = []
        self._closers: dict[str, list[Callable[[], None]]] = {}
        self._clock: TickClock | None = None
        self._task: asyncio.Task[None] | None = None
        self._goertzel = GoertzelBank(FRAME)
        # derived per-tick lists, rebuilt by _rewire()
        self._audio_legs: list[Leg] = []
        self._output_legs: list[Leg] = []
        self._active_legs: list[Leg] = []
        self._lists_dirty = True
        self._slice_start = 0.0
        self.tick_errors = 0

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is not None:
            return
        self._clock = TickClock(time.monotonic(), 0.020, self.late_threshold)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="media-clock")

    async def stop(self) -> None:
        """Stop the clock, finish recordings and playbacks, close every leg."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        for recording in list(self._recordings):
            await recording.stop()
        for leg in list(self._legs.values()):
            leg.close()
        await asyncio.to_thread(self._disk.stop)

    @property
    def running(self) -> bool:
        return self._task is not None

    @property
    def late_ticks(self) -> int:
        return self._clock.late_ticks if self._clock else 0

    def reset_tick_stats(self) -> None:
        """Start a new window for late-tick statistics (monitoring, benchmarks)."""
        if self._clock is not None:
            self._clock.reset_stats()

    def tick_stats(self) -> TickStats:
        if self._clock is None:
            raise EngineNotRunning()
        return self._clock.stats()

    @property
    def legs(self) -> list[Leg]:
        return list(self._legs.values())

    # -- legs ----------------------------------------------------------------------------------

    async def open_leg(self, leg_id: str | None = None) -> Leg:
        """Bind a new leg to a free even RTP port and the RTCP port above it."""
        if self._task is None:
            raise EngineNotRunning()
        loop = asyncio.get_running_loop()
        leg_id = leg_id or f"leg-{next(self._ids)}"
        if leg_id in self._legs:
            raise ValueError(f"leg id {leg_id!r} is in use")
        rtp_sock, rtcp_sock, port = self._bind_pair()
        leg = Leg(self, leg_id, self.host, port, time.monotonic())
        try:
            leg._rtp, _ = await loop.create_datagram_endpoint(
                lambda: _RtpProtocol(leg), sock=rtp_sock
            )
        except BaseException:
            rtp_sock.close()
            rtcp_sock.close()
            raise
        try:
            leg._rtcp, _ = await loop.create_datagram_endpoint(
                lambda: _RtcpProtocol(leg), sock=rtcp_sock
            )
        except BaseException:
            leg._rtp.close()
            rtcp_sock.close()
            raise
        self._legs[leg_id] = leg
        return leg

    def _bind_pair(self) -> tuple[socket.socket, socket.socket, int]:
        span = (self.port_max - self.port_min) // 2
        for _ in range(max(span, 1)):
            port = self._next_port
            self._next_port += 2
            if self._next_port + 1 > self.port_max:
                self._next_port = self.port_min
            rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                rtp.bind((self.host, port))
                rtcp.bind((self.host, port + 1))
            except OSError:
                rtp.close()
                rtcp.close()
                continue
            rtp.setblocking(False)
            rtcp.setblocking(False)
            return rtp, rtcp, port
        raise PortRangeExhausted(self.port_min, self.port_max)

    def leg(self, leg_id: str) -> Leg:
        try:
            return self._legs[leg_id]
        except KeyError:
            raise LegClosed(leg_id) from None

    def _leg_closing(self, leg: Leg) -> None:
        if leg.bridge is not None:
            self.unbridge(leg.bridge)
        if leg.conference is not None:
            leg.conference.remove(leg)
        if leg._player is not None:
            leg._player.stop()
            self._playback_finished(leg)
        if leg._hold_player is not None:
            leg._hold_player.stop()
            leg._hold_player = None
        self._legs.pop(leg.id, None)
        for closer in self._closers.pop(leg.id, []):
            closer()

    # -- joining -------------------------------------------------------------------------------

    def bridge(self, a: Leg, b: Leg) -> Bridge:
        """Join two configured legs; relayed packet by packet when codecs allow."""
        for leg in (a, b):
            if leg.state is LegState.CLOSED:
                raise LegClosed(leg.id)
            if leg.config is None:
                raise LegNotConfigured(leg.id)
            if leg.bridge is not None:
                raise LegBusy(leg.id, "a bridge")
            if leg.conference is not None:
                raise LegBusy(leg.id, f"conference {leg.conference.id}")
        bridge = Bridge(self, a, b)
        a.bridge = b.bridge = bridge
        for leg in (a, b):
            leg.session.sender.restart_source()
        self._bridges.append(bridge)
        self._rewire(a, b)
        return bridge

    def unbridge(self, bridge_or_leg: Bridge | Leg) -> None:
        bridge = bridge_or_leg if isinstance(bridge_or_leg, Bridge) else bridge_or_leg.bridge
        if bridge is None or bridge not in self._bridges:
            return
        self._bridges.remove(bridge)
        for leg in (bridge.a, bridge.b):
            leg.bridge = None
            leg.session.sender.restart_source()
        self._rewire(bridge.a, bridge.b)

    def conference(self, conference_id: str | None = None) -> Conference:
        conference_id = conference_id or f"conf-{next(self._ids)}"
        conf = Conference(self, conference_id)
        self._conferences[conference_id] = conf
        self._lists_dirty = True
        return conf

    def hold(self, leg: Leg, music: AudioSource | None = None) -> None:
        """The held leg hears music; nobody hears the held leg (nor the music)."""
        if leg.held:
            return
        source = music if music is not None else self._music_on_hold()
        leg._hold_player = Player(source, loop=True, barge_in=False)
        leg.held = True
        leg.session.sender.restart_source()
        if leg.conference is not None:
            leg.conference.mix.update(leg.id, held=True)
        self._rewire(leg)

    def unhold(self, leg: Leg) -> None:
        if not leg.held:
            return
        leg.held = False
        if leg._hold_player is not None:
            leg._hold_player.stop()
            leg._hold_player = None
        leg.session.sender.restart_source()
        if leg.conference is not None:
            leg.conference.mix.update(leg.id, held=False)
        self._rewire(leg)

    def mute(self, leg: Leg) -> None:
        """Nobody hears what this leg says; it still hears everything."""
        leg.muted = True
        if leg.conference is not None:
            leg.conference.mix.update(leg.id, muted=True)
        self._rewire(leg)

    def unmute(self, leg: Leg) -> None:
        leg.muted = False
        if leg.conference is not None:
            leg.conference.mix.update(leg.id, muted=False)
        self._rewire(leg)

    # -- playing and recording -----------------------------------------------------------------

    def play(
        self,
        leg: Leg,
        source: str | os.PathLike[str] | PCM | AudioSource,
        loop: bool = False,
        barge_in: bool = True,
        rate: int = 8000,
    ) -> Playback:
        """Play a WAV path, an int16 array (``rate`` Hz) or an AudioSource to a leg.

        A prompt replaces what the leg hears from its bridge or conference until it
        ends; a new play() stops the previous one.
        """
        if leg.state is LegState.CLOSED:
            raise LegClosed(leg.id)
        if isinstance(source, AudioSource):
            audio = source
        elif isinstance(source, np.ndarray):
            audio = PcmSource(source, rate)
        else:
            audio = WavSource(source)
        if leg._player is not None:
            leg._player.stop()
            self._playback_finished(leg)
        player = Player(audio, loop=loop, barge_in=barge_in)
        future: asyncio.Future[PlaybackResult] = asyncio.get_running_loop().create_future()
        playback = Playback(leg, player, future)
        leg._player = player
        leg._playback = playback
        leg.session.sender.restart_source()
        self._rewire(leg)
        return playback

    def _playback_finished(self, leg: Leg) -> None:
        player, playback = leg._player, leg._playback
        leg._player = None
        leg._playback = None
        if playback is not None and player is not None and not playback._future.done():
            playback._future.set_result(player.result())
        leg.session.sender.restart_source()
        self._rewire(leg)

    def record(
        self,
        path: str | os.PathLike[str],
        left: RecordSource,
        right: RecordSource | None = None,
        stereo: bool = True,
    ) -> Recording:
        """Record ``left`` (e.g. the customer) and ``right`` (the agent side) to a WAV:
        two channels when ``stereo``, else one mixed channel. A source is a leg (what
        that party says) or a conference (the conversation's mix)."""
        now = time.monotonic()
        feeds: list[tuple[RecordSource, Channel]] = []
        for source in (left, right):
            if source is None:
                continue
            if isinstance(source, Leg) and source.state is LegState.CLOSED:
                raise LegClosed(source.id)
            channel: Channel
            if isinstance(source, Leg) and (source.config is None or source._g711):
                channel = TimelineChannel(now, source._law)  # fed by the leg's packets
            else:
                channel = FrameChannel()  # fed on the tick
            feeds.append((source, channel))
        sources = tuple(channel for _, channel in feeds)
        # spread the recordings' flushes over the interval so they never all land on one tick
        self._flush_phase = (self._flush_phase + 0.382) % 1.0
        recorder = Recorder(
            path,
            sources,  # type: ignore[arg-type]
            now,
            stereo=stereo,
            flush_interval=self.recording_flush_s,
            first_flush=now + self.recording_flush_s * self._flush_phase,
            # the file is created and written on the writer thread, never on the tick
            writer=lambda channels: QueuedWavWriter(
                path, channels, RATE, self._disk, durable=self.durable_recordings
            ),
        )
        recording = Recording(self, recorder, left, right, feeds)
        assert isinstance(recorder.writer, QueuedWavWriter)
        recorder.writer.on_failure = lambda reason: self._recording_failed(recording, reason)
        self._recordings.append(recording)
        self._attach_feeds(recording, attach=True)
        return recording

    def _attach_feeds(self, recording: Recording, attach: bool) -> None:
        for source, channel in recording.feeds:
            if isinstance(channel, TimelineChannel) and isinstance(source, Leg):
                if attach:
                    source._timelines.append(channel)
                elif channel in source._timelines:
                    source._timelines.remove(channel)
            elif isinstance(channel, FrameChannel):
                if attach:
                    self._frame_feeds.append((source, channel))
                else:
                    self._frame_feeds.remove((source, channel))
                if isinstance(source, Leg):
                    source._frame_recordings += 1 if attach else -1
                    self._rewire(source)

    def _recording_failed(self, recording: Recording, reason: str) -> None:
        """The file cannot be written: take no more audio for it; the call goes on."""
        if recording.failure is not None:
            return
        recording.failure = reason
        if recording in self._recordings:
            self._recordings.remove(recording)
            self._attach_feeds(recording, attach=False)
        log.warning("recording %s failed: %s", recording.path, reason)
        if recording.on_failure is not None:
            try:
                recording.on_failure(reason)
            except Exception:
                log.exception("recording %s: failure listener failed", recording.path)

    def _finish_recording(self, recording: Recording) -> tuple[str, float, int]:
        if recording in self._recordings:
            self._recordings.remove(recording)
            self._attach_feeds(recording, attach=False)
        return recording.recorder.stop(time.monotonic())

    # -- the tick ------------------------------------------------------------------------------

    def _rewire(self, *legs: Leg) -> None:
        """Recompute what feeds the given legs (and their bridge peers) after a change."""
        todo: dict[str, Leg] = {}
        for leg in legs:
            todo[leg.id] = leg
            if leg.bridge is not None:
                peer = leg.bridge.peer(leg)
                todo[peer.id] = peer
        for leg in todo.values():
            self._refresh(leg)
        self._lists_dirty = True

    @staticmethod
    def _refresh(leg: Leg) -> None:
        leg._relay_target = None
        leg._relay_table = None
        if leg.state is not LegState.ACTIVE:
            leg._accepts_relay = False
            leg._needs_audio = False
            leg._out = _Out.NONE
            return
        bridge = leg.bridge
        peer = bridge.peer(leg) if bridge is not None else None
        relaying = False
        if bridge is not None and peer is not None and peer.config is not None:
            bridge.update_mode()
            relaying = bridge.mode is not BridgeMode.TRANSCODE
        if leg.held or leg._player is not None:
            leg._out = _Out.PLAYER
        elif leg.conference is not None:
            leg._out = _Out.CONFERENCE
        elif peer is not None and (peer.held or peer.muted or peer.state is not LegState.ACTIVE):
            leg._out = _Out.SILENCE
        elif peer is not None and relaying:
            leg._out = _Out.RELAYED
        elif peer is not None:
            leg._out = _Out.TRANSCODE
        else:
            leg._out = _Out.NONE
        leg._accepts_relay = leg._out is _Out.RELAYED and not leg._te_tx.busy
        if peer is not None and relaying and not leg.held and not leg.muted:
            leg._relay_target = peer
            assert leg.config is not None and peer.config is not None
            leg._relay_table = translation_table(leg.config.codec, peer.config.codec)
        leg._needs_audio = (
            leg._frame_recordings > 0
            or leg.conference is not None
            or bool(leg._listeners)
            or leg._inband is not None
            or (peer is not None and not relaying)
        )

    def _rebuild_lists(self) -> None:
        self._lists_dirty = False
        active = [leg for leg in self._legs.values() if leg.state is LegState.ACTIVE]
        self._active_legs = active
        self._audio_legs = [leg for leg in active if leg._needs_audio]
        self._output_legs = [
            leg
            for leg in active
            if leg._out not in (_Out.NONE, _Out.RELAYED) or leg._te_tx.active or leg._tones
        ]
        # conferences of the same size are mixed together: one batched matmul per size
        slots = {leg.id: i for i, leg in enumerate(self._audio_legs)}
        silent = len(self._audio_legs)  # an extra all-zero row of the inbound array
        by_size: dict[int, list[Conference]] = {}
        for conf in self._conferences.values():
            if conf.legs:
                by_size.setdefault(len(conf.mix), []).append(conf)
        groups = []
        for confs in by_size.values():
            index = np.array(
                [[slots.get(key, silent) for key in conf.mix.keys] for conf in confs],
                dtype=np.intp,
            )
            weights = np.stack([conf.mix.matrix() for conf in confs])
            public = np.stack([conf.mix.public_weights() for conf in confs])
            groups.append(_MixGroup(confs, index, weights, public))
        self._mix_groups = groups

    async def _run(self) -> None:
        clock = self._clock
        assert clock is not None
        while True:
            delay = clock.next_deadline - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            for _ in range(clock.due(time.monotonic())):
                index = clock.advance()
                try:
                    await self._tick(index, clock.start + index * clock.period)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    self.tick_errors += 1
                    log.exception("media tick %d failed", index)

    async def _pause_if_due(self) -> None:
        """Let packet callbacks run when the tick has held the loop for a slice: relayed
        packets then wait at most one slice, however much work a tick has."""
        if time.perf_counter() - self._slice_start > self.SLICE:
            await asyncio.sleep(0)
            self._slice_start = time.perf_counter()

    SLICE: Final = 0.001
    CHUNK: Final = 64

    async def _tick(self, index: int, now: float) -> None:
        self._slice_start = time.perf_counter()
        if self._lists_dirty:
            self._rebuild_lists()
        chunk = self.CHUNK
        # 1. inbound audio of every leg that needs it, decoded in batches into one array
        legs = self._audio_legs
        frames: dict[str, PCM] = {}
        inbound = np.zeros((len(legs) + 1, FRAME), dtype=np.int16)  # + a row of silence
        for i in range(0, len(legs), chunk):
            part = legs[i : i + chunk]
            self._decode_inbound(part, frames, inbound[i : i + len(part)])
            await self._pause_if_due()
        # 2. in-band DTMF for legs without telephone-event
        inband = [leg for leg in legs if leg._inband is not None and leg.id in frames]
        if inband:
            current = np.stack([frames[leg.id] for leg in inband])
            previous = np.stack([leg._inband_previous for leg in inband])
            powers, energy = self._goertzel.analyse_overlapped(previous, current)
            for i, leg in enumerate(inband):
                assert leg._inband is not None
                leg._inband_previous = current[i]
                event = leg._inband.feed_frame(powers[i], energy[i])
                if event is not None:
                    leg._deliver_dtmf(event)
        # 3. listeners (speech recognition and the like)
        for leg in legs:
            if leg._listeners and leg.id in frames:
                frame = frames[leg.id]
                for callback in list(leg._listeners):
                    try:
                        callback(frame)
                    except Exception:
                        log.exception("leg %s: audio listener failed", leg.id)
        # 4. conferences: every conference of a size in one batched mix-minus
        heard: dict[str, PCM] = {}
        for group in self._mix_groups:
            x = inbound[group.index].astype(np.float32)  # (conferences, size, samples)
            out = np.clip(np.matmul(group.weights, x), -32768, 32767).astype(np.int16)
            public = np.clip(np.einsum("ck,ckn->cn", group.public, x), -32768, 32767)
            public = public.astype(np.int16)
            for c, conf in enumerate(group.conferences):
                conf._public = public[c]
                for j, key in enumerate(conf.mix.keys):
                    heard[key] = out[c, j]
            await self._pause_if_due()
        # 5. recordings: mixes and wideband legs are fed per tick; every recording is
        # written out (and its header patched) every flush interval
        for source, channel in self._frame_feeds:
            channel.put(self._record_source(source, frames))
        for n, rec in enumerate(list(self._recordings)):
            recorder = rec.recorder
            if recorder.due(now) and recorder.state is not RecordingState.STOPPED:
                try:
                    recorder.flush(now)  # cuts audio and queues it; the thread writes
                except Exception as exc:  # one recording's fault never stops the tick
                    log.exception("recording %s: flush failed", rec.path)
                    self._recording_failed(rec, f"flush failed: {exc}")
            if n % chunk == chunk - 1:
                await self._pause_if_due()
        # 6. outgoing audio generated on the tick, encoded in batches
        outputs = self._output_legs
        for i in range(0, len(outputs), chunk):
            self._send_outputs(outputs[i : i + chunk], frames, heard, now)
            await self._pause_if_due()
        # 7. housekeeping every 200 ms: RTCP reports, DTMF events whose end packets were lost
        if index % 10 == 0:
            wall = time.time()
            for leg in self._active_legs:
                if leg.state is not LegState.ACTIVE:
                    continue
                for event in leg._te_rx.poll(now):
                    leg._deliver_dtmf(event)
                if leg.session.rtcp_due(now):
                    leg._send_rtcp(now, wall)

    def _decode_inbound(self, legs: list[Leg], frames: dict[str, PCM], into: PCM) -> None:
        n = len(legs)
        raw = bytearray(n * FRAME)
        laws = np.empty(n, dtype=np.intp)
        fix: list[tuple[int, Leg, bytes | ComfortNoise | None]] = []
        for i, leg in enumerate(legs):
            item = leg._jb.pop()
            laws[i] = leg._law * 256
            if leg._g711 and type(item) is bytes and len(item) == FRAME:
                raw[i * FRAME : (i + 1) * FRAME] = item
            else:
                fix.append((i, leg, item))
        decoded = into
        np.take(
            _DECODE_2,
            np.frombuffer(raw, dtype=np.uint8).reshape(n, FRAME) + laws[:, None],
            out=decoded,
        )
        lost: set[int] = set()
        for i, leg, item in fix:
            if item is None:
                lost.add(i)
            elif isinstance(item, ComfortNoise):
                if leg._noise_rng is None:
                    leg._noise_rng = np.random.default_rng()
                decoded[i] = comfort_noise(item.level_dbov, FRAME, leg._noise_rng)
            elif not leg._g711 and len(item) == 2 * FRAME:
                decoded[i] = np.frombuffer(item, dtype="<i2")
            else:  # a G.711 frame partly filled (mixed packet sizes)
                codes = np.frombuffer(item[:FRAME].ljust(FRAME, b"\xff"), dtype=np.uint8)
                decoded[i] = _DECODE_2[codes.astype(np.intp) + leg._law * 256]
        for i, leg in enumerate(legs):
            plc = leg._plc
            if i in lost:
                decoded[i] = plc.conceal()
            elif plc.concealing:
                decoded[i] = plc.good(decoded[i].copy())
            else:
                plc._prev, plc._last = plc._last, decoded[i]
            if leg.held or leg.muted:
                decoded[i] = 0
            frames[leg.id] = decoded[i]

    @staticmethod
    def _record_source(source: RecordSource, frames: dict[str, PCM]) -> PCM:
        if isinstance(source, Conference):
            return source._public
        return frames.get(source.id, SILENCE_PCM)

    def _send_outputs(
        self, legs: list[Leg], frames: dict[str, PCM], heard: dict[str, PCM], now: float
    ) -> None:
        batch: list[tuple[Leg, PCM]] = []
        finished: list[Leg] = []
        changed: list[Leg] = []
        for leg in legs:
            if leg.state is not LegState.ACTIVE:
                continue
            tx = leg._te_tx
            if tx.active:
                leg._accepts_relay = leg._out is _Out.RELAYED and not tx.busy
                if tx.busy:
                    leg._send_event(now)
                    if not tx.active:
                        changed.append(leg)
                    continue
                tx.tick()  # the gap between digits: audio flows
                if not tx.active:
                    changed.append(leg)
            if leg._tones:
                batch.append((leg, self._next_tone_frame(leg)))
                if not leg._tones:
                    changed.append(leg)
                continue
            out = leg._out
            pcm: PCM | None
            if out is _Out.PLAYER:
                player = leg._hold_player if leg.held else leg._player
                pcm = player.next_frame() if player is not None else None
                if pcm is None:
                    pcm = SILENCE_PCM
                    if not leg.held and leg._player is not None:
                        finished.append(leg)
            elif out is _Out.CONFERENCE:
                pcm = heard.get(leg.id, SILENCE_PCM)
            elif out is _Out.TRANSCODE:
                bridge = leg.bridge
                pcm = frames.get(bridge.peer(leg).id, SILENCE_PCM) if bridge else SILENCE_PCM
            elif out is _Out.SILENCE:
                pcm = SILENCE_PCM
            else:
                continue
            batch.append((leg, pcm))
        if batch:
            g711_batch = [(leg, pcm) for leg, pcm in batch if leg._g711]
            if g711_batch:
                pcms = np.stack([pcm for _, pcm in g711_batch]).view(np.uint16).astype(np.intp)
                laws = np.array([leg._law * 65536 for leg, _ in g711_batch], dtype=np.intp)
                encoded = _ENCODE_2[pcms + laws[:, None]].tobytes()
                for i, (leg, pcm) in enumerate(g711_batch):
                    leg._send_frame(pcm, encoded[i * FRAME : (i + 1) * FRAME], now)
            for leg, pcm in batch:
                if not leg._g711:
                    leg._send_frame(pcm, None, now)
        for leg in finished:
            self._playback_finished(leg)
        if changed:
            self._rewire(*changed)

    @staticmethod
    def _next_tone_frame(leg: Leg) -> PCM:
        tone = leg._tones[0]
        frame, rest = tone[:FRAME], tone[FRAME:]
        if len(rest):
            leg._tones[0] = rest
        else:
            leg._tones.pop(0)
        if len(frame) < FRAME:
            frame = np.concatenate([frame, np.zeros(FRAME - len(frame), dtype=np.int16)])
        return frame


__all__ = [
    "Bridge",
    "BridgeMode",
    "Conference",
    "DtmfEvent",
    "DtmfSource",
    "Leg",
    "LegState",
    "LegStats",
    "MediaEngine",
    "MediaError",
    "ParticipantMode",
    "Playback",
    "PlaybackResult",
    "PlaybackState",
    "Playlist",
    "Recording",
    "RecordingInfo",
    "RecordingState",
]
