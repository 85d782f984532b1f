"""The WebRTC offer/answer (RFC 8829 JSEP as the browser speaks it, RFC 8839 ICE
attributes, RFC 8122/5763 fingerprint and setup, RFC 5761 rtcp-mux, RFC 8843 BUNDLE).

One audio stream; G.711 (PCMU, PCMA) is chosen when the browser offers it, so that a
bridge to a G.711 SIP leg relays packets without transcoding; Opus only when it is all
the browser offers. Other streams of an offer (video) are rejected with port 0.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from cloudcc.sip.exceptions import OfferAnswerError
from cloudcc.sip.sdp import Codec, Direction, MediaDescription, Origin, SessionDescription

from .dtls import Fingerprint, Role
from .exceptions import NotWebRtc
from .ice import IceCredentials

PROTO = "UDP/TLS/RTP/SAVPF"
OPUS = Codec(111, "opus", 48000, 2, "minptime=10;useinbandfec=1")
PCMU = Codec(0, "PCMU", 8000)
PCMA = Codec(8, "PCMA", 8000)
TELEPHONE_EVENT = Codec(101, "telephone-event", 8000, fmtp="0-16")
_SESSION_IDS = itertools.count(4000)


def is_webrtc(description: SessionDescription) -> bool:
    """Whether the audio stream is DTLS-SRTP (what a browser sends)."""
    audio = description.audio
    return audio is not None and "TLS" in audio.proto.upper().split("/")


@dataclass(frozen=True, slots=True)
class RemoteParameters:
    ice: IceCredentials
    fingerprint: Fingerprint
    setup: str  # active, passive, actpass
    mid: str | None
    address: tuple[str, int]  # a first candidate (media really goes where ICE says)

    @property
    def our_role(self) -> Role:
        """RFC 5763 §5: 'active' connects, so the other side is the DTLS server."""
        return Role.CLIENT if self.setup == "passive" else Role.SERVER


def _attr(description: SessionDescription, media: MediaDescription, name: str) -> str | None:
    value = media.attribute(name)
    if value is None:
        value = next((v or "" for k, v in description.attributes if k == name), None)
    return value


def remote_parameters(description: SessionDescription) -> RemoteParameters:
    """What the browser's description says about ICE and DTLS; NotWebRtc when incomplete."""
    audio = description.audio
    if audio is None:
        raise NotWebRtc("audio stream")
    ufrag = _attr(description, audio, "ice-ufrag")
    pwd = _attr(description, audio, "ice-pwd")
    if not ufrag or not pwd:
        raise NotWebRtc("ICE credentials")
    fingerprint = _attr(description, audio, "fingerprint")
    if not fingerprint:
        raise NotWebRtc("DTLS fingerprint")
    setup = (_attr(description, audio, "setup") or "actpass").strip().lower()
    address = (description.address_of(audio) or "0.0.0.0", audio.port)
    for value in (v for k, v in audio.attributes if k == "candidate" and v):
        parts = value.split()
        # foundation component transport priority address port "typ" type
        if len(parts) >= 8 and parts[1] == "1" and parts[2].lower() == "udp":
            address = (parts[4], int(parts[5]))
            break
    return RemoteParameters(
        IceCredentials(ufrag.strip(), pwd.strip()),
        Fingerprint.parse(fingerprint),
        setup,
        audio.attribute("mid"),
        address,
    )


def _stream_attributes(
    ice: IceCredentials,
    fingerprint: str,
    setup: str,
    mid: str,
    host: str,
    port: int,
    cname: str,
    ssrc: int,
) -> list[tuple[str, str | None]]:
    return [
        ("mid", mid),
        ("ice-ufrag", ice.ufrag),
        ("ice-pwd", ice.pwd),
        ("fingerprint", f"sha-256 {fingerprint}"),
        ("setup", setup),
        ("rtcp-mux", None),
        ("rtcp", f"{port} IN {'IP6' if ':' in host else 'IP4'} {host}"),
        ("candidate", f"1 1 udp 2130706431 {host} {port} typ host"),
        ("end-of-candidates", None),
        ("ssrc", f"{ssrc} cname:{cname}"),
    ]


