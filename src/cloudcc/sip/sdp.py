"""SDP session descriptions (RFC 4566) and the offer/answer model (RFC 3264).

``parse_sdp`` / ``SessionDescription.encode`` round-trip every line they do not
interpret. ``make_offer`` builds an offer, ``answer`` builds the answer to an offer
from local capabilities (§6 of RFC 3264), and ``Direction`` implements hold
(sendonly/recvonly/inactive, RFC 3264 §8.4).
"""

from __future__ import annotations

import enum
import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from .exceptions import OfferAnswerError, SdpError


class Direction(enum.Enum):
    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def reverse(self) -> Direction:
        """The direction the answerer uses for this offered direction (RFC 3264 §6.1)."""
        return _REVERSE[self]

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    def intersect(self, other: Direction) -> Direction:
        """The direction allowed by both (used to keep a local hold in an answer)."""
        send = self.sends and other.sends
        recv = self.receives and other.receives
        return _FROM_FLAGS[(send, recv)]


_REVERSE = {
    Direction.SENDRECV: Direction.SENDRECV,
    Direction.SENDONLY: Direction.RECVONLY,
    Direction.RECVONLY: Direction.SENDONLY,
    Direction.INACTIVE: Direction.INACTIVE,
}
_FROM_FLAGS = {
    (True, True): Direction.SENDRECV,
    (True, False): Direction.SENDONLY,
    (False, True): Direction.RECVONLY,
    (False, False): Direction.INACTIVE,
}
_DIRECTIONS = {d.value: d for d in Direction}


@dataclass(frozen=True)
class Codec:
    """An RTP payload format: ``a=rtpmap:<pt> <name>/<rate>[/<channels>]`` and fmtp."""

    payload_type: int
    name: str
    clock_rate: int
    channels: int = 1
    fmtp: str | None = None

    @property
    def key(self) -> tuple[str, int, int]:
        return self.name.lower(), self.clock_rate, self.channels

    def rtpmap(self) -> str:
        chans = f"/{self.channels}" if self.channels != 1 else ""
        return f"{self.payload_type} {self.name}/{self.clock_rate}{chans}"


# Static payload types of RFC 3551 §6 that an offer may list without rtpmap.
STATIC_CODECS = {
    0: Codec(0, "PCMU", 8000),
    3: Codec(3, "GSM", 8000),
    4: Codec(4, "G723", 8000),
    8: Codec(8, "PCMA", 8000),
    9: Codec(9, "G722", 8000),
    18: Codec(18, "G729", 8000),
    26: Codec(26, "JPEG", 90000),
    31: Codec(31, "H261", 90000),
    34: Codec(34, "H263", 90000),
}
PCMU = STATIC_CODECS[0]
PCMA = STATIC_CODECS[8]
TELEPHONE_EVENT = Codec(101, "telephone-event", 8000, fmtp="0-16")


@dataclass
class MediaDescription:
    """One ``m=`` section; ``codecs`` follow the order of the format list."""

    media: str
    port: int
    proto: str
    formats: list[str]
    codecs: list[Codec] = field(default_factory=list)
    connection: str | None = None
    direction: Direction | None = None  # None: not stated (sendrecv by default)
    port_count: int | None = None
    bandwidths: list[str] = field(default_factory=list)
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    ptime: int | None = None

    @property
    def effective_direction(self) -> Direction:
        return self.direction or Direction.SENDRECV

    @property
    def rejected(self) -> bool:
        return self.port == 0

    def codec(self, name: str) -> Codec | None:
        low = name.lower()
        return next((c for c in self.codecs if c.name.lower() == low), None)

    def attribute(self, name: str) -> str | None:
        return next((v or "" for k, v in self.attributes if k == name), None)


