"""The edge runner of webhook nodes: signed JSON over HTTP(S) with httpx, answered as WebhookResult.

Every request is ``POST``/``PUT`` of ``application/json`` with these headers:

- ``X-CloudCC-Timestamp``: UNIX seconds when the request was signed;
- ``X-CloudCC-Signature``: ``v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>`` when the
  node names a secret (the same scheme as Stripe/Slack, so receivers know it);
- ``X-CloudCC-Request-Id``: the id the session correlates the answer with;
- ``X-CloudCC-Tenant``: the tenant id.

The receiver recomputes the HMAC over the raw body (``verify_signature`` does it) and rejects
timestamps older than a few minutes to stop replays. A 2xx answer with a JSON object (or an
empty body) is a success and the object becomes the node's result variable; a non-2xx status,
a non-JSON body or a transport failure is an error; no complete answer within the node's
timeout is a timeout. Redirects are not followed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping

import httpx

from cloudcc.ivr.actions import WebhookOutcome, WebhookRequest, WebhookResult
from cloudcc.ivr.exceptions import UnknownWebhookSecretError, WebhookSignatureError
from cloudcc.ivr.expressions import Value

TIMESTAMP_HEADER = "X-CloudCC-Timestamp"
SIGNATURE_HEADER = "X-CloudCC-Signature"
REQUEST_ID_HEADER = "X-CloudCC-Request-Id"
TENANT_HEADER = "X-CloudCC-Tenant"
SIGNATURE_VERSION = "v1"
MAX_RESPONSE_BYTES = 256 * 1024
DEFAULT_TOLERANCE = 300.0

SecretLookup = Callable[[str, str | None], bytes | None]  # (tenant, secret name or None) -> key


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def verify_signature(
    secret: bytes,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE,
) -> None:
    """Receiver side: raise WebhookSignatureError unless ``body`` was signed with ``secret``."""
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ts = lowered.get(TIMESTAMP_HEADER.lower())
    given = lowered.get(SIGNATURE_HEADER.lower())
    if raw_ts is None or given is None:
        raise WebhookSignatureError("missing timestamp or signature header")
    try:
        timestamp = int(raw_ts)
    except ValueError:
        raise WebhookSignatureError(f"timestamp {raw_ts!r} is not an integer") from None
    if abs(now - timestamp) > tolerance:
        raise WebhookSignatureError(f"timestamp is {abs(now - timestamp):.0f} s away from now")
    expected = sign(secret, timestamp, body)
    candidates = [part.strip() for part in given.split(",")]  # several during key rotation
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise WebhookSignatureError("signature does not match the body")


def encode_body(body: Mapping[str, Value]) -> bytes:
    """The exact bytes sent (and signed): compact UTF-8 JSON."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


class WebhookRunner:
    """Performs CallWebhook actions. One runner (and one httpx client) per node process."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        secrets: SecretLookup,
        *,
        clock: Callable[[], float] = time.time,
        user_agent: str = "cloudcc-webhook/1",
    ) -> None:
        self.client = client
        self.secrets = secrets
        self.clock = clock
        self.user_agent = user_agent

    def secret_for(self, request: WebhookRequest) -> bytes | None:
        """The signing key the node names; without a name, the tenant's default key (the
        lookup answers ``(tenant, None)``), so the enterprise can always check the sender."""
        key = self.secrets(request.tenant_id, request.secret)
        if key is None and request.secret is None:
            return None
        if key is None:
            raise UnknownWebhookSecretError(
                f"tenant {request.tenant_id!r} has no webhook secret {request.secret!r}"
            )
        return key

    def build(self, request: WebhookRequest) -> tuple[bytes, dict[str, str]]:
        """The body bytes and headers of ``request`` (signed when it names a secret)."""
        body = encode_body(request.body)
        timestamp = int(self.clock())
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": self.user_agent,
            TIMESTAMP_HEADER: str(timestamp),
            REQUEST_ID_HEADER: request.request_id,
            TENANT_HEADER: request.tenant_id,
        }
        secret = self.secret_for(request)
        if secret is not None:
            headers[SIGNATURE_HEADER] = sign(secret, timestamp, body)
        return body, headers

    async def run(self, request: WebhookRequest) -> WebhookResult:
        """Send the request; every outcome (even a bad configuration) becomes a WebhookResult."""
        rid = request.request_id
        try:
            body, headers = self.build(request)
        except UnknownWebhookSecretError as exc:
            return WebhookResult(rid, WebhookOutcome.ERROR, error=str(exc))
        try:
            async with asyncio.timeout(request.timeout):
                status, payload = await self._exchange(request, body, headers)
        except (TimeoutError, httpx.TimeoutException):
            return WebhookResult(
                rid, WebhookOutcome.TIMEOUT, error=f"no answer within {request.timeout:g} s"
            )
        except httpx.HTTPError as exc:
            return WebhookResult(rid, WebhookOutcome.ERROR, error=f"{type(exc).__name__}: {exc}")
        except _TooLarge:
            return WebhookResult(
                rid, WebhookOutcome.ERROR, error=f"answer larger than {MAX_RESPONSE_BYTES} bytes"
            )
        if not 200 <= status < 300:
            return WebhookResult(rid, WebhookOutcome.ERROR, status, error=f"HTTP status {status}")
        if not payload.strip():
            return WebhookResult(rid, WebhookOutcome.SUCCESS, status, {})
        try:
            data = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return WebhookResult(rid, WebhookOutcome.ERROR, status, error="answer is not JSON")
        if not isinstance(data, dict):
            return WebhookResult(
                rid, WebhookOutcome.ERROR, status, error="answer is not a JSON object"
            )
        return WebhookResult(rid, WebhookOutcome.SUCCESS, status, data)

    async def _exchange(
        self, request: WebhookRequest, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        timeout = httpx.Timeout(request.timeout)
        async with self.client.stream(
            request.method, request.url, content=body, headers=headers, timeout=timeout
        ) as response:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise _TooLarge
                chunks.append(chunk)
            return response.status_code, b"".join(chunks)


class _TooLarge(Exception):
    """Internal: the answer exceeded MAX_RESPONSE_BYTES."""
