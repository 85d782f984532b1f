"""Sans-I/O RTP session bookkeeping (RFC 3550): sender state, receiver statistics
(§A.1 sequence validation, §A.3 loss, §A.8 jitter), RTCP reports (§6.4) and RTT,
and symmetric-RTP latching for NAT (RFC 4961 §3, "latching" in RFC 7362 §4).

Every method takes the current time (``now``: monotonic seconds; ``wall``: Unix
seconds for NTP fields) instead of reading a clock.
"""

from __future__ import annotations

import enum
import ipaddress
import random
from dataclasses import dataclass
from typing import Final

from .rtcp import (
    SDES_CNAME,
    ReceiverReport,
    ReportBlock,
    RtcpPacket,
    SenderReport,
    SourceDescription,
    ntp_from_unix,
    ntp_middle32,
    serialize_compound,
)
from .rtp import HEADER

RTP_SEQ_MOD: Final = 1 << 16
MAX_DROPOUT: Final = 3000
MAX_MISORDER: Final = 100
MIN_SEQUENTIAL: Final = 2
RTCP_MIN_INTERVAL: Final = 5.0  # §6.2


class ReceiverStats:
    """Statistics of one remote source (RFC 3550 appendix A.1, A.3, A.8)."""

    def __init__(self, ssrc: int, seq: int, clock_rate: int) -> None:
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self._init_seq(seq)
        self.max_seq = (seq - 1) & 0xFFFF
        self.probation = MIN_SEQUENTIAL
        self.transit: float | None = None
        self.jitter = 0.0  # timestamp units, §A.8
        self.expected_prior = 0
        self.received_prior = 0
        self.last_fraction = 0

    def _init_seq(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = RTP_SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self.received_prior = 0
        self.expected_prior = 0

    def update_seq(self, seq: int) -> bool:
        """§A.1: False while on probation or after a big jump (packet not counted)."""
        udelta = (seq - self.max_seq) & 0xFFFF
        if self.probation:
            if seq == (self.max_seq + 1) & 0xFFFF:
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    self._init_seq(seq)
                    self.received += 1
                    return True
            else:
                self.probation = MIN_SEQUENTIAL - 1
                self.max_seq = seq
            return False
        if udelta < MAX_DROPOUT:
            if seq < self.max_seq:
                self.cycles += RTP_SEQ_MOD  # wrapped
            self.max_seq = seq
        elif udelta <= RTP_SEQ_MOD - MAX_MISORDER:
            if seq == self.bad_seq:  # two sequential packets: the source restarted
                self._init_seq(seq)
            else:
                self.bad_seq = (seq + 1) & 0xFFFF
                return False
        # else: duplicate or reordered, counted as received
        self.received += 1
        return True

    def update_jitter(self, timestamp: int, arrival: float) -> None:
        """§A.8 interarrival jitter, in timestamp units."""
        transit = arrival * self.clock_rate - timestamp
        if self.transit is not None:
            d = abs(transit - self.transit)
            if d < self.clock_rate * 10:  # ignore timestamp jumps (new talkspurt base)
                self.jitter += (d - self.jitter) / 16.0
        self.transit = transit

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return max(0, self.extended_max - self.base_seq + 1) if not self.probation else 0

    @property
    def lost(self) -> int:
        """Cumulative lost, clamped to the signed 24-bit field (§A.3)."""
        return max(-0x800000, min(0x7FFFFF, self.expected - self.received))

    def report_block(self, lsr: int, dlsr: int) -> ReportBlock:
        """A report block for this source; advances the interval counters (§A.3)."""
        expected = self.expected
        expected_interval = expected - self.expected_prior
        received_interval = self.received - self.received_prior
        self.expected_prior = expected
        self.received_prior = self.received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        self.last_fraction = fraction
        return ReportBlock(
            ssrc=self.ssrc,
            fraction_lost=fraction,
            cumulative_lost=self.lost,
            highest_sequence=self.extended_max & 0xFFFFFFFF,
            jitter=int(self.jitter),
            lsr=lsr,
            dlsr=dlsr,
        )


class RtpSender:
    """Outgoing stream state: SSRC, sequence, timestamp, counts, and relay translation."""

    def __init__(self, ssrc: int, clock_rate: int, rng: random.Random, now: float) -> None:
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self.seq = rng.randrange(RTP_SEQ_MOD)  # random initial values, §5.1
        self._ts_base = rng.randrange(1 << 32)
        self._time_base = now
        self.next_ts: int | None = None  # timestamp of the next generated frame
        self.last_ts = self._ts_base
        self.packets = 0
        self.octets = 0
        self.marker_pending = True
        self._relay_ssrc: int | None = None
        self._seq_offset = 0
        self._ts_offset = 0

    def clock_ts(self, now: float) -> int:
        """The RTP timestamp that corresponds to ``now`` on this stream's clock."""
        return (self._ts_base + round((now - self._time_base) * self.clock_rate)) & 0xFFFFFFFF

    def restart_source(self) -> None:
        """A new source feeds this stream: re-anchor timestamps and mark the next packet."""
        self.next_ts = None
        self._relay_ssrc = None
        self.marker_pending = True

    def frame(self, payload_type: int, samples: int, now: float, payload: bytes) -> bytes:
        """A whole generated packet (header + payload), counted as sent."""
        ts = self.next_ts
        if ts is None:
            ts = self._fresh_ts(now)
        self.next_ts = (ts + samples) & 0xFFFFFFFF
        marker = 0x80 if self.marker_pending else 0
        self.marker_pending = False
        seq = self.seq
        self.seq = (seq + 1) & 0xFFFF
        self.last_ts = ts
        self.packets += 1
        self.octets += len(payload)
        self._relay_ssrc = None  # a relayed source resuming after this re-anchors
        return HEADER.pack(0x80, marker | payload_type, seq, ts, self.ssrc) + payload

    def frame_header(self, payload_type: int, samples: int, now: float) -> bytes:
        """Header of the next generated frame; timestamps advance by ``samples`` exactly."""
        ts = self.next_ts
        if ts is None:
            ts = self._fresh_ts(now)
        self.next_ts = (ts + samples) & 0xFFFFFFFF
        return self._header(payload_type, ts)

    def event_header(self, payload_type: int, timestamp: int, marker: bool) -> bytes:
        """Header for a telephone-event packet carrying its event's start timestamp."""
        header = HEADER.pack(
            0x80, (0x80 if marker else 0) | payload_type, self.seq, timestamp, self.ssrc
        )
        self.seq = (self.seq + 1) & 0xFFFF
        self._relay_ssrc = None  # a relayed source resuming after this re-anchors
        return header

    def start_ts(self, now: float) -> int:
        """Timestamp for an event or frame starting now, keeping the stream monotonic."""
        if self.next_ts is not None:
            return self.next_ts
        return self._fresh_ts(now)

    def _fresh_ts(self, now: float) -> int:
        ts = self.clock_ts(now)
        if ((ts - self.last_ts) & 0xFFFFFFFF) >= 0x80000000:  # would go backwards
            ts = (self.last_ts + 160) & 0xFFFFFFFF
        return ts

    def _header(self, payload_type: int, ts: int) -> bytes:
        marker = 0x80 if self.marker_pending else 0
        self.marker_pending = False
        header = HEADER.pack(0x80, marker | payload_type, self.seq, ts, self.ssrc)
        self.seq = (self.seq + 1) & 0xFFFF
        self.last_ts = ts
        self._relay_ssrc = None  # a relayed source resuming after this re-anchors
        return header

    def translate(
        self,
        in_ssrc: int,
        in_seq: int,
        in_ts: int,
        payload_type: int,
        marker: bool,
        now: float,
        payload_bytes: int = 0,
    ) -> bytes:
        """Header for a relayed packet: our SSRC, continuous sequence and timestamps
        (the packet is counted as sent)."""
        self.packets += 1
        self.octets += payload_bytes
        if in_ssrc != self._relay_ssrc:
            self._relay_ssrc = in_ssrc
            self._seq_offset = self.seq - in_seq
            self._ts_offset = self.start_ts(now) - in_ts
            self.next_ts = None
            marker = True
        seq = (in_seq + self._seq_offset) & 0xFFFF
        ts = (in_ts + self._ts_offset) & 0xFFFFFFFF
        if 0 <= ((seq - self.seq) & 0xFFFF) < 0x8000:  # newest so far
            self.seq = (seq + 1) & 0xFFFF
            self.last_ts = ts
        self.marker_pending = False
        return HEADER.pack(0x80, (0x80 if marker else 0) | payload_type, seq, ts, self.ssrc)

    def count(self, payload_bytes: int) -> None:
        self.packets += 1
        self.octets += payload_bytes


@dataclass(frozen=True, slots=True)
class LegStats:
    """Call-quality figures of one leg (they feed CDRs)."""

    packets_received: int
    octets_received: int
    packets_sent: int
    octets_sent: int
    packets_lost: int
    loss_ratio: float
    jitter_ms: float
    rtt_ms: float | None
    remote_loss_ratio: float | None  # what the far end reports about our stream
    remote_jitter_ms: float | None
    malformed_dropped: int
    foreign_dropped: int  # packets from a non-latched address
    concealed_frames: int


class RtpSession:
    """One RTP session: our outgoing stream, the current remote source, RTCP."""

    def __init__(
        self,
        clock_rate: int,
        now: float,
        cname: str,
        rng: random.Random | None = None,
        ssrc: int | None = None,
        rtcp_interval: float = RTCP_MIN_INTERVAL,
    ) -> None:
        self.rng = rng or random.Random()
        self.rtcp_interval = rtcp_interval
        self.clock_rate = clock_rate
        self.cname = cname.encode()
        self.sender = RtpSender(
            ssrc if ssrc is not None else self.rng.getrandbits(32), clock_rate, self.rng, now
        )
        self.source: ReceiverStats | None = None
        self.packets_received = 0
        self.octets_received = 0
        self.malformed = 0
        self.foreign = 0
        self.concealed = 0
        self.rtt: float | None = None
        self.remote_fraction: float | None = None
        self.remote_jitter: float | None = None
        self._last_sr_middle = 0
        self._last_sr_arrival = 0.0
        self._packets_at_report = 0
        self.next_rtcp = now + rtcp_interval / 2 * self.rng.uniform(0.5, 1.5)  # §6.2

    def on_rtp(
        self, ssrc: int, seq: int, timestamp: int, size: int, arrival: float, audio: bool
    ) -> bool:
        """Account one received packet; returns the §A.1 validity verdict."""
        self.packets_received += 1
        self.octets_received += size
        source = self.source
        if source is None or source.ssrc != ssrc:
            source = self.source = ReceiverStats(ssrc, seq, self.clock_rate)
        valid = source.update_seq(seq)
        if audio:
            source.update_jitter(timestamp, arrival)
        return valid

    def on_rtcp(self, packets: list[RtcpPacket], now: float, wall: float) -> None:
        """Take in a received compound packet: remember SR times, compute RTT (§6.4.1)."""
        arrival_middle = ntp_middle32(ntp_from_unix(wall))
        for packet in packets:
            if isinstance(packet, SenderReport):
                self._last_sr_middle = ntp_middle32(packet.ntp_timestamp)
                self._last_sr_arrival = now
            if isinstance(packet, SenderReport | ReceiverReport):
                for block in packet.reports:
                    if block.ssrc != self.sender.ssrc:
                        continue
                    self.remote_fraction = block.fraction_lost / 256.0
                    self.remote_jitter = block.jitter / self.clock_rate
                    if block.lsr:
                        rtt = ((arrival_middle - block.lsr - block.dlsr) & 0xFFFFFFFF) / 65536.0
                        if rtt < 60.0:
                            self.rtt = rtt

    def rtcp_due(self, now: float) -> bool:
        return now >= self.next_rtcp

    def build_report(self, now: float, wall: float) -> bytes:
        """The next compound RTCP packet: SR if we sent since the last one, else RR; SDES."""
        self.next_rtcp = now + self.rtcp_interval * self.rng.uniform(0.5, 1.5)
        blocks: tuple[ReportBlock, ...] = ()
        if self.source is not None and not self.source.probation:
            dlsr = 0
            if self._last_sr_middle:
                dlsr = int((now - self._last_sr_arrival) * 65536) & 0xFFFFFFFF
            blocks = (self.source.report_block(self._last_sr_middle, dlsr),)
        sender = self.sender
        first: RtcpPacket
        if sender.packets != self._packets_at_report:  # we sent since the last report
            first = SenderReport(
                sender.ssrc,
                ntp_from_unix(wall),
                sender.clock_ts(now),
                sender.packets & 0xFFFFFFFF,
                sender.octets & 0xFFFFFFFF,
                blocks,
            )
        else:
            first = ReceiverReport(sender.ssrc, blocks)
        self._packets_at_report = sender.packets
        sdes = SourceDescription(((sender.ssrc, ((SDES_CNAME, self.cname),)),))
        return serialize_compound([first, sdes])

    def stats(self) -> LegStats:
        source = self.source
        lost = source.lost if source is not None else 0
        expected = source.expected if source is not None else 0
        return LegStats(
            packets_received=self.packets_received,
            octets_received=self.octets_received,
            packets_sent=self.sender.packets,
            octets_sent=self.sender.octets,
            packets_lost=max(0, lost),
            loss_ratio=max(0, lost) / expected if expected else 0.0,
            jitter_ms=(source.jitter / self.clock_rate * 1000.0) if source is not None else 0.0,
            rtt_ms=self.rtt * 1000.0 if self.rtt is not None else None,
            remote_loss_ratio=self.remote_fraction,
            remote_jitter_ms=None if self.remote_jitter is None else self.remote_jitter * 1000.0,
            malformed_dropped=self.malformed,
            foreign_dropped=self.foreign,
            concealed_frames=self.concealed,
        )


LATCH_WINDOW: Final = 2.0  # s from the first packet: an unsignalled source may latch
RELATCH_SILENCE: Final = 2.0  # s the latched source must be silent before another may latch


class LatchState(enum.Enum):
    WAITING = "waiting"  # sending to the address from SDP, no packet received yet
    LATCHED = "latched"  # sending to where the far end's packets come from


def is_routable(host: str) -> bool:
    """Whether an SDP connection address is a global unicast IP (not private, loopback,
    link-local, shared or documentation space, and not a host name)."""
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        return False


class Latch:
    """Symmetric RTP (RFC 4961 §3, RFC 7362 §4) without RTP bleed.

    - When the SDP's address is routable, only packets from that IP are taken (the
      port may differ: some endpoints send from another port than they receive on).
    - Otherwise (a phone behind NAT signals a private address) a source may latch during
      a short window that opens with the first packet; a source that sends exactly from
      the SDP's address and port wins over one latched in that window, and sources
      that were already sending before the leg was configured (``stale``: streams of an
      earlier call on a reused port) latch only if they match the SDP exactly.
    - Once latched, another source is taken only after the latched one has been silent
      for ``silence`` seconds (NAT rebinding, a phone that restarted its stream).

    Refused packets are counted in ``refused``; ``accept`` reports the time of the packet.
    """

    def __init__(
        self,
        signalled: tuple[str, int] | None,
        enabled: bool = True,
        *,
        strict: bool | None = None,
        window: float = LATCH_WINDOW,
        silence: float = RELATCH_SILENCE,
        stale: frozenset[tuple[str, int]] = frozenset(),
    ) -> None:
        self.signalled = signalled
        self.enabled = enabled
        self.strict = (
            signalled is not None and is_routable(signalled[0]) if strict is None else strict
        )
        self.window = window
        self.silence = silence
        self.stale = stale
        self.state = LatchState.WAITING
        self.latched: tuple[str, int] | None = None
        self.last_heard = 0.0  # when the latched source last sent (engines update it)
        self.opened: float | None = None  # when the first packet arrived
        self.refused = 0
        self.relatched = 0

    def accept(self, source: tuple[str, int], now: float) -> bool:
        """Whether a packet from ``source`` belongs to this leg (latching as above)."""
        if source == self.latched:
            self.last_heard = now
            return True
        if not self.enabled:
            if self.signalled is None or source[0] == self.signalled[0]:
                return True
            self.refused += 1
            return False
        if self.opened is None:
            self.opened = now
        signalled = self.signalled
        if self.strict:
            assert signalled is not None
            ok = source[0] == signalled[0] and (self.latched is None or self._silent(now))
        elif source == signalled:
            ok = self.latched is None or self._in_window(now) or self._silent(now)
        elif source in self.stale:
            ok = False
        elif self.latched is None:
            ok = True  # nothing latched yet (in or after the window)
        else:
            ok = self._silent(now)
        if not ok:
            self.refused += 1
            return False
        if self.latched is not None:
            self.relatched += 1
        self.latched = source
        self.last_heard = now
        self.state = LatchState.LATCHED
        return True

    def _in_window(self, now: float) -> bool:
        return self.opened is not None and now - self.opened <= self.window

    def _silent(self, now: float) -> bool:
        return now - self.last_heard >= self.silence

    @property
    def destination(self) -> tuple[str, int] | None:
        if self.enabled and self.latched is not None:
            return self.latched
        return self.signalled