@dataclass
class Origin:
    username: str
    session_id: str
    version: int
    nettype: str
    addrtype: str
    address: str

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass
class SessionDescription:
    origin: Origin
    session_name: str = "-"
    connection: str | None = None
    timing: str = "0 0"
    media: list[MediaDescription] = field(default_factory=list)
    direction: Direction | None = None
    bandwidths: list[str] = field(default_factory=list)
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    other: list[tuple[str, str]] = field(default_factory=list)  # i=, u=, e=, p=, z=, k=

    @property
    def audio(self) -> MediaDescription | None:
        """The first audio stream that is not rejected."""
        return next((m for m in self.media if m.media == "audio" and m.port), None)

    def address_of(self, media: MediaDescription) -> str | None:
        """The connection address that applies to a stream (media-level wins, §5.7)."""
        return media.connection or self.connection

    def direction_of(self, media: MediaDescription) -> Direction:
        return media.direction or self.direction or Direction.SENDRECV

    @property
    def is_hold(self) -> bool:
        """Whether the offerer stops receiving on every active stream (RFC 3264 §8.4)."""
        active = [m for m in self.media if m.port]
        return bool(active) and all(not self.direction_of(m).receives for m in active)

    def with_direction(self, direction: Direction) -> SessionDescription:
        """A copy whose active streams all carry ``direction`` (hold/unhold)."""
        media = [replace(m, direction=direction) if m.port else replace(m) for m in self.media]
        return replace(self, media=media, direction=None, origin=replace(self.origin))

    def encode(self) -> bytes:
        return str(self).encode("utf-8")

    def __str__(self) -> str:
        lines = ["v=0", f"o={self.origin}", f"s={self.session_name}"]
        lines += [f"{k}={v}" for k, v in self.other if k in "iuep"]
        if self.connection:
            lines.append(f"c={_conn(self.connection)}")
        lines += [f"b={b}" for b in self.bandwidths]
        lines.append(f"t={self.timing}")
        lines += [f"{k}={v}" for k, v in self.other if k in "zk"]
        if self.direction:
            lines.append(f"a={self.direction.value}")
        lines += [f"a={k}" if v is None else f"a={k}:{v}" for k, v in self.attributes]
        for m in self.media:
            ports = f"{m.port}/{m.port_count}" if m.port_count else str(m.port)
            lines.append(f"m={m.media} {ports} {m.proto} {' '.join(m.formats)}")
            if m.connection:
                lines.append(f"c={_conn(m.connection)}")
            lines += [f"b={b}" for b in m.bandwidths]
            for codec in m.codecs:
                lines.append(f"a=rtpmap:{codec.rtpmap()}")
                if codec.fmtp:
                    lines.append(f"a=fmtp:{codec.payload_type} {codec.fmtp}")
            if m.ptime:
                lines.append(f"a=ptime:{m.ptime}")
            if m.direction:
                lines.append(f"a={m.direction.value}")
            lines += [f"a={k}" if v is None else f"a={k}:{v}" for k, v in m.attributes]
        return "\r\n".join(lines) + "\r\n"


def _conn(address: str) -> str:
    family = "IP6" if ":" in address else "IP4"
    return f"IN {family} {address}"


