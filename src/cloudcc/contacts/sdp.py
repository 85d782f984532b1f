"""Offer/answer between SIP dialogs and media legs: an SDP for a leg, a leg set from an SDP."""

from __future__ import annotations

from cloudcc.media.engine import Leg as MediaLeg
from cloudcc.sip import sdp
from cloudcc.sip.exceptions import OfferAnswerError
from cloudcc.sip.sdp import SessionDescription


def offer_for(leg: MediaLeg, address: str) -> SessionDescription:
    """Our offer for a new outgoing leg: G.711 (PCMU, PCMA) and telephone-event."""
    return sdp.make_offer(address, leg.port)


def answer_for(offer: SessionDescription, leg: MediaLeg, address: str) -> SessionDescription:
    """Answer an offer from ``leg``'s port and set the leg to what was agreed (RFC 3264 §6)."""
    answer = sdp.answer(offer, address, {"audio": leg.port})
    configure(leg, answer, offer)
    return answer


def configure(leg: MediaLeg, local: SessionDescription, remote: SessionDescription) -> None:
    """Point ``leg`` at the remote stream with the codec both sides listed."""
    audio = remote.audio
    if audio is None or not audio.port:
        raise OfferAnswerError("the remote description has no audio stream")
    address = remote.address_of(audio)
    if address is None:
        raise OfferAnswerError("the remote description has no connection address")
    codec = sdp.negotiated_codec(local, remote)
    if codec is None:
        raise OfferAnswerError("no common audio codec")
    event = next(
        (c for c in audio.codecs if c.name.lower() == "telephone-event" and c.clock_rate == 8000),
        None,
    )
    ours = local.audio
    if event is not None and ours is not None and ours.codec("telephone-event") is None:
        event = None
    leg.configure(
        (address, audio.port),
        codec=codec.name.upper(),
        payload_type=codec.payload_type,
        dtmf_payload_type=event.payload_type if event else None,
        ptime=audio.ptime or 20,
    )
