"""Offer/answer between SIP dialogs and media legs: an SDP for a leg, a leg set from an SDP.

A browser (SIP over WebSocket, WebRTC media) gets the WebRTC flavour: the leg's port then
speaks ICE-lite and DTLS-SRTP (cloudcc.webrtc) and is otherwise a leg like any other.
"""

from __future__ import annotations

from cloudcc.contacts.sdes import SrtpPolicy, answer_crypto, configure_crypto, offer_crypto
from cloudcc.media.engine import Leg as MediaLeg
from cloudcc.sip import sdp
from cloudcc.sip.exceptions import OfferAnswerError
from cloudcc.sip.sdp import SessionDescription
from cloudcc.webrtc import sdp as webrtc_sdp
from cloudcc.webrtc.dtls import Role
from cloudcc.webrtc.exceptions import NotWebRtc
from cloudcc.webrtc.transport import attach, transport_of


def offer_for(
    leg: MediaLeg,
    address: str,
    *,
    webrtc: bool = False,
    prefer: str | None = None,
    secure_signalling: bool = False,
    srtp_policy: SrtpPolicy = SrtpPolicy.OPTIONAL,
) -> SessionDescription:
    """Our offer for a new outgoing leg: G.711 (PCMU, PCMA) and telephone-event, with an
    SDES key when the target is reached over TLS and the tenant's policy allows (sdes.py);
    for a browser (``webrtc``) the same codecs (and Opus last) over ICE-lite and DTLS-SRTP,
    ``prefer`` (the other party's G.711 law) first so that the bridge relays it as is."""
    if webrtc:
        transport = attach(leg)
        return webrtc_sdp.make_offer(
            address,
            leg.port,
            transport.ice.local,
            transport.certificate.fingerprint,
            cname=f"{leg.id}@cloudcc",
            ssrc=leg.session.sender.ssrc,
            prefer=prefer,
        )
    offer = sdp.make_offer(address, leg.port)
    offer_crypto(offer, leg, secure_signalling=secure_signalling, policy=srtp_policy)
    return offer


def answer_for(
    offer: SessionDescription,
    leg: MediaLeg,
    address: str,
    *,
    secure_signalling: bool = False,
    srtp_policy: SrtpPolicy = SrtpPolicy.OPTIONAL,
) -> SessionDescription:
    """Answer an offer from ``leg``'s port and set the leg to what was agreed (RFC 3264 §6);
    SRTP (SDES) as the offer, the signalling's transport and the tenant's policy say."""
    if webrtc_sdp.is_webrtc(offer):
        transport = attach(leg)
        keep: Role | None = None
        try:
            remote = webrtc_sdp.remote_parameters(offer)
        except NotWebRtc as exc:
            raise OfferAnswerError(str(exc)) from None
        transport.restart_ice(remote.ice)  # new credentials of ours when the browser's changed
        if remote.fingerprint == transport.remote_fingerprint:
            keep = transport.dtls_role  # the same association: the same roles
        answer = webrtc_sdp.make_answer(
            offer,
            address,
            leg.port,
            transport.ice.local,
            transport.certificate.fingerprint,
            cname=f"{leg.id}@cloudcc",
            ssrc=leg.session.sender.ssrc,
            role=keep,
        )
    else:
        answer = sdp.answer(offer, address, {"audio": leg.port})
        answer_crypto(offer, answer, leg, secure_signalling=secure_signalling, policy=srtp_policy)
    configure(leg, answer, offer, srtp_policy, answered=True)
    return answer


def configure(
    leg: MediaLeg,
    local: SessionDescription,
    remote: SessionDescription,
    srtp_policy: SrtpPolicy = SrtpPolicy.OPTIONAL,
    *,
    answered: bool = False,
) -> None:
    """Point ``leg`` at the remote stream with the codec both sides listed (and, after the
    answer to our offer, at the SRTP keys both sides listed)."""
    audio = remote.audio
    if audio is None or not audio.port:
        raise OfferAnswerError("the remote description has no audio stream")
    address = remote.address_of(audio)
    if address is None:
        raise OfferAnswerError("the remote description has no connection address")
    remote_address = (address, audio.port)
    rtcp_remote = None
    if webrtc_sdp.is_webrtc(remote):
        transport = transport_of(leg)
        if transport is None:
            raise OfferAnswerError("a WebRTC description for a plain RTP stream")
        try:
            params = webrtc_sdp.remote_parameters(remote)
        except NotWebRtc as exc:
            raise OfferAnswerError(str(exc)) from None
        transport.set_remote(params.ice, params.fingerprint, params.our_role)
        remote_address = rtcp_remote = params.address  # rtcp-mux (RFC 5761)
    elif not answered:
        configure_crypto(leg, local, remote, srtp_policy)
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
        remote_address,
        codec=codec.name.upper(),
        payload_type=codec.payload_type,
        dtmf_payload_type=event.payload_type if event else None,
        ptime=audio.ptime or 20,
        rtcp_remote=rtcp_remote,
    )
