"""HTTP digest authentication as SIP uses it (RFC 3261 §22, RFC 2617, RFC 8760).

Server side: ``NonceIssuer`` makes stateless nonces (timestamp + HMAC) that expire,
``DigestAuthenticator`` writes challenges and checks Authorization headers against a
:class:`Credential` (password or precomputed HA1), reporting stale nonces so the
client can retry without asking its user (RFC 2617 §3.2.1 ``stale=true``).
Client side: ``authorize`` answers a challenge. Algorithms: MD5, SHA-256 and their
``-sess`` variants (RFC 8760 §2.2).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .exceptions import AuthError
from .headers import quote


class Algorithm(enum.Enum):
    MD5 = "MD5"
    MD5_SESS = "MD5-sess"
    SHA256 = "SHA-256"
    SHA256_SESS = "SHA-256-sess"

    @property
    def base(self) -> Algorithm:
        if self in (Algorithm.SHA256, Algorithm.SHA256_SESS):
            return Algorithm.SHA256
        return Algorithm.MD5

    @property
    def is_session(self) -> bool:
        return self.value.endswith("-sess")

    def hash(self, text: str) -> str:
        data = text.encode("utf-8")
        if self.base is Algorithm.SHA256:
            return hashlib.sha256(data).hexdigest()
        return hashlib.md5(data, usedforsecurity=False).hexdigest()

    @classmethod
    def from_name(cls, name: str | None) -> Algorithm:
        if name is None:
            return cls.MD5  # RFC 2617 §3.2.1: absent means MD5
        for alg in cls:
            if alg.value.lower() == name.lower():
                return alg
        raise AuthError(f"unsupported digest algorithm {name!r}")


@dataclass(frozen=True)
class Credential:
    """What the app's credential lookup returns for a (realm, username).

    Give ``password``, or ``ha1`` mapping an algorithm name (``"MD5"``, ``"SHA-256"``)
    to H(username:realm:password) so passwords need not be stored. ``owner`` is
    opaque to SIP; it is handed back on calls and registrations that authenticate.
    """

    username: str
    password: str | None = None
    ha1: Mapping[str, str] = field(default_factory=dict)
    owner: object = None

    def ha1_for(self, algorithm: Algorithm, realm: str) -> str | None:
        base = algorithm.base
        stored = self.ha1.get(base.value)
        if stored is not None:
            return stored.lower()
        if self.password is None:
            return None
        return base.hash(f"{self.username}:{realm}:{self.password}")


def compute_ha1(algorithm: Algorithm, username: str, realm: str, password: str) -> str:
    return algorithm.base.hash(f"{username}:{realm}:{password}")


def compute_response(
    algorithm: Algorithm,
    ha1: str,
    nonce: str,
    method: str,
    uri: str,
    *,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
    body: bytes = b"",
) -> str:
    """request-digest of RFC 2617 §3.2.2.1 (and RFC 8760 for SHA-256)."""
    if algorithm.is_session:
        if cnonce is None:
            raise AuthError("-sess algorithms need a cnonce")
        ha1 = algorithm.hash(f"{ha1}:{nonce}:{cnonce}")
    if qop == "auth-int":
        body_hash = (
            hashlib.sha256(body).hexdigest()
            if algorithm.base is Algorithm.SHA256
            else hashlib.md5(body, usedforsecurity=False).hexdigest()
        )
        ha2 = algorithm.hash(f"{method}:{uri}:{body_hash}")
    else:
        ha2 = algorithm.hash(f"{method}:{uri}")
    if qop:
        if nc is None or cnonce is None:
            raise AuthError("qop requires nc and cnonce")
        return algorithm.hash(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return algorithm.hash(f"{ha1}:{nonce}:{ha2}")


# --------------------------------------------------------------- header values


_DIGEST_PARAM = re.compile(r'([A-Za-z0-9_\-]+)[ \t]*=[ \t]*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))')
_DIGEST_SHAPE = re.compile(
    r'[ \t]*[A-Za-z0-9_\-]+[ \t]*=[ \t]*(?:"(?:[^"\\]|\\.)*"|[^\s,"]*)[ \t]*'
    r'(?:,[ \t]*[A-Za-z0-9_\-]+[ \t]*=[ \t]*(?:"(?:[^"\\]|\\.)*"|[^\s,"]*)[ \t]*)*\Z'
)
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)


def parse_digest_params(value: str) -> dict[str, str]:
    """``Digest k=v, k="v", ...`` into a dict with lower-case keys and unquoted values."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise AuthError(f"not a Digest header: scheme {scheme[:20]!r}")
    rest = rest.strip()
    if not rest or _DIGEST_SHAPE.match(rest) is None:
        raise AuthError(f"bad digest parameters {rest[:40]!r}")
    params: dict[str, str] = {}
    for name, quoted, token in _DIGEST_PARAM.findall(rest):
        if quoted and "\\" in quoted:
            quoted = _QUOTED_PAIR.sub(r"\1", quoted)
        params[name.lower()] = quoted if quoted or not token else token
    return params


