"""Liveness and readiness (cloudcc.health) and the API when the database is down: /healthz
answers whatever the API's caps say, /readyz tells what is wrong, and the API answers 503
with Retry-After (not 500) while the database does not answer."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx
import pytest

from cloudcc.app import Node
from tests.conftest import make_settings


class TcpProxy:
    """A TCP relay to the database that can be cut (the database host going away)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self, port: int = 0) -> int:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", port)
        return int(self.server.sockets[0].getsockname()[1])

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        self.writers.clear()
        await self.server.wait_closed()


async def _client(node: Node) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=node.app), base_url="http://t")


async def test_readiness_says_what_is_wrong_and_liveness_stays_up(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings.sip.enabled = False
    node = Node(settings)
    await node.prepare()
    try:
        async with await _client(node) as c:
            r = await c.get("/readyz")
            assert r.status_code == 503 and r.headers["retry-after"]
            assert r.json()["checks"]["started"] == "the node is starting"
            node.ready = True
            r = await c.get("/readyz")
            assert r.status_code == 200, r.text
            assert r.json()["checks"] == {"started": None, "database": None, "storage": None}
            node.readiness.min_free_bytes = 1 << 60  # the disk is "full"
            await asyncio.sleep(1.1)  # the slow checks are reused for a second
            r = await c.get("/readyz")
            assert r.status_code == 503 and "free" in r.json()["checks"]["storage"]
            node.draining = True
            assert "draining" in (await c.get("/readyz")).json()["checks"]["started"]
            assert (await c.get("/healthz")).status_code == 200
    finally:
        await node.close()


async def test_with_the_database_down_the_api_answers_503_and_readiness_fails(
    tmp_path: Path, pg_database: str
) -> None:
    proxy = TcpProxy(("127.0.0.1", 5432))
    port = await proxy.start()
    url = pg_database.replace("127.0.0.1:5432", f"127.0.0.1:{port}")
    if url == pg_database:
        pytest.skip("the test database is not on 127.0.0.1:5432")
    settings = make_settings(tmp_path, url)
    settings.sip.enabled = False
    node = Node(settings)
    await node.prepare()
    try:
        node.ready = True
        async with await _client(node) as c:
            creds = node.demo
            assert creds is not None
            login = await c.post(
                "/api/v1/auth/login",
                json={
                    "tenant": "demo",
                    "username": "admin",
                    "password": creds["admin"]["password"],
                },
            )
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            assert (await c.get("/api/v1/queues", headers=headers)).status_code == 200
            await proxy.cut()
            await node.db.engine.dispose()  # pooled connections went with the host
            r = await c.get("/api/v1/contacts", headers=headers)
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == "5"
            assert r.json()["type"] == "urn:cloudcc:database_unavailable"
            await asyncio.sleep(1.1)
            r = await c.get("/readyz")
            assert r.status_code == 503 and r.json()["checks"]["database"]
            assert (await c.get("/healthz")).status_code == 200
    finally:
        await node.close()
