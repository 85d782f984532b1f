"""DTLS-SRTP (RFC 5764) keyed by a DTLS handshake whose certificates are bound to the SDP
by their fingerprints (RFC 5763 §5, RFC 8122). Sans-I/O over pyOpenSSL memory BIOs: feed
datagrams in with ``receive``, send what ``pending`` returns, call ``on_timeout`` when
``timeout`` elapses (handshake retransmission, RFC 6347 §4.2.4); once ``established``,
``srtp`` protects and unprotects RTP and RTCP (libsrtp through pylibsrtp).
"""

from __future__ import annotations

import datetime
import enum
import os
from dataclasses import dataclass
from functools import cached_property

import pylibsrtp
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from OpenSSL import SSL

from cloudcc.media.srtp import processor

from .exceptions import DtlsFailed

_DIGESTS = {"sha-256": hashes.SHA256(), "sha-384": hashes.SHA384(), "sha-512": hashes.SHA512()}


def is_dtls(data: bytes) -> bool:
    """RFC 7983 §7: a first byte of 20..63 is DTLS."""
    return bool(data) and 19 < data[0] < 64


def fingerprint_of(cert: x509.Certificate, algorithm: str = "sha-256") -> str:
    digest = cert.fingerprint(_DIGESTS[algorithm]).hex().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


class Certificate:
    """The node's DTLS identity: an ECDSA P-256 key with a self-signed certificate (browsers
    check only its fingerprint, which the SDP carries over the TLS-protected signalling)."""

    def __init__(self, days: int = 30) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, os.urandom(8).hex())])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=days))
            .sign(self.key, hashes.SHA256())
        )
        self.fingerprint = fingerprint_of(self.cert)

    @cached_property
    def context(self) -> SSL.Context:
        ctx = SSL.Context(SSL.DTLS_METHOD)
        # the peer's certificate is self-signed: it is checked against the SDP fingerprint
        ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, lambda *_: True)
        ctx.use_certificate(self.cert)
        ctx.use_privatekey(self.key)
        ctx.set_tlsext_use_srtp(b":".join(p.openssl for p in PROFILES))
        return ctx


_certificate: Certificate | None = None


def node_certificate() -> Certificate:
    """One certificate per node process, made on first use."""
    global _certificate
    if _certificate is None:
        _certificate = Certificate()
    return _certificate


class Role(enum.Enum):
    SERVER = "server"  # a=setup:passive on our side
    CLIENT = "client"  # a=setup:active on our side


@dataclass(frozen=True, slots=True)
class Fingerprint:
    algorithm: str
    value: str

    @classmethod
    def parse(cls, attribute: str) -> Fingerprint:
        algorithm, _, value = attribute.strip().partition(" ")
        return cls(algorithm.lower(), value.strip().upper())


@dataclass(frozen=True, slots=True)
class _Profile:
    openssl: bytes
    libsrtp: int
    key: int
    salt: int


# Server preference order (OpenSSL picks the server's most preferred one the client
# offers): AES-GCM (RFC 7714) costs less CPU per packet than AES-CM + HMAC-SHA1.
_PROFILES = (
    _Profile(b"SRTP_AEAD_AES_128_GCM", pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM, 16, 12),
    _Profile(b"SRTP_AES128_CM_SHA1_80", pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 16, 14),
)


def _available(profile: _Profile) -> bool:
    try:  # GCM exists only when libsrtp was built with a crypto library
        pylibsrtp.Policy(srtp_profile=profile.libsrtp)
    except pylibsrtp.Error:
        return False
    return True


PROFILES = tuple(p for p in _PROFILES if _available(p))


