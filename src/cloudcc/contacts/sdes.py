"""SRTP keyed by SDES (RFC 4568) on SIP legs, by the tenant's policy.

Keys travel in the SDP, so they are offered and accepted only when the signalling is
encrypted (SIP over TLS or WSS, RFC 4568 §8.3). The tenant's ``srtp_policy``:

- ``off``: plain RTP; an RTP/SAVP offer is refused (488).
- ``optional`` (default): SRTP when the peer offers or accepts a crypto attribute over
  TLS; our offers over TLS are RTP/AVP with ``a=crypto`` (the peer may decline it).
- ``required``: every SIP leg is SRTP over TLS; anything else is refused (488) or not
  dialed. Browser legs are always DTLS-SRTP, whatever the policy.
"""

from __future__ import annotations

import enum

from cloudcc.media.engine import Leg as MediaLeg
from cloudcc.media.srtp import CryptoAttribute, sdes_of, secure_with_sdes
from cloudcc.sip.exceptions import OfferAnswerError
from cloudcc.sip.sdp import MediaDescription, SessionDescription

SUITE = "AES_CM_128_HMAC_SHA1_80"  # RFC 4568 §6.2.1, what every SRTP phone offers


class SrtpPolicy(enum.StrEnum):
    OFF = "off"
    OPTIONAL = "optional"
    REQUIRED = "required"


def crypto_of(media: MediaDescription | None) -> list[CryptoAttribute]:
    """The crypto attributes of a stream we can use, in the offerer's order."""
    if media is None:
        return []
    out = []
    for key, value in media.attributes:
        if key == "crypto" and value:
            parsed = CryptoAttribute.parse(value)
            if parsed is not None:
                out.append(parsed)
    return out


def _is_savp(media: MediaDescription) -> bool:
    return media.proto.upper() in ("RTP/SAVP", "RTP/SAVPF")


def answer_crypto(
    offer: SessionDescription,
    answer: SessionDescription,
    leg: MediaLeg,
    *,
    secure_signalling: bool,
    policy: SrtpPolicy,
) -> None:
    """Accept the offer's SRTP (our ``a=crypto`` into ``answer``, keys onto ``leg``), or
    leave both plain; OfferAnswerError (a 488) when the policy and the offer disagree."""
    offered, mine = offer.audio, answer.audio
    if offered is None or mine is None:
        return
    candidates = crypto_of(offered)
    usable = bool(candidates) and secure_signalling and policy is not SrtpPolicy.OFF
    if not usable:
        if policy is SrtpPolicy.REQUIRED:
            raise OfferAnswerError(
                "the tenant requires SRTP: offer a crypto attribute (SDES) over SIP/TLS"
            )
        if _is_savp(offered):
            raise OfferAnswerError(
                "RTP/SAVP needs SDES keys over SIP/TLS, and the tenant's SRTP policy is on"
                if policy is not SrtpPolicy.OFF
                else "the tenant's SRTP policy is off: offer RTP/AVP"
            )
        return
    theirs = candidates[0]
    current = sdes_of(leg)
    ours = (
        current.local  # a re-offer: our key stays (RFC 4568 §7.1.4)
        if current is not None and current.local.suite == theirs.suite
        else CryptoAttribute.generate(theirs.tag, theirs.suite)
    )
    ours = CryptoAttribute(theirs.tag, ours.suite, ours.key)
    mine.attributes.append(("crypto", str(ours)))
    secure_with_sdes(leg, ours, theirs)


def offer_crypto(
    offer: SessionDescription, leg: MediaLeg, *, secure_signalling: bool, policy: SrtpPolicy
) -> None:
    """Put our key into an offer when the policy and the signalling allow it."""
    audio = offer.audio
    if audio is None or policy is SrtpPolicy.OFF:
        return
    if not secure_signalling:
        if policy is SrtpPolicy.REQUIRED:
            raise OfferAnswerError("the tenant requires SRTP, and this target is not SIP/TLS")
        return
    current = sdes_of(leg)
    ours = current.local if current is not None else CryptoAttribute.generate(1, SUITE)
    audio.attributes.append(("crypto", str(ours)))
    if policy is SrtpPolicy.REQUIRED:
        audio.proto = "RTP/SAVP"


def configure_crypto(
    leg: MediaLeg, local: SessionDescription, remote: SessionDescription, policy: SrtpPolicy
) -> None:
    """After the answer to our offer: key the leg when the peer took our crypto offer."""
    ours = crypto_of(local.audio)
    if not ours:
        return
    theirs = {c.tag: c for c in crypto_of(remote.audio)}
    accepted = next((c for c in ours if c.tag in theirs), None)
    if accepted is None:
        if policy is SrtpPolicy.REQUIRED:
            raise OfferAnswerError("the tenant requires SRTP, and the answer declined it")
        return
    secure_with_sdes(leg, accepted, theirs[accepted.tag])
