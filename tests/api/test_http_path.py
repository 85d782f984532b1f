"""The HTTP path's fast lanes choose what the slow ones chose.

- ``api.dispatch.RouteIndex``: every operation of the API, and paths no route has, reach the
  same endpoint with the same answer through the index as through FastAPI's full router.
- A tenant over its rate is refused by admission (a bearer token's bucket), before routing.
- Password hashing runs in threads below the event loop's priority.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from typing import Any

import pytest

from cloudcc.api import dispatch
from cloudcc.tenancy import credentials
from tests.api.helpers import demo_admin, new_tenant
from tests.api.test_admission import _scope


async def _call(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]]) -> Any:
    raw, _, query = path.partition("?")
    scope = _scope(method, raw, headers, "203.0.113.9", query.encode())
    sent: list[dict[str, Any]] = []
    answered = asyncio.Event()
    read = False

    async def receive() -> dict[str, Any]:
        nonlocal read
        if not read:
            read = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await answered.wait()  # then the client goes away, as a real one does
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            answered.set()

    await asyncio.wait_for(app(scope, receive, send), 20)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    allow = dict(start.get("headers", [])).get(b"allow")
    return scope.get("endpoint"), start["status"], body, allow


def _requests(app: Any) -> list[tuple[str, str]]:
    """Every operation of the API with its parameters filled in, and paths next to them that
    no route has (a trailing slash, a wrong method, an unknown resource, a deeper path)."""
    out: list[tuple[str, str]] = []
    for template, operations in app.openapi()["paths"].items():
        path = re.sub(r"\{[^}]+\}", "x1", template)
        for method in operations:
            out.append((method.upper(), path))
        out += [("GET", path + "/"), ("PUT", path), ("GET", path + "/nothing/here")]
    out += [
        ("GET", "/api/v1/no-such-thing"),
        ("GET", "/api/v1"),
        ("GET", "/api/docs"),
        ("GET", "/api/openapi.json"),
        ("GET", "/api/docs/assets/swagger-ui.css"),
        ("GET", "/api/v1/agents?limit=x"),
    ]
    return out


async def test_the_index_chooses_the_endpoint_and_answer_of_the_full_router(node, client):
    app = node.app
    admin = (await demo_admin(client, node))["Authorization"].encode()
    router = app.router
    index = router.middleware_stack
    assert isinstance(index, dispatch.RouteIndex)
    requests = _requests(app)
    assert len(requests) > 150
    indexed = 0
    for method, path in requests:
        if method in ("POST", "PUT", "PATCH", "DELETE") and "{" not in path:
            headers: list[tuple[bytes, bytes]] = []  # anonymous: no writes happen
        else:
            headers = [(b"authorization", admin)]
        fast = await _call(app, method, path, headers)
        router.middleware_stack = index.full
        try:
            slow = await _call(app, method, path, headers)
        finally:
            router.middleware_stack = index
        assert fast == slow, (method, path, fast[1:], slow[1:])
        candidates = dispatch.candidates(index, path.partition("?")[0])
        if candidates is not None:
            indexed += 1
            assert len(candidates) <= 2, (path, candidates)
    assert indexed > 100  # the API's paths go through the index, not around it


async def test_routes_added_after_the_first_request_are_indexed(node, client):
    from fastapi import APIRouter

    admin = await demo_admin(client, node)
    assert (await client.get("/api/v1/queues", headers=admin)).status_code == 200
    extra = APIRouter()

    @extra.get("/added-later")
    async def added_later() -> dict[str, str]:
        return {"ok": "yes"}

    node.app.include_router(extra, prefix="/api/v1")
    r = await client.get("/api/v1/added-later")
    assert r.status_code == 200 and r.json() == {"ok": "yes"}


async def test_a_tenant_over_its_rate_is_refused_before_routing(node, client):
    calm = await demo_admin(client, node)
    noisy = await new_tenant(client, node, "noisy")
    node.ctx.tenant_limiter.default_rate = node.ctx.tenant_limiter.default_burst = 1.0
    node.settings.limits.tenant_rps = 1.0
    statuses = [(await client.get("/api/v1/queues", headers=noisy)).status_code for _ in range(5)]
    assert statuses.count(429) >= 3, statuses
    r = await client.get("/api/v1/queues", headers=noisy)
    assert r.status_code == 429
    assert r.json()["type"] == "urn:cloudcc:rate_limited"
    assert int(r.headers["retry-after"]) >= 1
    # Refused in admission: the refusal counter of the guard says so.
    layer: Any = node.app.middleware_stack
    while not hasattr(layer, "refused"):
        layer = layer.app
    assert layer.refused[429] >= 4
    # The other tenant has its own bucket; each of its requests is charged once, not twice.
    node.ctx.tenant_limiter.default_rate = node.ctx.tenant_limiter.default_burst = 4.0
    node.settings.limits.tenant_rps = 4.0
    calm_ok = [(await client.get("/api/v1/queues", headers=calm)).status_code for _ in range(4)]
    assert calm_ok == [200] * 4


async def test_password_hashing_runs_below_the_event_loops_priority():
    loop_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def nice_here() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    pool = credentials._hash_pool()
    nice = await asyncio.get_running_loop().run_in_executor(pool, nice_here)
    assert nice == min(19, loop_nice + credentials.HASH_NICENESS) or nice > loop_nice
    assert credentials.verify_password("pw-1", await credentials.hash_password_off_loop("pw-1"))
    assert not await credentials.verify_password_off_loop("pw-2", credentials.hash_password("pw-1"))


@pytest.mark.parametrize("path", ["/api/v1/agents", "/api/v1/agents/a1/login", "/api/docs"])
def test_keys_of_paths(path: str) -> None:
    key = dispatch._key(path)
    assert key == (tuple(path.split("/")[:4]) if path.count("/") >= 3 else None)
