"""The asyncio side of a browser leg: one UDP port of a media engine leg carries STUN,
DTLS and SRTP/SRTCP (demultiplexed by the first byte, RFC 7983 §7; RTCP muxed, RFC 5761).

Attached to a :class:`cloudcc.media.engine.Leg`, it answers ICE checks, runs the DTLS
handshake, and from then on decrypts what arrives before the leg sees it and encrypts
what the leg sends; the leg itself (bridge, hold, mix, record, DTMF) does not change.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pylibsrtp

from cloudcc.media.engine import Leg

from .dtls import Certificate, DtlsSrtp, Fingerprint, Role, is_dtls, node_certificate
from .exceptions import DtlsFailed
from .ice import IceCredentials, IceLite, is_stun

log = logging.getLogger(__name__)
Address = tuple[str, int]
_EARLY_DTLS = 8  # DTLS datagrams kept while the remote fingerprint is not known yet
_VALID_PATHS = 16  # browser addresses that passed an ICE check, kept to take media from


class _RtcpSender:
    """The leg's RTCP socket stand-in: SRTCP on the RTP port (rtcp-mux)."""

    def __init__(self, transport: WebRtcTransport, rtcp_socket: Any) -> None:
        self._transport = transport
        self._socket = rtcp_socket

    def sendto(self, data: bytes, addr: Address | None = None) -> None:
        self._transport.send_rtcp(data)

    def close(self) -> None:
        self._socket.close()