@dataclass
class DigestChallenge:
    """A WWW-Authenticate / Proxy-Authenticate value (RFC 2617 §3.2.1)."""

    realm: str
    nonce: str
    algorithm: Algorithm = Algorithm.MD5
    qop: tuple[str, ...] = ("auth",)
    opaque: str | None = None
    stale: bool = False

    def header_value(self) -> str:
        parts = [f"Digest realm={quote(self.realm)}", f"nonce={quote(self.nonce)}"]
        if self.opaque is not None:
            parts.append(f"opaque={quote(self.opaque)}")
        parts.append(f"algorithm={self.algorithm.value}")
        if self.qop:
            parts.append(f'qop="{",".join(self.qop)}"')
        if self.stale:
            parts.append("stale=TRUE")
        return ", ".join(parts)


def parse_challenge(value: str) -> DigestChallenge:
    p = parse_digest_params(value)
    if "realm" not in p or "nonce" not in p:
        raise AuthError("challenge without realm or nonce")
    qop = tuple(q.strip() for q in p["qop"].split(",") if q.strip()) if "qop" in p else ()
    return DigestChallenge(
        realm=p["realm"],
        nonce=p["nonce"],
        algorithm=Algorithm.from_name(p.get("algorithm")),
        qop=qop,
        opaque=p.get("opaque"),
        stale=p.get("stale", "").lower() == "true",
    )


