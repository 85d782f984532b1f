"""Helpers for API tests: logging in, creating tenants, signing requests."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from cloudcc.tenancy.credentials import sign_request


async def login(
    client: httpx.AsyncClient, tenant: str, username: str, password: str
) -> dict[str, str]:
    r = await client.post(
        "/api/v1/auth/login", json={"tenant": tenant, "username": username, "password": password}
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def demo_admin(client: httpx.AsyncClient, node: Any) -> dict[str, str]:
    d = node.demo
    return await login(client, "demo", d["admin"]["username"], d["admin"]["password"])


async def platform(client: httpx.AsyncClient, node: Any) -> dict[str, str]:
    p = node.demo["platform"]
    return await login(client, p["tenant"], p["username"], p["password"])


async def new_tenant(
    client: httpx.AsyncClient, node: Any, slug: str, password: str = "tenant-pass-1"
) -> dict[str, str]:
    """Create a tenant as the platform operator; return its admin's headers."""
    r = await client.post(
        "/api/v1/tenants",
        json={"slug": slug, "name": slug.title(), "admin_password": password},
        headers=await platform(client, node),
    )
    assert r.status_code == 201, r.text
    return await login(client, slug, "admin", password)


async def provision(
    client: httpx.AsyncClient, node: Any, number: str, tenant: dict[str, str]
) -> dict[str, Any]:
    """The platform operator provisions ``number`` to the tenant whose admin is ``tenant``."""
    tenant_id = (await client.get("/api/v1/tenant", headers=tenant)).json()["id"]
    r = await client.post(
        "/api/v1/number-pool",
        json={"number": number, "tenant_id": tenant_id},
        headers=await platform(client, node),
    )
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


def signed(
    access_key: str,
    secret: str,
    method: str,
    path: str,
    body: Any = None,
    timestamp: float | None = None,
) -> tuple[dict[str, str], bytes]:
    raw = b"" if body is None else json.dumps(body).encode()
    ts = str(int(timestamp if timestamp is not None else time.time()))
    sig = sign_request(secret, method, path, ts, raw)
    headers = {"X-CC-Key": access_key, "X-CC-Timestamp": ts, "X-CC-Signature": sig}
    if body is not None:
        headers["Content-Type"] = "application/json"
    return headers, raw
