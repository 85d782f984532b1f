"""Fixtures of the event-surface tests: a node with the events service, served by a real
uvicorn on a free 127.0.0.1 port, and a real HTTP receiver for webhooks."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from cloudcc.config import Settings
from cloudcc.events import EventsService, RetryPolicy, install
from cloudcc.store.tables import Base


@contextlib.asynccontextmanager
async def serve(app: Any, **config: Any) -> AsyncIterator[int]:
    """Run ``app`` with uvicorn in this loop on a free port; yield the port."""
    options: dict[str, Any] = {
        "lifespan": "off",
        "log_level": "warning",
        "access_log": False,
        "timeout_graceful_shutdown": 3,
        **config,
    }
    server = uvicorn.Server(uvicorn.Config(app, **options))
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    with socket.create_server(("127.0.0.1", 0)) as sock:
        sock.setblocking(False)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            while not server.started:
                if task.done():
                    await task
                await asyncio.sleep(0.01)
            yield int(sock.getsockname()[1])
        finally:
            server.should_exit = True
            await task


@dataclass
class EventsNode:
    node: Any
    service: EventsService
    client: httpx.AsyncClient  # in-process (ASGI) client for REST calls
    port: int

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/events/ws"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def bus(self) -> Any:
        return self.node.bus

    @property
    def demo_tenant(self) -> str:
        return str(self.node.demo["tenant_id"])


@pytest.fixture
async def events_node(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EventsNode]:
    """A node with the event surface, listening on 127.0.0.1 (webhooks to 127/8 allowed).

    On SQLite; on PostgreSQL too where a test parametrizes ``database_url`` (indirect).
    """
    from cloudcc.api import events as api_events
    from cloudcc.app import Node
    from cloudcc.demo import ensure_demo

    database_url = None
    if "database_url" in request.fixturenames:
        database_url = request.getfixturevalue("database_url")
    node = Node(
        Settings(
            data_dir=tmp_path / "data", database_url=database_url, secret_key="test-secret-key"
        )
    )
    # Until the node wires the service and its routes itself (then this reuses them).
    service = node.ctx.extra.get("events")
    if service is None:
        service = install(node.ctx)
        api_events.install(node.app)
    service.policy.allowed += (ip_network("127.0.0.0/8"), ip_network("::1/128"))
    service.dispatcher.retry = RetryPolicy(max_attempts=4, base=0.2, cap=1.0, jitter=0.5)
    service.dispatcher.timeout = 2.0
    service.heartbeat_seconds = 0.5
    # The schema from the models (the events tables included) rather than the migrations,
    # which are regenerated separately and checked against the models by tests/store.
    for path in (node.settings.data_dir, node.settings.recordings_dir, node.settings.logs_dir):
        Path(path).mkdir(parents=True, exist_ok=True)
    async with node.db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    node.demo = await ensure_demo(node.ctx, node.settings)
    await service.start()
    transport = httpx.ASGITransport(app=node.app, client=("203.0.113.7", 40000))
    try:
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://cc.test") as client,
            serve(node.app, ws_ping_interval=0.5, ws_ping_timeout=0.5) as port,
        ):
            yield EventsNode(node, service, client, port)
    finally:
        await service.stop()
        await node.close()


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """A webhook receiver over real HTTP; ``respond`` decides each answer's status."""

    requests: list[Received] = field(default_factory=list)
    respond: Callable[[Received], Awaitable[int]] | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        got = Received(
            {k.decode().lower(): v.decode() for k, v in scope["headers"]}, body, time.monotonic()
        )
        self.requests.append(got)
        status = 200 if self.respond is None else await self.respond(got)
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            assert time.monotonic() < deadline, f"{len(self.requests)} of {count} requests came"
            await asyncio.sleep(0.02)
        return self.requests


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    async with serve(r) as port:
        r.port = port
        yield r


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
