"""SRTP (RFC 3711) for a leg whose keys come from signalling: SDES (RFC 4568) on SIP legs
over TLS. The SRTP transform itself is libsrtp (through pylibsrtp's cffi binding).

``SdesTransport`` sits between a leg's sockets and the leg (see ``Leg.use_transport``):
RTP and RTCP keep their own ports (no rtcp-mux on SIP legs).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import pylibsrtp

Address = tuple[str, int]


def processor(session: pylibsrtp.Session, func: Any) -> Callable[[bytes], bytes]:
    """``func`` (srtp_protect, srtp_unprotect, ...) over pylibsrtp's session through its
    cffi binding with the session's preallocated buffer: what ``Session.protect`` does
    without its per-call allocations (this runs for every packet of every browser leg).
    The packet goes in and comes out through a buffer view of that memory (slice copies,
    no cffi call): the one cffi call per packet is libsrtp's."""
    from pylibsrtp._binding import ffi

    srtp = session._srtp[0]
    buffer = session._cdata
    room = len(buffer) - pylibsrtp.SRTP_MAX_SRTCP_TRAILER_LEN
    length = ffi.new("int *")
    view = ffi.buffer(buffer)
    error = pylibsrtp.Error

    def process(packet: bytes) -> bytes:
        n = len(packet)
        if n > room:
            raise error("packet is too long")
        view[0:n] = packet
        length[0] = n
        status = func(srtp, buffer, length)
        if status:
            raise error(f"libsrtp status {status}")
        return view[0 : length[0]]  # type: ignore[no-any-return]

    process.session = session  # type: ignore[attr-defined]  # kept alive with it
    return process


@dataclass(frozen=True, slots=True)
class Suite:
    """An SDES crypto-suite (RFC 4568 §6.2) and its libsrtp profile."""

    name: str
    profile: int
    key_bytes: int  # master key + master salt


SUITES: Final = {
    s.name: s
    for s in (
        Suite("AES_CM_128_HMAC_SHA1_80", pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 30),
        Suite("AES_CM_128_HMAC_SHA1_32", pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32, 30),
    )
}


@dataclass(frozen=True, slots=True)
class CryptoAttribute:
    """``a=crypto:<tag> <suite> inline:<key||salt base64>[|lifetime][|MKI]`` (RFC 4568 §9.1)."""

    tag: int
    suite: str
    key: bytes

    @classmethod
    def parse(cls, value: str) -> CryptoAttribute | None:
        """None for a suite or key form we do not take (the offerer may list others)."""
        parts = value.split()
        if len(parts) < 3 or not parts[0].isdigit() or parts[1] not in SUITES:
            return None
        params = parts[2]
        if not params.startswith("inline:") or ";" in params:
            return None  # one key only: several key-params (and MKIs) are not supported
        fields = params[len("inline:") :].split("|")
        if len(fields) > 1 and not fields[1].startswith("2^") and ":" in fields[-1]:
            return None  # an MKI
        try:
            key = base64.b64decode(fields[0], validate=True)
        except ValueError:
            return None
        if len(key) != SUITES[parts[1]].key_bytes:
            return None
        return cls(int(parts[0]), parts[1], key)

    @classmethod
    def generate(cls, tag: int, suite: str) -> CryptoAttribute:
        return cls(tag, suite, secrets.token_bytes(SUITES[suite].key_bytes))

    def __str__(self) -> str:
        return f"{self.tag} {self.suite} inline:{base64.b64encode(self.key).decode()}"


class SdesTransport:
    """SRTP with keys from the SDP: ours encrypts what the leg sends, the peer's decrypts
    what arrives. Packets that fail authentication are counted and dropped."""

    def __init__(self, leg: Any, local: CryptoAttribute, remote: CryptoAttribute) -> None:
        self.leg = leg
        self.local = local
        self.remote = remote
        self.srtp_failures = 0
        self._udp, self._rtcp_udp = leg.sockets
        self._on_rtp = leg._on_rtp
        self._on_rtcp = leg._on_rtcp
        self._rekey(local, remote)

    def _rekey(self, local: CryptoAttribute, remote: CryptoAttribute) -> None:
        from pylibsrtp._binding import lib

        suite = SUITES[local.suite]
        tx = pylibsrtp.Policy(
            key=local.key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=suite.profile
        )
        tx.allow_repeat_tx = True
        rx = pylibsrtp.Policy(
            key=remote.key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=suite.profile
        )
        rx.window_size = 1024
        tx_session, rx_session = pylibsrtp.Session(tx), pylibsrtp.Session(rx)
        self._protect = processor(tx_session, lib.srtp_protect)
        self._protect_rtcp = processor(tx_session, lib.srtp_protect_rtcp)
        self._unprotect = processor(rx_session, lib.srtp_unprotect)
        self._unprotect_rtcp = processor(rx_session, lib.srtp_unprotect_rtcp)
        self.local, self.remote = local, remote

    def update(self, local: CryptoAttribute, remote: CryptoAttribute) -> None:
        """A re-offer: new keys only when a side changed its key (RFC 4568 §7.1.4)."""
        if local != self.local or remote != self.remote:
            self._rekey(local, remote)

    # -- the leg's RTP socket ----------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: Address) -> None:
        try:
            plain = self._unprotect(data)
        except pylibsrtp.Error:
            self.srtp_failures += 1
            return
        self._on_rtp(plain, addr)

    def rtcp_datagram_received(self, data: bytes, addr: Address) -> None:
        try:
            plain = self._unprotect_rtcp(data)
        except pylibsrtp.Error:
            self.srtp_failures += 1
            return
        self._on_rtcp(plain, addr)

    def sendto(self, data: bytes, addr: Address | None = None) -> None:
        if addr is not None:
            self._udp.sendto(self._protect(data), addr)

    def close(self) -> None:
        self._udp.close()


class _SrtcpSender:
    def __init__(self, transport: SdesTransport) -> None:
        self._transport = transport

    def sendto(self, data: bytes, addr: Address | None = None) -> None:
        t = self._transport
        if addr is not None:
            t._rtcp_udp.sendto(t._protect_rtcp(data), addr)

    def close(self) -> None:
        self._transport._rtcp_udp.close()


def secure_with_sdes(leg: Any, local: CryptoAttribute, remote: CryptoAttribute) -> SdesTransport:
    """Put SRTP keyed by SDES on ``leg`` (or re-key the one it has)."""
    existing = leg.secure_transport
    if isinstance(existing, SdesTransport):
        existing.update(local, remote)
        return existing
    transport = SdesTransport(leg, local, remote)
    leg.use_transport(transport, _SrtcpSender(transport))
    return transport


def sdes_of(leg: Any) -> SdesTransport | None:
    existing = leg.secure_transport
    return existing if isinstance(existing, SdesTransport) else None