class Srtp:
    """The two SRTP sessions keyed from the handshake (RFC 5764 §4.2)."""

    def __init__(self, material: bytes, role: Role, profile: _Profile) -> None:
        k, s = profile.key, profile.salt
        client = material[:k] + material[2 * k : 2 * k + s]
        server = material[k : 2 * k] + material[2 * k + s : 2 * k + 2 * s]
        tx, rx = (server, client) if role is Role.SERVER else (client, server)
        self.profile = profile.openssl.decode()
        rx_policy = pylibsrtp.Policy(
            key=rx, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=profile.libsrtp
        )
        rx_policy.window_size = 1024
        tx_policy = pylibsrtp.Policy(
            key=tx, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile.libsrtp
        )
        tx_policy.allow_repeat_tx = True
        tx_policy.window_size = 1024
        from pylibsrtp._binding import lib

        rx_session, tx_session = pylibsrtp.Session(rx_policy), pylibsrtp.Session(tx_policy)
        self.protect = processor(tx_session, lib.srtp_protect)
        self.protect_rtcp = processor(tx_session, lib.srtp_protect_rtcp)
        self.unprotect = processor(rx_session, lib.srtp_unprotect)
        self.unprotect_rtcp = processor(rx_session, lib.srtp_unprotect_rtcp)


class DtlsSrtp:
    """One DTLS association over the ICE-selected path, ending in SRTP keys."""

    def __init__(self, certificate: Certificate, role: Role, remote: Fingerprint) -> None:
        if remote.algorithm not in _DIGESTS:
            raise DtlsFailed(f"unsupported fingerprint algorithm {remote.algorithm}")
        self.role = role
        self.remote = remote
        self.srtp: Srtp | None = None
        self.failed: str | None = None
        self._ssl = SSL.Connection(certificate.context, None)
        if role is Role.SERVER:
            self._ssl.set_accept_state()
        else:
            self._ssl.set_connect_state()

    @property
    def established(self) -> bool:
        return self.srtp is not None

    def start(self) -> list[bytes]:
        """The client's first flight (nothing for the server, which waits)."""
        if self.role is Role.CLIENT:
            self._handshake()
        return self.pending()

    def receive(self, data: bytes) -> list[bytes]:
        """A DTLS datagram from the peer; returns the datagrams to send back."""
        if self.failed is not None:
            return []
        self._ssl.bio_write(data)
        if self.srtp is None:
            self._handshake()
        else:
            try:
                self._ssl.recv(1500)  # alerts (close_notify) or a retransmitted Finished
            except SSL.ZeroReturnError:
                self.failed = "closed by the peer"
            except SSL.Error:
                pass
        return self.pending()

    def timeout(self) -> float | None:
        """Seconds until a handshake retransmission is due (None once established)."""
        if self.srtp is not None or self.failed is not None:
            return None
        value = self._ssl.DTLSv1_get_timeout()
        return None if value is None else float(value)

    def on_timeout(self) -> list[bytes]:
        if self.srtp is None and self.failed is None:
            self._ssl.DTLSv1_handle_timeout()
        return self.pending()

    def pending(self) -> list[bytes]:
        out = []
        while True:
            try:
                data = self._ssl.bio_read(65536)
            except SSL.Error:
                break
            if not data:
                break
            out.append(data)
        return out

    def _handshake(self) -> None:
        try:
            self._ssl.do_handshake()
        except SSL.WantReadError:
            return
        except SSL.Error as exc:
            self.failed = f"handshake: {exc}"
            return
        cert = self._ssl.get_peer_certificate(as_cryptography=True)
        if cert is None:
            self.failed = "the peer sent no certificate"
            return
        if fingerprint_of(cert, self.remote.algorithm) != self.remote.value:
            self.failed = "the peer's certificate does not match the SDP fingerprint"
            return
        selected = self._ssl.get_selected_srtp_profile()
        profile = next((p for p in PROFILES if p.openssl == selected), None)
        if profile is None:
            self.failed = "no SRTP protection profile agreed"
            return
        material = self._ssl.export_keying_material(
            b"EXTRACTOR-dtls_srtp", 2 * (profile.key + profile.salt)
        )
        self.srtp = Srtp(material, self.role, profile)
