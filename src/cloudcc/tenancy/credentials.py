"""Credentials: password hashes, access tokens, signed API requests and secrets at rest.

- Passwords: scrypt (RFC 7914) with a per-password salt.
- Access tokens: ``base64url(payload).base64url(HMAC-SHA256(node key, payload))``; the payload
  carries tenant, user, token version (bumped to revoke) and expiry.
- API requests from PaaS callers are signed with the key's secret (see ``canonical_request``);
  a timestamp window and a memory of seen signatures stop replays.
- Secrets that must be read back (API key secrets, trunk passwords) are encrypted with a key
  derived from the node key (Fernet: AES-128-CBC + HMAC-SHA256).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken

from cloudcc.tenancy.exceptions import AuthenticationError

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, _unb64(digest))


HASH_THREADS = 2
HASH_NICENESS = 5  # below the event loop's thread (0): see _hashing_thread


def _hashing_thread() -> None:
    """A hashing thread runs at a lower priority than the event loop's thread (Linux
    schedules threads one by one): ~60 ms of scrypt for each login, and a brute force
    makes many, must not take the CPU from the loop, where every tenant's requests and the
    media wait. It only ever lowers its own priority, which needs no privilege."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_NICENESS)


_hashing: ThreadPoolExecutor | None = None


def _hash_pool() -> ThreadPoolExecutor:
    global _hashing
    if _hashing is None:
        _hashing = ThreadPoolExecutor(
            HASH_THREADS, thread_name_prefix="cc-hash", initializer=_hashing_thread
        )
    return _hashing


async def hash_password_off_loop(password: str) -> str:
    """``hash_password`` in a worker thread: scrypt takes ~60 ms of CPU, too long for the
    event loop that also moves RTP."""
    return await asyncio.get_running_loop().run_in_executor(_hash_pool(), hash_password, password)


async def verify_password_off_loop(password: str, stored: str) -> bool:
    return await asyncio.get_running_loop().run_in_executor(
        _hash_pool(), verify_password, password, stored
    )


def sip_ha1(username: str, realm: str, password: str) -> tuple[str, str]:
    """H(username:realm:password) for MD5 and SHA-256 digest (RFC 7616 §3.4.2)."""
    a1 = f"{username}:{realm}:{password}".encode()
    return hashlib.md5(a1).hexdigest(), hashlib.sha256(a1).hexdigest()


def new_access_key() -> str:
    return "AK" + secrets.token_hex(15).upper()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class TokenClaims:
    tenant_id: str
    user_id: str
    version: int
    expires_at: float


class TokenSigner:
    """Issues and verifies access tokens with the node key."""

    def __init__(self, key: bytes, ttl_seconds: int) -> None:
        self._key = hashlib.sha256(b"cloudcc-token|" + key).digest()
        self.ttl_seconds = ttl_seconds
        self._verified: dict[str, TokenClaims] = {}  # tokens whose MAC was checked already

    def issue(self, tenant_id: str, user_id: str, version: int, now: float | None = None) -> str:
        exp = (now or time.time()) + self.ttl_seconds
        payload = json.dumps(
            {"t": tenant_id, "u": user_id, "v": version, "exp": int(exp)}, separators=(",", ":")
        ).encode()
        body = _b64(payload)
        return f"{body}.{_b64(self._mac(body.encode()))}"

    def verify(self, token: str, now: float | None = None) -> TokenClaims:
        claims = self._verified.get(token)
        if claims is None:
            claims = self._check(token)
            if len(self._verified) >= 10_000:
                self._verified.clear()
            self._verified[token] = claims
        if claims.expires_at < (now or time.time()):
            raise AuthenticationError("access token expired")
        return claims

    def _check(self, token: str) -> TokenClaims:
        body, _, mac = token.partition(".")
        try:
            good = hmac.compare_digest(_unb64(mac), self._mac(body.encode()))
        except ValueError:
            good = False
        if not good:
            raise AuthenticationError("invalid access token")
        try:
            data = json.loads(_unb64(body))
            claims = TokenClaims(str(data["t"]), str(data["u"]), int(data["v"]), float(data["exp"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise AuthenticationError("invalid access token") from exc
        return claims

    def _mac(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, hashlib.sha256).digest()


# --- signed API requests ------------------------------------------------------------------

KEY_HEADER = "x-cc-key"
TIMESTAMP_HEADER = "x-cc-timestamp"
SIGNATURE_HEADER = "x-cc-signature"
NONCE_HEADER = "x-cc-nonce"

_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # Unix seconds in ASCII digits: no sign, _, . or nan
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")


def canonical_request(
    method: str, path_and_query: str, timestamp: str, body: bytes, nonce: str | None = None
) -> bytes:
    """What an API key signs: method, path with query, timestamp, SHA-256 of the body, and
    the nonce on a fifth line when the request carries one."""
    lines = [method.upper(), path_and_query, timestamp, hashlib.sha256(body).hexdigest()]
    if nonce is not None:
        lines.append(nonce)
    return "\n".join(lines).encode()


def sign_request(
    secret: str,
    method: str,
    path_and_query: str,
    timestamp: str,
    body: bytes,
    nonce: str | None = None,
) -> str:
    msg = canonical_request(method, path_and_query, timestamp, body, nonce)
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def parse_timestamp(timestamp: str) -> int:
    if not _TIMESTAMP.fullmatch(timestamp):
        raise AuthenticationError(f"{TIMESTAMP_HEADER} must be Unix seconds in decimal digits")
    return int(timestamp)


def check_nonce(nonce: str) -> None:
    if not _NONCE.fullmatch(nonce):
        raise AuthenticationError(f"{NONCE_HEADER} must be 16 to 64 letters, digits, - or _")


class ReplayGuard:
    """Remembers replay keys (nonces or signatures) seen inside the timestamp window, in this
    process (bounded memory): the fast first check before the shared one in the database."""

    def __init__(self, window_seconds: int, max_entries: int = 200_000) -> None:
        self.window = window_seconds
        self.max_entries = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()

    def check_window(self, timestamp: str, now: float) -> int:
        ts = parse_timestamp(timestamp)
        if abs(now - ts) > self.window:
            raise AuthenticationError(
                f"signature timestamp outside the {self.window} s window (clock skew or replay)"
            )
        return ts

    def check(self, timestamp: str, replay_key: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.check_window(timestamp, now)
        while self._seen:
            oldest_sig, seen_at = next(iter(self._seen.items()))
            if seen_at >= now - 2 * self.window and len(self._seen) < self.max_entries:
                break
            del self._seen[oldest_sig]
        if replay_key in self._seen:
            raise AuthenticationError("replayed request signature")
        self._seen[replay_key] = now


# --- secrets at rest ------------------------------------------------------------------------


class SecretBox:
    def __init__(self, key: bytes) -> None:
        derived = hashlib.sha256(b"cloudcc-secretbox|" + key).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))
        self._tag_key = hashlib.sha256(b"cloudcc-tag|" + key).digest()

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def tag(self, text: str, length: int = 20) -> str:
        """A stable, unguessable name for ``text`` (HMAC-SHA256 with a key of its own)."""
        return hmac.new(self._tag_key, text.encode(), hashlib.sha256).hexdigest()[:length]

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as exc:
            raise AuthenticationError(
                "stored secret cannot be decrypted with this node key"
            ) from exc


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError("bad base64") from exc
