"""A live node with SIP and media for end-to-end voice tests, and an API client for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LiveNode


class Api:
    """The node's API as the demo tenant's admin."""

    def __init__(self, node: LiveNode) -> None:
        self.node = node
        self.base = node.base + "/api/v1"
        creds = node.demo
        token = httpx.post(
            self.base + "/auth/login",
            json={"tenant": "demo", "username": "admin", "password": creds["admin"]["password"]},
        ).json()["access_token"]
        self.headers = {"Authorization": f"Bearer {token}"}
        self.agents = {a["extension"]: a for a in self.get("/agents")["items"]}
        self.passwords = {a["extension"]: a["sip_password"] for a in creds["agents"]}

    def get(self, path: str, **kw: Any) -> Any:
        r = httpx.get(self.base + path, headers=self.headers, timeout=30, **kw)
        assert r.status_code == 200, (path, r.status_code, r.text)
        return r.json()

    def post(self, path: str, body: Any = None, expect: int | tuple[int, ...] = (200, 201)) -> Any:
        r = httpx.post(self.base + path, json=body or {}, headers=self.headers, timeout=60)
        codes = (expect,) if isinstance(expect, int) else expect
        assert r.status_code in codes, (path, r.status_code, r.text)
        return r.json() if r.content else None

    def patch(self, path: str, body: Any) -> Any:
        r = httpx.patch(self.base + path, json=body, headers=self.headers, timeout=30)
        assert r.status_code == 200, (path, r.status_code, r.text)
        return r.json()

    def operator(self) -> dict[str, str]:
        """The platform operator's headers."""
        creds = self.node.demo["platform"]
        token = httpx.post(
            self.base + "/auth/login",
            json={"tenant": "platform", "username": "root", "password": creds["password"]},
        ).json()["access_token"]
        return {"Authorization": f"Bearer {token}"}

    def provision(self, number: str) -> Any:
        """The platform operator provisions ``number`` to the demo tenant."""
        r = httpx.post(
            self.base + "/number-pool",
            json={"number": number, "tenant_id": self.node.demo["tenant_id"]},
            headers=self.operator(),
        )
        assert r.status_code == 201, r.text
        return r.json()

    def delete(self, path: str) -> None:
        r = httpx.delete(self.base + path, headers=self.headers, timeout=30)
        assert r.status_code == 204, (path, r.status_code, r.text)

    def trunk(self, name: str) -> dict[str, Any]:
        items = self.get(f"/trunks?name={name}")["items"]
        assert items, f"no trunk {name}"
        return items[0]  # type: ignore[no-any-return]

    def login(self, extension: str, device: str | None = None, ready: bool = True) -> Any:
        agent = self.agents[extension]
        return self.post(f"/agents/{agent['id']}/login", {"device": device, "ready": ready})

    def live(self) -> list[dict[str, Any]]:
        return self.get("/contacts/live")  # type: ignore[no-any-return]

    def contacts(self) -> list[dict[str, Any]]:
        return self.get("/contacts?limit=100")["items"]  # type: ignore[no-any-return]

    def queue_id(self, name: str) -> str:
        return self.get(f"/queues?name={name}")["items"][0]["id"]  # type: ignore[no-any-return]


@pytest.fixture
def voice_node(tmp_path: Path) -> Iterator[LiveNode]:
    node = LiveNode(tmp_path / "data")
    try:
        node.wait_ready()
        yield node
    finally:
        node.stop()


@pytest.fixture
def api(voice_node: LiveNode) -> Api:
    return Api(voice_node)
