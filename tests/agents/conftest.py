"""An in-process node with SIP and the API (ASGI client), for agent-session tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.helpers import demo_admin, login
from tests.conftest import free_port, make_settings


@dataclass
class Desk:
    node: Any
    client: httpx.AsyncClient
    admin: dict[str, str]

    @property
    def voice(self) -> Any:
        return self.node.voice_node.voice

    @property
    def tenant_id(self) -> str:
        return str(self.node.demo["tenant_id"])

    @property
    def sip_port(self) -> int:
        return int(self.node.voice_node.sip_port)

    def agent(self, index: int) -> dict[str, Any]:
        """Demo agent ``index`` (0: 1001, 1: 1002) as the demo credentials list it."""
        return dict(self.node.demo["agents"][index])

    async def agent_headers(self, index: int) -> tuple[dict[str, str], str]:
        a = self.agent(index)
        r = await self.client.post(
            "/api/v1/auth/login",
            json={"tenant": "demo", "username": a["web_username"], "password": a["web_password"]},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        return {"Authorization": f"Bearer {body['access_token']}"}, body["agent_id"]

    async def call(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        return await self.client.request(
            method, "/api/v1" + path, headers=headers or self.admin, **kw
        )


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    from cloudcc.app import Node

    settings = make_settings(tmp_path, sip={"port": free_port("both")})
    settings.ai.asr_enabled = False
    node = Node(settings)
    await node.prepare()
    await node.start_voice()
    transport = httpx.ASGITransport(app=node.app, client=("203.0.113.7", 40000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://cc.test") as client:
            yield Desk(node, client, await demo_admin(client, node))
    finally:
        await node.close()


__all__ = ["Desk", "login"]
