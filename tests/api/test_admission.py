"""Admission: no tenant, principal or anonymous address can take the node's slots."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from cloudcc.app import Node
from tests.api.helpers import demo_admin, new_tenant, signed
from tests.conftest import make_settings


@pytest.fixture
async def tight(tmp_path):
    """A node with small caps and short deadlines."""
    settings = make_settings(tmp_path)
    lim = settings.limits
    lim.waiting_per_principal = 3
    lim.waiting_per_tenant = 5
    lim.anonymous_per_source = 2
    lim.anonymous_timeout = 0.5
    lim.body_timeout = 1.0
    lim.tenant_max_in_flight = 4
    n = Node(settings)
    await n.prepare()
    try:
        yield n
    finally:
        await n.close()


def _scope(method: str, path: str, headers: list[tuple[bytes, bytes]], client: str, query=b""):
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"cc.test"), *headers],
        "client": (client, 5000),
        "server": ("cc.test", 80),
    }


class _Peer:
    """A raw ASGI client: feeds ``chunks`` (None: wait forever), then disconnects on demand."""

    def __init__(self, chunks: list[bytes | None]) -> None:
        self.chunks = list(chunks)
        self.received = 0
        self.gone = asyncio.Event()
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        self.received += 1
        if self.chunks:
            chunk = self.chunks.pop(0)
            if chunk is None:
                await self.gone.wait()
                return {"type": "http.disconnect"}
            return {"type": "http.request", "body": chunk, "more_body": bool(self.chunks)}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int | None:
        return next((m["status"] for m in self.sent if m["type"] == "http.response.start"), None)


def _admission(node: Node) -> Any:
    if node.app.middleware_stack is None:
        node.app.middleware_stack = node.app.build_middleware_stack()
    layer: Any = node.app.middleware_stack
    while not hasattr(layer, "counts"):
        layer = layer.app
    return layer


async def _until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def _bearer(node: Node, client: httpx.AsyncClient) -> bytes:
    return (await demo_admin(client, node))["Authorization"].encode()


async def test_long_polls_are_capped_per_principal_and_tenant_and_health_stays_up(tight):
    transport = httpx.ASGITransport(app=tight.app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://cc.test") as c:
        admin = await demo_admin(c, tight)
        polls = [
            asyncio.create_task(c.get("/api/v1/events?wait=20", headers=admin)) for _ in range(3)
        ]
        await _until(lambda: _admission(tight).counts().get("waiting") == 3)
        r = await c.get("/api/v1/events?wait=20", headers=admin)
        assert r.status_code == 429 and "long-poll" in r.json()["detail"]
        # Ordinary requests of the same principal, another tenant and /healthz are served.
        assert (await c.get("/api/v1/queues", headers=admin)).status_code == 200
        other = await new_tenant(c, tight, "other")
        assert (await c.get("/api/v1/events?wait=0", headers=other)).status_code == 200
        assert (await c.get("/healthz")).status_code == 200
        for t in polls:
            t.cancel()
        await asyncio.gather(*polls, return_exceptions=True)


async def test_a_long_poll_is_freed_when_its_client_disconnects(tight):
    transport = httpx.ASGITransport(app=tight.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cc.test") as c:
        bearer = await _bearer(tight, c)
    peers = [_Peer([]) for _ in range(3)]
    calls = [
        asyncio.create_task(
            tight.app(
                _scope("GET", "/api/v1/events", [(b"authorization", bearer)], "198.51.100.1",
                       b"wait=30"),
                p.receive,
                p.send,
            )
        )
        for p in peers
    ]  # fmt: skip
    await _until(lambda: _admission(tight).counts().get("waiting") == 3)
    assert not any(c.done() for c in calls)
    started = time.monotonic()
    for p in peers:
        p.gone.set()
    await asyncio.wait_for(asyncio.gather(*calls), 5)
    assert time.monotonic() - started < 2  # not the 30 s of the wait
    # The slots are free again: three more long-polls are admitted.
    again = _Peer([])
    call = asyncio.create_task(
        tight.app(
            _scope("GET", "/api/v1/events", [(b"authorization", bearer)], "198.51.100.1",
                   b"wait=30"),
            again.receive,
            again.send,
        )
    )  # fmt: skip
    await _until(lambda: _admission(tight).counts().get("waiting") == 1)
    assert again.status is None  # waiting, not refused
    again.gone.set()
    await asyncio.wait_for(call, 5)


async def test_an_unknown_key_is_refused_before_its_body_is_read(tight):
    peer = _Peer([b"x" * 1_000_000] * 19)
    headers = [
        (b"x-cc-key", b"AKNOSUCHKEY000000000000000000"),
        (b"x-cc-timestamp", str(int(time.time())).encode()),
        (b"x-cc-signature", b"0" * 64),
        (b"content-length", str(19_000_000).encode()),
    ]
    await tight.app(
        _scope("PUT", "/api/v1/prompts/big", headers, "198.51.100.2"), peer.receive, peer.send
    )
    assert peer.status == 401
    assert peer.received == 0  # not one byte of the body was read


async def test_a_chunked_body_over_the_limit_is_refused_while_it_streams(tight):
    transport = httpx.ASGITransport(app=tight.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cc.test") as c:
        bearer = await _bearer(tight, c)
    peer = _Peer([b"x" * 262_144] * 40)  # 10 MB, no Content-Length
    headers = [(b"authorization", bearer), (b"transfer-encoding", b"chunked")]
    await tight.app(
        _scope("POST", "/api/v1/queues", headers, "198.51.100.3"), peer.receive, peer.send
    )
    assert peer.status == 413
    assert peer.received <= 5  # stopped just past 1 MB


async def test_slow_anonymous_bodies_time_out_and_are_capped_per_source(tight):
    headers = [(b"content-type", b"application/json"), (b"content-length", b"100")]
    slow = [_Peer([b"{", None]) for _ in range(2)]
    calls = [
        asyncio.create_task(
            tight.app(
                _scope("POST", "/api/v1/auth/login", headers, "198.51.100.4"), p.receive, p.send
            )
        )
        for p in slow
    ]
    await _until(lambda: _admission(tight).counts().get("anonymous") == 2)
    third = _Peer([b"{", None])
    await tight.app(
        _scope("POST", "/api/v1/auth/login", headers, "198.51.100.4"), third.receive, third.send
    )
    assert third.status == 429  # this address has its anonymous requests open
    elsewhere = _Peer([b'{"tenant": "demo", "username": "x", "password": "y"}'])
    length = str(len(elsewhere.chunks[0])).encode()
    await tight.app(
        _scope("POST", "/api/v1/auth/login",
               [(b"content-type", b"application/json"), (b"content-length", length)], "198.51.100.5"),
        elsewhere.receive,
        elsewhere.send,
    )  # fmt: skip
    assert elsewhere.status == 401
    await asyncio.wait_for(asyncio.gather(*calls), 3)  # the 0.5 s body deadline
    assert [p.status for p in slow] == [408, 408]


async def test_a_tenant_at_its_in_flight_cap_does_not_stop_another(tight):
    gate = asyncio.Event()

    @tight.app.get("/api/v1/_slow", include_in_schema=False)
    async def slow() -> dict[str, bool]:
        await gate.wait()
        return {"ok": True}

    transport = httpx.ASGITransport(app=tight.app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://cc.test") as c:
        admin = await demo_admin(c, tight)
        other = await new_tenant(c, tight, "calm")
        busy = [asyncio.create_task(c.get("/api/v1/_slow", headers=admin)) for _ in range(4)]
        await _until(lambda: _admission(tight).counts().get("in_flight") == 4)
        r = await c.get("/api/v1/queues", headers=admin)
        assert r.status_code == 429 and "in progress" in r.json()["detail"]
        assert (await c.get("/api/v1/queues", headers=other)).status_code == 200
        gate.set()
        assert [(await t).status_code for t in busy] == [200] * 4


async def test_a_throttled_key_does_not_spend_its_tenants_requests(tmp_path):
    settings = make_settings(tmp_path)
    settings.limits.tenant_rps = 2
    settings.limits.tenant_burst = 10
    node = Node(settings)
    await node.prepare()
    try:
        transport = httpx.ASGITransport(app=node.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            admin = await demo_admin(c, node)
            slow = (
                await c.post(
                    "/api/v1/api-keys", json={"name": "slow", "rate_limit_rps": 0.1}, headers=admin
                )
            ).json()
            good = (await c.post("/api/v1/api-keys", json={"name": "good"}, headers=admin)).json()
            codes = []
            for i in range(30):
                path = f"/api/v1/queues?limit={i + 1}"
                headers, _ = signed(slow["access_key"], slow["secret"], "GET", path)
                codes.append((await c.get(path, headers=headers)).status_code)
            assert codes.count(429) >= 28
            # Requests with a bad signature are not charged to the tenant either.
            for i in range(20):
                path = f"/api/v1/queues?offset={i}"
                headers, _ = signed(good["access_key"], "wrong-secret", "GET", path)
                assert (await c.get(path, headers=headers)).status_code == 401
            for i in range(5):
                path = f"/api/v1/agents?limit={i + 1}"
                headers, _ = signed(good["access_key"], good["secret"], "GET", path)
                r = await c.get(path, headers=headers)
                assert r.status_code == 200, (i, r.text)
    finally:
        await node.close()


async def test_a_bad_token_is_refused_from_the_headers_but_login_ignores_it(client, node):
    r = await client.get("/api/v1/queues", headers={"Authorization": "Bearer nonsense"})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["type"] == "urn:cloudcc:unauthenticated"
    d = node.demo
    r = await client.post(
        "/api/v1/auth/login",
        json={
            "tenant": "demo",
            "username": d["admin"]["username"],
            "password": d["admin"]["password"],
        },
        headers={"Authorization": "Bearer stale-token"},
    )
    assert r.status_code == 200, r.text