@dataclass
class DigestResponse:
    """An Authorization / Proxy-Authorization value (RFC 2617 §3.2.2)."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: Algorithm = Algorithm.MD5
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None
    opaque: str | None = None

    def header_value(self) -> str:
        parts = [
            f"Digest username={quote(self.username)}",
            f"realm={quote(self.realm)}",
            f"nonce={quote(self.nonce)}",
            f"uri={quote(self.uri)}",
            f"response={quote(self.response)}",
            f"algorithm={self.algorithm.value}",
        ]
        if self.qop:
            parts += [f"qop={self.qop}", f"nc={self.nc}", f"cnonce={quote(self.cnonce or '')}"]
        if self.opaque is not None:
            parts.append(f"opaque={quote(self.opaque)}")
        return ", ".join(parts)


def parse_authorization(value: str) -> DigestResponse:
    p = parse_digest_params(value)
    missing = [k for k in ("username", "realm", "nonce", "uri", "response") if k not in p]
    if missing:
        raise AuthError(f"Authorization without {', '.join(missing)}")
    qop = p.get("qop")
    if qop and ("nc" not in p or "cnonce" not in p):
        raise AuthError("qop without nc or cnonce")
    return DigestResponse(
        username=p["username"],
        realm=p["realm"],
        nonce=p["nonce"],
        uri=p["uri"],
        response=p["response"].lower(),
        algorithm=Algorithm.from_name(p.get("algorithm")),
        qop=qop,
        nc=p.get("nc"),
        cnonce=p.get("cnonce"),
        opaque=p.get("opaque"),
    )


# ------------------------------------------------------------------ server side


class NonceStatus(enum.Enum):
    VALID = "valid"
    STALE = "stale"
    INVALID = "invalid"


class NonceIssuer:
    """Stateless nonces: ``<window start hex>.<HMAC(secret, window start)>``.

    Every challenge within one ``window`` (seconds) carries the same nonce, so a
    challenge sent again for a retransmitted request is byte for byte the same one
    (what a stateless UAS needs, RFC 3261 §8.2.7); the client's cnonce still makes
    each response unique. A nonce is valid for ``lifetime`` seconds after its window.
    """

    def __init__(
        self, lifetime: float = 300.0, secret: bytes | None = None, window: float = 30.0
    ) -> None:
        self.lifetime = lifetime
        self.window = window
        self._secret = secret if secret is not None else os.urandom(32)
        self._last: tuple[int, str] = (-1, "")

    def issue(self, now: float) -> str:
        start = int(now // self.window * self.window * 1000)
        if self._last[0] != start:
            stamp = f"{start:x}"
            self._last = (start, f"{stamp}.{self._mac(stamp)}")
        return self._last[1]

    def check(self, nonce: str, now: float) -> NonceStatus:
        stamp, dot, mac = nonce.partition(".")
        if not dot or not stamp or len(stamp) > 16:
            return NonceStatus.INVALID
        if not hmac.compare_digest(mac, self._mac(stamp)):
            return NonceStatus.INVALID
        try:
            issued = int(stamp, 16) / 1000
        except ValueError:
            return NonceStatus.INVALID
        if issued > now + 1:
            return NonceStatus.INVALID
        expired = now - issued > self.lifetime + self.window
        return NonceStatus.STALE if expired else NonceStatus.VALID

    def _mac(self, stamp: str) -> str:
        return hmac.new(self._secret, stamp.encode(), hashlib.sha256).hexdigest()[:24]


class Verdict(enum.Enum):
    OK = "ok"
    STALE = "stale"  # right password, expired nonce: challenge again with stale=true
    FAILED = "failed"


class DigestAuthenticator:
    """Challenges and verification for one endpoint; algorithms offered in order."""

    def __init__(
        self,
        algorithms: Sequence[Algorithm] = (Algorithm.SHA256, Algorithm.MD5),
        nonce_lifetime: float = 300.0,
        secret: bytes | None = None,
        nonce_window: float = 30.0,
    ) -> None:
        if not algorithms:
            raise ValueError("at least one digest algorithm is needed")
        self.algorithms = tuple(algorithms)
        self.nonces = NonceIssuer(nonce_lifetime, secret, nonce_window)

    def challenges(self, realm: str, now: float, *, stale: bool = False) -> list[str]:
        """Header values, one per algorithm, preferred first (RFC 8760 §2.4)."""
        nonce = self.nonces.issue(now)
        return [
            DigestChallenge(realm, nonce, alg, ("auth",), stale=stale).header_value()
            for alg in self.algorithms
        ]

    def verify(
        self,
        auth: DigestResponse,
        method: str,
        credential: Credential,
        now: float,
        *,
        body: bytes = b"",
    ) -> Verdict:
        if auth.algorithm.base not in {a.base for a in self.algorithms}:
            return Verdict.FAILED
        status = self.nonces.check(auth.nonce, now)
        if status is NonceStatus.INVALID:
            return Verdict.FAILED
        if auth.qop not in (None, "auth", "auth-int"):
            return Verdict.FAILED
        ha1 = credential.ha1_for(auth.algorithm, auth.realm)
        if ha1 is None:
            return Verdict.FAILED
        expected = compute_response(
            auth.algorithm,
            ha1,
            auth.nonce,
            method,
            auth.uri,
            qop=auth.qop,
            nc=auth.nc,
            cnonce=auth.cnonce,
            body=body,
        )
        if not hmac.compare_digest(expected, auth.response):
            return Verdict.FAILED
        return Verdict.STALE if status is NonceStatus.STALE else Verdict.OK


# ------------------------------------------------------------------ client side


def authorize(
    challenge: DigestChallenge,
    method: str,
    uri: str,
    username: str,
    password: str,
    *,
    nc: int = 1,
    cnonce: str | None = None,
    body: bytes = b"",
) -> DigestResponse:
    """Answer a challenge (RFC 2617 §3.2.2), using qop=auth when offered."""
    qop = next((q for q in ("auth", "auth-int") if q in challenge.qop), None)
    needs_cnonce = qop is not None or challenge.algorithm.is_session
    cnonce_value = cnonce or (secrets.token_hex(8) if needs_cnonce else None)
    nc_text = f"{nc:08x}" if qop else None
    ha1 = compute_ha1(challenge.algorithm, username, challenge.realm, password)
    response = compute_response(
        challenge.algorithm,
        ha1,
        challenge.nonce,
        method,
        uri,
        qop=qop,
        nc=nc_text,
        cnonce=cnonce_value,
        body=body,
    )
    return DigestResponse(
        username=username,
        realm=challenge.realm,
        nonce=challenge.nonce,
        uri=uri,
        response=response,
        algorithm=challenge.algorithm,
        qop=qop,
        nc=nc_text,
        cnonce=cnonce_value,
        opaque=challenge.opaque,
    )


def pick_challenge(values: Sequence[str]) -> DigestChallenge:
    """The first challenge with an algorithm we support (RFC 8760 §2.4)."""
    errors = []
    for value in values:
        try:
            return parse_challenge(value)
        except AuthError as exc:
            errors.append(str(exc))
    raise AuthError("no usable digest challenge: " + "; ".join(errors))