def _session(host: str, media: list[MediaDescription], mids: list[str]) -> SessionDescription:
    family = "IP6" if ":" in host else "IP4"
    return SessionDescription(
        origin=Origin("cloudcc", str(next(_SESSION_IDS)), 1, "IN", family, host),
        connection=host,
        media=media,
        attributes=[
            ("ice-lite", None),  # RFC 8445 §2.5: we only answer checks
            ("group", "BUNDLE " + " ".join(mids)),
            ("msid-semantic", " WMS *"),
        ],
    )


def make_offer(
    host: str,
    port: int,
    ice: IceCredentials,
    fingerprint: str,
    *,
    cname: str,
    ssrc: int,
    opus: bool = True,
    prefer: str | None = None,
) -> SessionDescription:
    """Our offer to a browser: PCMU, PCMA (``prefer``: PCMA first), Opus as a last choice,
    telephone-event. The browser answers with the first it supports (RFC 3264 §6.1)."""
    g711 = [PCMA, PCMU] if (prefer or "").upper() == "PCMA" else [PCMU, PCMA]
    codecs = [*g711, *([OPUS] if opus else []), TELEPHONE_EVENT]
    audio = MediaDescription(
        "audio",
        port,
        PROTO,
        [str(c.payload_type) for c in codecs],
        codecs,
        direction=Direction.SENDRECV,
        attributes=_stream_attributes(ice, fingerprint, "actpass", "0", host, port, cname, ssrc),
    )
    return _session(host, [audio], ["0"])


def choose_codec(offered: MediaDescription) -> Codec | None:
    """G.711 when offered (in the offer's order), else Opus, else None."""
    g711 = next(
        (c for c in offered.codecs if c.key in (("pcmu", 8000, 1), ("pcma", 8000, 1))), None
    )
    if g711 is not None:
        return g711
    return next((c for c in offered.codecs if c.name.lower() == "opus"), None)


def make_answer(
    offer: SessionDescription,
    host: str,
    port: int,
    ice: IceCredentials,
    fingerprint: str,
    *,
    cname: str,
    ssrc: int,
    opus: bool = True,
    role: Role | None = None,
) -> SessionDescription:
    """The answer to a browser's offer: its first audio stream; others rejected (port 0).
    ``role``: our side of a DTLS association already up, which a re-offer keeps."""
    audio = offer.audio
    if audio is None:
        raise OfferAnswerError("the offer has no audio stream")
    codec = choose_codec(audio)
    if codec is None or (codec.name.lower() == "opus" and not opus):
        raise OfferAnswerError("the browser offers neither G.711 nor Opus")
    chosen = [codec]
    # RFC 4733 events at 8 kHz beside G.711; with Opus DTMF stays in band (the engine
    # detects it in the decoded audio)
    event = next(
        (c for c in audio.codecs if c.name.lower() == "telephone-event" and c.clock_rate == 8000),
        None,
    )
    if event is not None and codec.clock_rate == 8000:
        chosen.append(event)
    mid = audio.attribute("mid") or "0"
    offered_setup = (_attr(offer, audio, "setup") or "actpass").strip().lower()
    setup = "active" if offered_setup == "passive" else "passive"  # RFC 5763 §5
    if role is not None and offered_setup == "actpass":
        setup = "active" if role is Role.CLIENT else "passive"  # RFC 8842 §5.5
    media: list[MediaDescription] = []
    for offered in offer.media:
        if offered is audio:
            want = offer.direction_of(offered).reverse
            media.append(
                MediaDescription(
                    "audio",
                    port,
                    offered.proto,
                    [str(c.payload_type) for c in chosen],
                    chosen,
                    direction=want,
                    attributes=_stream_attributes(
                        ice, fingerprint, setup, mid, host, port, cname, ssrc
                    ),
                )
            )
        else:
            rejected_mid = offered.attribute("mid")
            media.append(
                MediaDescription(
                    offered.media,
                    0,
                    offered.proto,
                    offered.formats[:1] or ["0"],
                    attributes=[("mid", rejected_mid)] if rejected_mid else [],
                )
            )
    return _session(host, media, [mid])
