"""Liveness and readiness of a node, answered in front of every other guard of the HTTP app.

``/healthz`` (liveness): the process and its loop answer; a supervisor restarts a node that
stops answering it. ``/readyz`` (readiness): the node can serve now: started and not draining,
the database answers, the recordings storage takes a write with room left, and the SIP listener
is bound; a load balancer (or Kamailio's dispatcher) sends work only to a ready node. Both are
answered by ``HealthEndpoints``, the outermost ASGI layer, so that an API flood, the in-flight
cap or the rate limits never make a healthy node look dead.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from cloudcc import __version__
from cloudcc.storage import MIN_FREE_BYTES, check_storage

#: Readiness asks the database at most this often (a probe flood does not become a DB flood).
CHECK_INTERVAL = 1.0
DB_TIMEOUT = 2.0


@dataclass
class Readiness:
    """What readiness is made of; each check returns None when fine, else what is wrong."""

    started: Callable[[], bool]
    draining: Callable[[], bool] = lambda: False
    database: Callable[[], Awaitable[None]] | None = None
    storage: Path | None = None  # where recordings are written (cloudcc.storage probes it)
    min_free_bytes: int = MIN_FREE_BYTES
    sip_bound: Callable[[], bool | None] = lambda: None  # None: SIP is not configured
    _cache: tuple[float, dict[str, str | None]] | None = field(default=None, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    async def check(self) -> dict[str, str | None]:
        """Each check's problem (None: fine); the slow ones are reused for a second."""
        now = time.monotonic()
        if self._cache is None or now - self._cache[0] > CHECK_INTERVAL:
            async with self._lock:
                if self._cache is None or time.monotonic() - self._cache[0] > CHECK_INTERVAL:
                    self._cache = (time.monotonic(), await self._slow_checks())
        checks: dict[str, str | None] = {
            "started": None if self.started() else "the node is starting",
        }
        if self.draining():
            checks["started"] = "the node is draining (shutting down)"
        checks.update(self._cache[1])
        bound = self.sip_bound()
        if bound is not None:
            checks["sip"] = None if bound else "the SIP listener is not bound"
        return checks

    async def _slow_checks(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        if self.database is not None:
            try:
                await asyncio.wait_for(self.database(), DB_TIMEOUT)
                out["database"] = None
            except Exception as exc:
                out["database"] = f"the database does not answer: {type(exc).__name__}"
        if self.storage is not None:
            status = await asyncio.to_thread(check_storage, self.storage, self.min_free_bytes)
            out["storage"] = None if status.ok else f"{status.path}: {status.reason}"
        return out


class HealthEndpoints:
    """Answers ``/healthz`` and ``/readyz`` itself; everything else goes on to ``app``."""

    def __init__(self, app: ASGIApp, readiness: Readiness) -> None:
        self.app = app
        self.readiness = readiness

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path") if scope["type"] == "http" else None
        if path == "/healthz":
            await _json(send, 200, {"status": "ok", "version": __version__})
        elif path == "/readyz":
            checks = await self.readiness.check()
            problems = {name: why for name, why in checks.items() if why}
            body: dict[str, Any] = {"ready": not problems, "checks": checks}
            await _json(send, 503 if problems else 200, body, retry="5" if problems else None)
        else:
            await self.app(scope, receive, send)


async def _json(send: Send, status: int, body: dict[str, Any], retry: str | None = None) -> None:
    headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
    if retry:
        headers.append((b"retry-after", retry.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})
