"""Registering with someone else's registrar (RFC 3261 §10.2): a trunk to a carrier.

``SipEndpoint.register`` returns a :class:`Registration` that keeps one AOR bound to
our contact: it answers the digest challenge, refreshes before the binding expires
(re-using the last challenge, RFC 2617 §3.2.3 nonce-count), follows 423 Min-Expires,
retries after failures and unregisters on ``stop``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from typing import TYPE_CHECKING

from .auth import Credential, DigestChallenge, authorize, pick_challenge
from .exceptions import AuthError, CallFailed, ParseError
from .headers import NameAddress, parse_int
from .message import Request, Response, new_call_id, new_tag
from .uri import SipUri, parse_sip_uri

if TYPE_CHECKING:
    from .endpoint import SipEndpoint

log = logging.getLogger("cloudcc.sip.registration")


class RegistrationState(enum.Enum):
    REGISTERING = "registering"
    REGISTERED = "registered"
    FAILED = "failed"  # retrying after ``retry_after``
    STOPPED = "stopped"


class Registration:
    """One AOR kept registered at a remote registrar."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        registrar: SipUri,
        aor: SipUri,
        credentials: Credential | None,
        expires: int,
        retry_after: float = 30.0,
        *,
        contact_user: str | None = None,
    ) -> None:
        self._endpoint = endpoint
        self.registrar = registrar
        self.aor = aor
        self.credentials = credentials
        self.requested_expires = expires
        self.retry_after = retry_after
        self.contact_user = contact_user or aor.user
        self.state = RegistrationState.REGISTERING
        self.expires_at: float | None = None
        self.last_status: int | None = None
        self.last_error: str | None = None  # why the last attempt failed (kept until a 200)
        self.registered_count = 0  # 200s received (the first registration and each refresh)
        self.remote: tuple[str, int] | None = None  # the registrar's address, once resolved
        self._call_id = new_call_id(endpoint.host)  # one Call-ID per boot (§10.2.4)
        self._tag = new_tag()
        self._cseq = 0
        self._challenge: tuple[DigestChallenge, str] | None = None  # (challenge, header name)
        self._nc = 0
        self._task: asyncio.Task[None] | None = None
        self._registered = asyncio.Event()

    @property
    def registered(self) -> bool:
        return self.state is RegistrationState.REGISTERED

    async def wait_registered(self) -> None:
        await self._registered.wait()

    def start(self) -> None:
        self._task = self._endpoint._spawn(self._run())

    async def stop(self) -> None:
        """Stop refreshing and remove our binding (Expires: 0)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.state is RegistrationState.REGISTERED:
            with contextlib.suppress(CallFailed, AuthError):
                await self._register(0)
        self.state = RegistrationState.STOPPED
        self._registered.clear()

    async def _run(self) -> None:
        while True:
            try:
                granted = await self._register(self.requested_expires)
            except (CallFailed, AuthError) as exc:
                self.state = RegistrationState.FAILED
                self.last_error = str(exc)
                self._registered.clear()
                log.warning("registration of %s failed: %s", self.aor, exc)
                await asyncio.sleep(self.retry_after)
                continue
            self.state = RegistrationState.REGISTERED
            self.last_error = None
            self.registered_count += 1
            self._registered.set()
            self.expires_at = self._endpoint.now() + granted
            # refresh ahead of expiry (§10.2.4): at most 80 % of the interval
            await asyncio.sleep(max(1.0, min(granted * 0.8, granted - 5)))

    async def _register(self, expires: int) -> int:
        """One REGISTER exchange, with digest and 423 handling; returns granted seconds."""
        target = await self._endpoint._resolve(str(self.registrar))
        self.remote = target.address
        contact = self._endpoint._contact_value(target.kind, self.contact_user)
        for _ in range(4):
            sent_credentials = self._challenge is not None
            request = self._request(contact, expires)
            response = await self._endpoint._transact(request, target)
            self.last_status = response.status
            if response.status in (401, 407) and self.credentials is not None:
                if sent_credentials and not _is_stale(response):
                    raise CallFailed(response.status, "credentials refused")
                self._learn(response)
                continue
            if response.status == 423:  # §10.2.8: raise to Min-Expires
                values = response.headers.get("min-expires")
                if not values:
                    raise CallFailed(423, "no Min-Expires")
                expires = self.requested_expires = parse_int(values[0], "Min-Expires")
                continue
            if response.status >= 300:
                raise CallFailed(response.status, response.reason)
            return _granted(response, contact, expires) if expires else 0
        raise CallFailed(self.last_status or 500, "registration did not converge")

    def _request(self, contact: str, expires: int) -> Request:
        self._cseq += 1
        aor = NameAddress(self.aor)
        h: dict[str, list[str]] = {
            "max-forwards": ["70"],
            "from": [f"{aor};tag={self._tag}"],
            "to": [str(aor)],
            "call-id": [self._call_id],
            "cseq": [f"{self._cseq} REGISTER"],
            "contact": [contact],
            "expires": [str(expires)],
        }
        request = Request("REGISTER", str(self.registrar), h)
        if self._challenge is not None and self.credentials is not None:
            challenge, name = self._challenge
            self._nc += 1  # re-use the challenge with the next nonce-count (RFC 2617 §3.2.3)
            if self.credentials.password is None:
                raise AuthError("registration needs a password")
            answer = authorize(
                challenge,
                "REGISTER",
                request.uri_text,
                self.credentials.username,
                self.credentials.password,
                nc=self._nc,
            )
            request.set(name, answer.header_value())
        return request

    def _learn(self, response: Response) -> None:
        proxy = response.status == 407
        values = response.headers.get("proxy-authenticate" if proxy else "www-authenticate", [])
        challenge = pick_challenge(values)
        self._challenge = (challenge, "Proxy-Authorization" if proxy else "Authorization")
        self._nc = 0


def _is_stale(response: Response) -> bool:
    values = response.headers.get("www-authenticate", []) + response.headers.get(
        "proxy-authenticate", []
    )
    return any("stale=true" in v.lower().replace(" ", "") for v in values)


def _granted(response: Response, contact: str, asked: int) -> int:
    """The expiry the registrar gave our contact (§10.2.4), else Expires, else ours."""
    try:
        ours = parse_sip_uri(contact.strip("<>"))
        for address in response.contacts:
            uri = address.uri
            if isinstance(uri, SipUri) and uri == ours and address.params.get("expires"):
                return parse_int(address.params["expires"] or "", "expires")
        if response.headers.get("expires"):
            return parse_int(response.headers["expires"][0], "Expires")
    except ParseError:
        pass
    return asked
