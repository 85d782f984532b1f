"""Admission: who may hold the node's request slots, for how long, with how big a body.

A raw ASGI guard in front of the API (microseconds, not a task per request), in this order:

1. ``/healthz`` and ``/readyz`` pass untouched: no tenant's work ever stands in front of them.
2. The caller is authenticated from the headers alone (a bearer token, or an API key looked
   up by its access key) before one byte of the body is read: an unknown key is a 401 at
   once, not after a 19 MB upload. The per-key bucket is charged here; the tenant's bucket
   once the request is known good: here for a bearer token (verified from the headers), so
   that a tenant over its rate is refused before any routing or dependency work; in
   ``security.authenticate`` for a signed request (its signature covers the body).
3. Slots are counted per tenant, per principal and per source, not only per node:
   - ordinary requests: ``tenant_max_in_flight`` per tenant, ``max_in_flight`` per node;
   - long-polls (``GET /events?wait=...``): their own pool, ``waiting_per_principal`` and
     ``waiting_per_tenant``, freed as soon as the client goes away;
   - requests without credentials (login, docs): ``anonymous_per_source`` per address and
     ``max_anonymous`` per node, with a small body limit and a short body deadline;
   - bodies above ``max_body_bytes`` (prompt uploads): ``uploads_per_tenant`` at a time.
4. The body is read here, to its limit and within its deadline (slowloris), and handed to
   the app in one piece: a body over the limit is a 413 while it streams, a body too slow a
   408, and a client that leaves mid-body costs nothing more (no response, no log).

Refusals are RFC 9457 problems: 401, 408, 413, 429 (``Retry-After``) or 503 (node full).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloudcc.errors import AuthenticationError
from cloudcc.tenancy.credentials import KEY_HEADER
from cloudcc.tenancy.model import Principal, PrincipalKind

if TYPE_CHECKING:
    from cloudcc.api.context import ApiContext

UNGUARDED = frozenset({"/healthz", "/readyz"})
ANONYMOUS = frozenset({"/api/v1/auth/login"})
_CHALLENGE = [(b"www-authenticate", b'Bearer realm="cloudcc"')]
LONG_POLL_PATHS = frozenset({"/api/v1/events"})
PRINCIPAL_STATE = "cc.principal"  # scope["state"] key: the principal admitted from headers
TENANT_CHARGED = "cc.tenant_charged"  # scope["state"] key: the tenant's bucket was charged


class _Refused(Exception):
    def __init__(
        self, status: int, title: str, detail: str, retry: float | None = None, close: bool = False
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.retry, self.close = (
            status,
            title,
            detail,
            retry,
            close,
        )


class _Gone(Exception):
    """The client disconnected while sending its body."""


@dataclass(slots=True)
class _Slots:
    """The counters one request holds, released together."""

    held: list[tuple[Counter[str], str]]

    def release(self) -> None:
        for counter, key in self.held:
            counter[key] -= 1
            if counter[key] <= 0:
                del counter[key]


async def send_problem(
    send: Send,
    status: int,
    title: str,
    detail: str,
    retry: float | None = None,
    close: bool = False,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    kind = _TYPES.get(status, "about:blank")
    body = json.dumps({"type": kind, "title": title, "status": status, "detail": detail})
    headers = [(b"content-type", b"application/problem+json"), *(extra or [])]
    if retry is not None:
        headers.append((b"retry-after", str(max(1, math.ceil(retry))).encode()))
    if close:
        # The body was not read: end the connection rather than read and drop it.
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body.encode()})


_TYPES = {401: "urn:cloudcc:unauthenticated", 429: "urn:cloudcc:rate_limited"}


class Admission:
    def __init__(self, app: ASGIApp, ctx: ApiContext, larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.ctx = ctx
        self.limits = ctx.settings.limits
        self.larger = larger or {}
        self._node: Counter[str] = Counter()  # "in_flight", "waiting", "anonymous"
        self._tenant: Counter[str] = Counter()
        self._waiting_tenant: Counter[str] = Counter()
        self._waiting_principal: Counter[str] = Counter()
        self._source: Counter[str] = Counter()
        self._uploads: Counter[str] = Counter()
        self.refused: Counter[int] = Counter()  # by status, for metrics and tests

    def counts(self) -> dict[str, int]:
        return dict(self._node)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNGUARDED:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        has_body = False
        try:
            length = _content_length(headers)
            has_body = bool(length) or "transfer-encoding" in headers
            # Logging in is anonymous work even when a stale token rides along.
            principal = None if scope["path"] in ANONYMOUS else await self._principal(headers)
            long_poll = _is_long_poll(scope)
            limit = self._body_limit(scope, principal)
            if length is not None and length > limit:
                raise _Refused(
                    413,
                    "Content Too Large",
                    f"request bodies are limited to {limit} bytes",
                    close=True,
                )
            slots = self._admit(scope, principal, long_poll, limit, has_body)
            charged = False
            if principal is not None and principal.kind is not PrincipalKind.API_KEY:
                wait = self.ctx.tenant_limiter.check(
                    principal.tenant_id,
                    time.monotonic(),
                    principal.tenant_rps or self.limits.tenant_rps,
                )
                if wait:
                    slots.release()
                    raise _Refused(
                        429, "Too Many Requests", "the tenant's request rate limit is reached", wait
                    )
                charged = True
        except _Refused as refused:
            self.refused[refused.status] += 1
            await send_problem(
                send,
                refused.status,
                refused.title,
                refused.detail,
                refused.retry,
                close=refused.close or has_body,
                extra=_CHALLENGE if refused.status == 401 else None,
            )
            return
        try:
            state = scope.setdefault("state", {})
            state[PRINCIPAL_STATE] = principal
            state[TENANT_CHARGED] = charged
            if has_body:
                timeout = self.limits.body_timeout if principal else self.limits.anonymous_timeout
                try:
                    body = await self._read_body(receive, limit, timeout)
                except _Gone:
                    return
                except _Refused as refused:
                    self.refused[refused.status] += 1
                    await send_problem(
                        send, refused.status, refused.title, refused.detail, close=True
                    )
                    return
                receive = _replay(body, receive)
            if long_poll:
                await self._watched(scope, receive, send)
            else:
                await self.app(scope, receive, send)
        finally:
            slots.release()

    # --- who -------------------------------------------------------------------------------

    async def _principal(self, headers: Headers) -> Principal | None:
        """The caller from the headers only; None without credentials (anonymous)."""
        auth = self.ctx.auth
        try:
            authorization = headers.get("authorization")
            if authorization:
                scheme, _, token = authorization.partition(" ")
                if scheme.lower() != "bearer" or not token.strip():
                    raise AuthenticationError("use 'Authorization: Bearer <token>'")
                return await auth.from_token(token.strip())
            access_key = headers.get(KEY_HEADER)
            if access_key is None:
                return None
            principal = await auth.from_access_key(access_key)
        except AuthenticationError as exc:
            raise _Refused(401, "Unauthorized", exc.detail) from None
        # The key's own bucket first: a throttled key never spends its tenant's requests.
        if principal.kind is PrincipalKind.API_KEY and principal.id:
            wait = self.ctx.key_limiter.check(
                principal.id, time.monotonic(), principal.rate_limit_rps or self.limits.api_key_rps
            )
            if wait:
                raise _Refused(
                    429, "Too Many Requests", "this API key's request rate limit is reached", wait
                )
        return principal

    # --- slots -----------------------------------------------------------------------------

    def _admit(
        self,
        scope: Scope,
        principal: Principal | None,
        long_poll: bool,
        body_limit: int,
        has_body: bool,
    ) -> _Slots:
        lim = self.limits
        held: list[tuple[Counter[str], str]] = []
        if principal is None:
            source = scope["client"][0] if scope.get("client") else "-"
            _take(
                held,
                self._source,
                source,
                lim.anonymous_per_source,
                429,
                "this address has too many requests without credentials open",
            )
            _take(
                held,
                self._node,
                "anonymous",
                lim.max_anonymous,
                503,
                "the node is at its limit of requests without credentials",
            )
            _take(
                held,
                self._node,
                "in_flight",
                lim.max_in_flight,
                503,
                "the node is at its request limit",
            )
            return _Slots(held)
        tenant = principal.tenant_id
        if long_poll:
            _take(
                held,
                self._waiting_principal,
                f"{tenant}/{principal.id}",
                lim.waiting_per_principal,
                429,
                "you have too many long-polls open; close one or use the WebSocket stream",
            )
            _take(
                held,
                self._waiting_tenant,
                tenant,
                lim.waiting_per_tenant,
                429,
                "the tenant has too many long-polls open",
            )
            _take(
                held,
                self._node,
                "waiting",
                lim.max_waiting,
                503,
                "the node is at its long-poll limit",
            )
            return _Slots(held)
        _take(
            held,
            self._tenant,
            tenant,
            lim.tenant_max_in_flight,
            429,
            "the tenant has too many requests in progress",
        )
        if has_body and body_limit > lim.max_body_bytes:
            _take(
                held,
                self._uploads,
                tenant,
                lim.uploads_per_tenant,
                429,
                "the tenant has too many large uploads in progress",
            )
        _take(
            held,
            self._node,
            "in_flight",
            lim.max_in_flight,
            503,
            "the node is at its request limit",
        )
        return _Slots(held)

    def _body_limit(self, scope: Scope, principal: Principal | None) -> int:
        if principal is None:
            return self.limits.anonymous_body_bytes
        path = scope["path"]
        return next(
            (n for prefix, n in self.larger.items() if path.startswith(prefix)),
            self.limits.max_body_bytes,
        )

    # --- body --------------------------------------------------------------------------------

    async def _read_body(self, receive: Receive, limit: int, deadline: float) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(deadline):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _Gone
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        raise _Refused(
                            413, "Content Too Large", f"request bodies are limited to {limit} bytes"
                        )
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            raise _Refused(
                408, "Request Timeout", f"the request body did not arrive within {deadline:g} s"
            ) from None

    async def _watched(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run a long-poll, cancelling it the moment its client disconnects (its slot with it)."""
        gone = asyncio.Event()

        async def app_receive() -> Message:
            await gone.wait()  # the body (none) was read; only the watcher reads the server
            return {"type": "http.disconnect"}

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        task = asyncio.ensure_future(self.app(scope, app_receive, send))
        watcher = asyncio.ensure_future(watch())
        try:
            await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():
                task.cancel()
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _take(
    held: list[tuple[Counter[str], str]],
    counter: Counter[str],
    key: str,
    cap: int,
    status: int,
    detail: str,
) -> None:
    if counter[key] >= cap:
        _Slots(held).release()  # give back what this request already took
        raise _Refused(
            status,
            "Too Many Requests" if status == 429 else "Service Unavailable",
            detail,
            retry=1.0,
        )
    counter[key] += 1
    held.append((counter, key))


def _content_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    if value is None:
        return None
    if not value.isdigit():
        raise _Refused(400, "Bad Request", "bad Content-Length", close=True)
    return int(value)


def _is_long_poll(scope: Scope) -> bool:
    if scope["method"] != "GET" or scope["path"] not in LONG_POLL_PATHS:
        return False
    wait = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("wait", ["0"])[-1]
    try:
        return float(wait) > 0
    except ValueError:
        return False  # the endpoint answers 422


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, as one message; then what the server says (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