def parse_sdp(data: bytes | str) -> SessionDescription:
    """Parse an SDP body; raises :class:`SdpError` on anything that breaks RFC 4566 §5."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines or lines[0].strip() != "v=0":
        raise SdpError("SDP must start with v=0")
    origin: Origin | None = None
    session = SessionDescription(origin=Origin("-", "0", 0, "IN", "IP4", "0.0.0.0"))
    current: MediaDescription | None = None
    rtpmaps: dict[int, Codec] = {}
    fmtps: dict[int, str] = {}

    def finish_media() -> None:
        if current is None:
            return
        codecs = []
        for fmt in current.formats:
            if not fmt.isdigit():
                continue
            pt = int(fmt)
            codec = rtpmaps.get(pt) or STATIC_CODECS.get(pt)
            if codec is not None:
                codecs.append(replace(codec, fmtp=fmtps.get(pt, codec.fmtp)))
        current.codecs = codecs

    for line in lines[1:]:
        if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
            raise SdpError(f"bad SDP line {line[:60]!r}")
        kind, value = line[0], line[2:].strip()
        if kind == "o":
            parts = value.split()
            if len(parts) != 6 or not parts[2].isdigit():
                raise SdpError(f"bad o= line {value[:60]!r}")
            origin = Origin(parts[0], parts[1], int(parts[2]), parts[3], parts[4], parts[5])
            session.origin = origin
        elif kind == "s":
            session.session_name = value or "-"
        elif kind == "c":
            address = _parse_connection(value)
            if current is None:
                session.connection = address
            else:
                current.connection = address
        elif kind == "t":
            session.timing = value
        elif kind == "b":
            (current.bandwidths if current else session.bandwidths).append(value)
        elif kind == "m":
            finish_media()
            rtpmaps, fmtps = {}, {}
            current = _parse_media(value)
            session.media.append(current)
        elif kind == "a":
            name, _, attr = value.partition(":")
            direction = _DIRECTIONS.get(name)
            if direction is not None:
                if current is None:
                    session.direction = direction
                else:
                    current.direction = direction
            elif current is None:
                session.attributes.append((name, attr if _ else None))
            elif name == "rtpmap":
                try:
                    codec = _parse_rtpmap(attr)
                except SdpError:  # be liberal: an odd rtpmap (e.g. "31 LPC") is kept as is
                    current.attributes.append((name, attr))
                    continue
                rtpmaps[codec.payload_type] = codec
            elif name == "fmtp":
                pt, _, params = attr.partition(" ")
                if pt.isdigit():
                    fmtps[int(pt)] = params.strip()
            elif name == "ptime" and attr.strip().isdigit():
                current.ptime = int(attr.strip())
            else:
                current.attributes.append((name, attr if _ else None))
        elif kind in "iuepzkr":
            if current is None:
                session.other.append((kind, value))
        else:
            raise SdpError(f"unknown SDP line type {kind!r}")
    finish_media()
    if origin is None:
        raise SdpError("SDP without o= line")
    for m in session.media:
        if m.port and session.address_of(m) is None:
            raise SdpError(f"no c= line for the {m.media} stream")
    return session


def _parse_connection(value: str) -> str:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError(f"bad c= line {value[:60]!r}")
    return parts[2].split("/", 1)[0]


def _parse_media(value: str) -> MediaDescription:
    parts = value.split()
    if len(parts) < 4:
        raise SdpError(f"bad m= line {value[:60]!r}")
    port_text, _, count = parts[1].partition("/")
    if not port_text.isdigit() or int(port_text) > 65535 or (count and not count.isdigit()):
        raise SdpError(f"bad port in m= line {value[:60]!r}")
    return MediaDescription(
        media=parts[0],
        port=int(port_text),
        proto=parts[2],
        formats=parts[3:],
        port_count=int(count) if count else None,
    )


def _parse_rtpmap(value: str) -> Codec:
    pt, _, spec = value.strip().partition(" ")
    fields = spec.strip().split("/")
    if not pt.isdigit() or len(fields) < 2 or not fields[1].isdigit():
        raise SdpError(f"bad rtpmap {value[:60]!r}")
    channels = int(fields[2]) if len(fields) > 2 and fields[2].isdigit() else 1
    return Codec(int(pt), fields[0], int(fields[1]), channels)


# ------------------------------------------------------------------ offer/answer

_SESSION_IDS = itertools.count(int(time.time()))


def make_offer(
    address: str,
    port: int,
    codecs: Sequence[Codec] = (PCMU, PCMA),
    *,
    telephone_event: bool = True,
    direction: Direction = Direction.SENDRECV,
    video_port: int | None = None,
    video_codecs: Sequence[Codec] = (),
    ptime: int | None = 20,
    username: str = "cloudcc",
) -> SessionDescription:
    """An offer for one audio stream (and optionally video) from ``address:port``."""
    audio_codecs = list(codecs) + ([TELEPHONE_EVENT] if telephone_event else [])
    media = [
        MediaDescription(
            "audio",
            port,
            "RTP/AVP",
            [str(c.payload_type) for c in audio_codecs],
            audio_codecs,
            direction=direction,
            ptime=ptime,
        )
    ]
    if video_port is not None and video_codecs:
        media.append(
            MediaDescription(
                "video",
                video_port,
                "RTP/AVP",
                [str(c.payload_type) for c in video_codecs],
                list(video_codecs),
                direction=direction,
            )
        )
    sid = str(next(_SESSION_IDS))
    return SessionDescription(
        origin=Origin(username, sid, 1, "IN", "IP6" if ":" in address else "IP4", address),
        connection=address,
        media=media,
    )


def answer(
    offer: SessionDescription,
    address: str,
    ports: Mapping[str, int],
    codecs: Mapping[str, Sequence[Codec]] | None = None,
    *,
    telephone_event: bool = True,
    direction: Direction = Direction.SENDRECV,
    username: str = "cloudcc",
) -> SessionDescription:
    """The answer to ``offer`` (RFC 3264 §6).

    ``ports`` maps a media type to the local port for it (``{"audio": 40000}``);
    ``codecs`` maps a media type to the codecs we accept (G.711 for audio by default).
    Every offered stream gets a line in the same order; streams we cannot take are
    rejected with port 0 (§6). The answered direction is the reverse of the offered
    one, restricted by ``direction`` (our own hold). Raises OfferAnswerError (488)
    when nothing at all can be accepted.
    """
    supported = codecs if codecs is not None else {"audio": (PCMU, PCMA)}
    media: list[MediaDescription] = []
    accepted = 0
    for offered in offer.media:
        local_port = ports.get(offered.media)
        ours = supported.get(offered.media, ())
        chosen: list[Codec] = []
        if offered.port and local_port is not None and offered.proto.startswith("RTP/"):
            keys = {c.key for c in ours}
            # keep the offerer's payload types and order (§6.1); take the first match
            main = next((c for c in offered.codecs if c.key in keys), None)
            if main is not None:
                chosen.append(main)
                if telephone_event and offered.media == "audio":
                    te = next(
                        (
                            c
                            for c in offered.codecs
                            if c.name.lower() == "telephone-event"
                            and c.clock_rate == main.clock_rate
                        ),
                        None,
                    )
                    if te is not None:
                        chosen.append(te)
        if chosen and local_port is not None:
            accepted += 1
            want = offer.direction_of(offered).reverse.intersect(direction)
            media.append(
                MediaDescription(
                    offered.media,
                    local_port,
                    offered.proto,
                    [str(c.payload_type) for c in chosen],
                    chosen,
                    direction=want,
                    ptime=offered.ptime,
                )
            )
        else:
            media.append(
                MediaDescription(offered.media, 0, offered.proto, offered.formats[:1] or ["0"])
            )
    if not accepted:
        raise OfferAnswerError("no acceptable media stream in the offer")
    sid = str(next(_SESSION_IDS))
    return SessionDescription(
        origin=Origin(username, sid, 1, "IN", "IP6" if ":" in address else "IP4", address),
        connection=address,
        media=media,
    )


def negotiated_codec(local: SessionDescription, remote: SessionDescription) -> Codec | None:
    """The first audio codec both descriptions list (what RTP will carry)."""
    mine, theirs = local.audio, remote.audio
    if mine is None or theirs is None:
        return None
    keys = {c.key for c in theirs.codecs}
    return next(
        (c for c in mine.codecs if c.key in keys and c.name.lower() != "telephone-event"), None
    )