class WebRtcTransport(asyncio.DatagramProtocol):
    """ICE-lite + DTLS-SRTP on one leg (create with :func:`attach`). It is the protocol of
    the leg's socket itself: every datagram comes straight here (one Python call less per
    packet than a wrapper), and it never lets a packet's failure reach the socket."""

    def __init__(self, leg: Leg, certificate: Certificate) -> None:
        self.leg = leg
        self.certificate = certificate
        self.ice = IceLite(IceCredentials.generate())
        self.dtls: DtlsSrtp | None = None
        self.remote_fingerprint: Fingerprint | None = None
        self.created = time.monotonic()
        self.connected_at: float | None = None
        self.connected: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.srtp_failures = 0
        self.dropped_before_keys = 0
        self.ice_restarts = 0
        self._udp, rtcp_socket = leg.sockets
        self.rtcp_sender = _RtcpSender(self, rtcp_socket)
        self._client_started = False
        self._dest: Address | None = None  # the ICE-selected address
        # where valid checks came from (RFC 8445 §7.3.1.4): the browser may move its media
        # to any of these pairs (Chromium switches pairs without a new nomination)
        self._valid: set[Address] = set()
        self._valid_ice = self.ice  # the ICE generation they passed checks of
        self.path_moves = 0
        self._send = self._udp.sendto
        self._on_rtp = leg._on_rtp
        # bound once the keys exist (the per-packet path reads only these)
        self._protect: Any = None
        self._protect_rtcp: Any = None
        self._unprotect: Any = None
        self._unprotect_rtcp: Any = None
        self._early: list[tuple[bytes, Address]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    # -- the leg's socket interface ------------------------------------------------------

    def datagram_received(self, data: bytes, addr: Address) -> None:
        if not data:
            return
        try:
            first = data[0]
            if 127 < first < 192:
                unprotect = self._unprotect
                if unprotect is None:
                    self.dropped_before_keys += 1
                    return
                try:
                    if 191 < data[1] < 224:  # RTCP packet types 192..223 (RFC 5761 §4)
                        plain_rtcp = self._unprotect_rtcp(data)
                        self.leg._on_rtcp(plain_rtcp, addr)
                        return
                    plain = unprotect(data)
                except pylibsrtp.Error:
                    self.srtp_failures += 1  # forged, replayed or another key: dropped
                    return
                if addr != self._dest:
                    self._media_moved(addr)
                self._on_rtp(plain, addr)
            else:
                self._on_other(data, addr)
        except Exception:  # never let one packet kill the socket
            log.exception("leg %s: packet handling failed", self.leg.id)

    def error_received(self, exc: Exception) -> None:
        log.debug("leg %s: socket error %s", self.leg.id, exc)

    def _on_other(self, data: bytes, addr: Address) -> None:
        """STUN (ICE checks) and DTLS (RFC 7983 §7)."""
        if is_stun(data):
            response = self.ice.receive(data, addr)
            if response is not None:
                self._udp.sendto(response, addr)
                if self._valid_ice is not self.ice:
                    # the first valid check after an ICE restart: the old generation's pairs
                    # are done with (RFC 8445 §9)
                    self._valid, self._valid_ice = set(), self.ice
                if len(self._valid) < _VALID_PATHS:
                    self._valid.add(addr)
                if self.ice.selected == addr and self._dest != addr:
                    self._use_path(addr)
                    self._start_client()
        elif is_dtls(data):
            self._on_dtls(data, addr)

    def _use_path(self, addr: Address) -> None:
        self._dest = addr
        self.leg.pin_remote(addr)
        self._bind_sender()

    def _media_moved(self, addr: Address) -> None:
        """Authentic SRTP from another address than the one in use: the browser moved its
        media to another pair. Every pair that passed a check may carry media (RFC 8445
        §12.1); the node follows it there when that pair was validated by a check (never
        to an address that only sent media: SRTP alone would let a replayer steer it)."""
        if addr not in self._valid or self._dest is None:
            return
        self.path_moves += 1
        log.info("leg %s: the browser's media moved to %s:%d", self.leg.id, addr[0], addr[1])
        self.ice.selected = addr
        self._use_path(addr)

    def sendto(self, data: bytes, addr: Address | None = None) -> None:
        """Send an RTP packet of the leg (dropped until the keys exist)."""
        protect = self._protect
        if protect is None:
            self.dropped_before_keys += 1
            return
        self._send(protect(data), self._dest)

    def _bind_sender(self) -> None:
        """Once keys and a path exist, ``sendto`` becomes one closure (the leg calls it for
        every packet it sends)."""
        protect, send, dest = self._protect, self._send, self._dest
        if protect is None or dest is None:
            return

        def sendto(data: bytes, addr: Address | None = None) -> None:
            send(protect(data), dest)

        self.sendto = sendto  # type: ignore[method-assign]

    def send_rtcp(self, data: bytes) -> None:
        if self._protect_rtcp is not None:
            self._send(self._protect_rtcp(data), self._dest)

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        if not self.connected.done():
            self.connected.cancel()
        self._udp.close()

    # -- offer/answer ----------------------------------------------------------------------

    def restart_ice(self, remote: IceCredentials) -> bool:
        """Called with the ICE credentials of a new offer, before it is answered: when they
        changed, the offerer restarts ICE (RFC 8445 §9, RFC 8839 §4.4.1.1.2) and the answer
        must carry new credentials of ours too (RFC 8839 §4.4.3.1.1). Media keeps going to
        the address in use until a check of the new generation selects one (§9)."""
        current = self.ice.remote
        if current is None or (remote.ufrag == current.ufrag and remote.pwd == current.pwd):
            return False
        self.ice = IceLite(IceCredentials.generate(), remote)
        self.ice_restarts += 1
        log.info("leg %s: ICE restart %d", self.leg.id, self.ice_restarts)
        return True

    @property
    def dtls_role(self) -> Role | None:
        """Our side of the DTLS association in use (kept across re-offers, RFC 8842 §5.5)."""
        return self.dtls.role if self.dtls is not None and self.dtls.failed is None else None

    def set_remote(self, ice: IceCredentials, fingerprint: Fingerprint, role: Role) -> None:
        """The browser's ICE credentials and certificate fingerprint, and our DTLS role."""
        self.ice.set_remote(ice)
        if self.dtls is not None and fingerprint == self.remote_fingerprint:
            return  # a re-offer of the same association (hold, unhold, an ICE restart)
        # a new fingerprint is a new association (RFC 8842 §5.5): a new handshake
        self.remote_fingerprint = fingerprint
        self._client_started = False
        self.dtls = DtlsSrtp(self.certificate, role, fingerprint)
        early, self._early = self._early, []
        for data, addr in early:
            self._on_dtls(data, addr)
        self._start_client()

    # -- DTLS ----------------------------------------------------------------------------------

    def _start_client(self) -> None:
        dtls = self.dtls
        dest = self.ice.selected
        if dtls is None or dest is None or dtls.role is not Role.CLIENT or self._client_started:
            return
        self._client_started = True
        self._flush(dtls.start(), dest)

    def _on_dtls(self, data: bytes, addr: Address) -> None:
        if addr != self.ice.selected:
            return  # DTLS only on the path ICE validated
        dtls = self.dtls
        if dtls is None:
            if len(self._early) < _EARLY_DTLS:
                self._early.append((data, addr))
            return
        was = dtls.established
        self._flush(dtls.receive(data), addr)
        if dtls.failed is not None:
            self._fail(dtls.failed)
        elif dtls.established and not was:
            srtp = dtls.srtp
            assert srtp is not None
            self._protect, self._protect_rtcp = srtp.protect, srtp.protect_rtcp
            self._unprotect, self._unprotect_rtcp = srtp.unprotect, srtp.unprotect_rtcp
            self._bind_sender()
            self.connected_at = time.monotonic()
            log.info(
                "leg %s: DTLS-SRTP (%s) up with %s:%d in %.0f ms",
                self.leg.id,
                srtp.profile,
                addr[0],
                addr[1],
                (self.connected_at - self.created) * 1000,
            )
            if not self.connected.done():
                self.connected.set_result(None)

    def _flush(self, datagrams: list[bytes], addr: Address) -> None:
        for datagram in datagrams:
            self._udp.sendto(datagram, addr)
        self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        dtls = self.dtls
        if dtls is None or self._closed:
            return
        timeout = dtls.timeout()
        if timeout is not None:
            self._timer = asyncio.get_running_loop().call_later(max(timeout, 0.001), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        dtls = self.dtls
        dest = self.ice.selected
        if dtls is None or dest is None or self._closed:
            return
        self._flush(dtls.on_timeout(), dest)

    def _fail(self, reason: str) -> None:
        log.warning("leg %s: %s", self.leg.id, reason)
        if not self.connected.done():
            self.connected.set_exception(DtlsFailed(reason))
            self.connected.exception()  # retrieved: nobody may be waiting


def attach(leg: Leg, certificate: Certificate | None = None) -> WebRtcTransport:
    """Make ``leg`` a browser leg (its port then speaks only ICE, DTLS and SRTP)."""
    existing = transport_of(leg)
    if existing is not None:
        return existing
    transport = WebRtcTransport(leg, certificate or node_certificate())
    leg.use_transport(transport, transport.rtcp_sender)
    return transport


def transport_of(leg: Leg) -> WebRtcTransport | None:
    secure = leg.secure_transport
    return secure if isinstance(secure, WebRtcTransport) else None
