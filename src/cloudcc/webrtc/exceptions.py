"""Errors of browser media legs."""

from __future__ import annotations


class WebRtcError(Exception):
    """Base class of every WebRTC leg error."""


class NotWebRtc(WebRtcError):
    """An SDP that lacks what a WebRTC stream needs (ICE credentials, a DTLS fingerprint)."""

    def __init__(self, missing: str) -> None:
        super().__init__(f"not a WebRTC description: no {missing}")
        self.missing = missing


class DtlsFailed(WebRtcError):
    """The DTLS handshake failed or the peer's certificate does not match its fingerprint."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"DTLS-SRTP failed: {reason}")
        self.reason = reason
