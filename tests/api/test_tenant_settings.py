"""Tenant and sign-in settings set through the API change what the node does: who signs in
where, a suspended tenant or disabled agent, the tenant's own rate limit, its recording
retention."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from cloudcc.bus import LocalBus
from cloudcc.contacts.retention import purge
from cloudcc.store.tables import RecordingRecord
from tests.api.helpers import demo_admin, login, new_tenant, platform


async def _sign_in(client: httpx.AsyncClient, tenant: str, username: str, password: str) -> int:
    body = {"tenant": tenant, "username": username, "password": password}
    return (await client.post("/api/v1/auth/login", json=body)).status_code


async def _tenant_id(client: httpx.AsyncClient, node: Any, slug: str) -> str:
    listed = await client.get("/api/v1/tenants?limit=100", headers=await platform(client, node))
    return str(next(t["id"] for t in listed.json()["items"] if t["slug"] == slug))


async def test_a_new_tenant_signs_in_by_its_slug_with_its_admin_username(client, node):
    r = await client.post(
        "/api/v1/tenants",
        json={"slug": "acme", "name": "Acme", "admin_username": "boss", "admin_password": "boss-pass-1"},
        headers=await platform(client, node),
    )  # fmt: skip
    assert r.status_code == 201, r.text
    boss = await login(client, "acme", "boss", "boss-pass-1")
    assert (await client.get("/api/v1/tenant", headers=boss)).json()["slug"] == "acme"
    # The default name is not the admin's, the slug is the tenant, the password is the one set.
    assert await _sign_in(client, "acme", "admin", "boss-pass-1") == 401
    assert await _sign_in(client, "demo", "boss", "boss-pass-1") == 401
    assert await _sign_in(client, "acme", "boss", "boss-pass-2") == 401


async def test_a_suspended_tenant_cannot_sign_in_until_it_is_active_again(client, node):
    await new_tenant(client, node, "paused", "paused-pass-1")
    tid = await _tenant_id(client, node, "paused")
    operator = await platform(client, node)
    r = await client.patch(f"/api/v1/tenants/{tid}", json={"status": "disabled"}, headers=operator)
    assert r.status_code == 200, r.text
    assert await _sign_in(client, "paused", "admin", "paused-pass-1") == 401
    r = await client.patch(f"/api/v1/tenants/{tid}", json={"status": "active"}, headers=operator)
    assert r.status_code == 200, r.text
    assert await _sign_in(client, "paused", "admin", "paused-pass-1") == 200


async def test_the_tenants_own_rate_limit_answers_429(client, node):
    await new_tenant(client, node, "slowco", "slowco-pass-1")
    tid = await _tenant_id(client, node, "slowco")
    r = await client.patch(
        f"/api/v1/tenants/{tid}", json={"rate_limit_rps": 1}, headers=await platform(client, node)
    )
    assert r.status_code == 200 and r.json()["rate_limit_rps"] == 1, r.text
    slow = await login(client, "slowco", "admin", "slowco-pass-1")
    codes = [(await client.get("/api/v1/queues", headers=slow)).status_code for _ in range(6)]
    assert codes[0] == 200 and codes.count(429) >= 4, codes
    # Another tenant keeps the node's default limit.
    admin = await demo_admin(client, node)
    codes = [(await client.get("/api/v1/queues", headers=admin)).status_code for _ in range(6)]
    assert codes == [200] * 6


async def test_recordings_older_than_the_retention_set_by_api_are_purged(client, node, tmp_path):
    admin = await demo_admin(client, node)
    tid = (await client.get("/api/v1/tenant", headers=admin)).json()["id"]
    root = tmp_path / "recordings"
    now = time.time()
    async with node.db.transaction() as s:
        for name, age_days in (("ten", 10), ("three", 3)):
            path = root / tid / f"{name}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"RIFF....WAVE")
            s.add(
                RecordingRecord(
                    id=name.ljust(32, "0"),
                    tenant_id=tid,
                    contact_id=name,
                    path=f"{tid}/{name}.wav",
                    state="complete",
                    started_at=datetime.fromtimestamp(now, UTC) - timedelta(days=age_days),
                )
            )
    # The default retention keeps both.
    assert await purge(node.db, LocalBus(), root, now) == {}
    r = await client.patch("/api/v1/tenant", json={"recording_retention_days": 7}, headers=admin)
    assert r.status_code == 200 and r.json()["recording_retention_days"] == 7, r.text
    assert await purge(node.db, LocalBus(), root, now) == {tid: 1}
    assert not (root / tid / "ten.wav").exists() and (root / tid / "three.wav").exists()
    async with node.db.session() as s:
        assert (await s.scalars(select(RecordingRecord.contact_id))).all() == ["three"]


async def test_an_agent_signs_in_with_the_username_and_password_it_was_given(client, node):
    admin = await demo_admin(client, node)
    r = await client.post(
        "/api/v1/agents",
        json={"name": "Rita", "extension": "2777", "sip_password": "secret-2777",
              "username": "rita.w", "password": "rita-pass-1"},
        headers=admin,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    assert await _sign_in(client, "demo", "rita.w", "rita-pass-1") == 200
    assert await _sign_in(client, "demo", "2777", "rita-pass-1") == 401
    aid = r.json()["id"]
    r = await client.patch(
        f"/api/v1/agents/{aid}", json={"username": "rita", "password": "rita-pass-2"}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert await _sign_in(client, "demo", "rita.w", "rita-pass-1") == 401
    assert await _sign_in(client, "demo", "rita", "rita-pass-2") == 200


async def test_a_disabled_agent_cannot_sign_in(client, node):
    admin = await demo_admin(client, node)
    r = await client.post(
        "/api/v1/agents",
        json={"name": "Otto", "extension": "2778", "sip_password": "secret-2778",
              "username": "otto", "password": "otto-pass-1", "status": "disabled"},
        headers=admin,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    assert await _sign_in(client, "demo", "otto", "otto-pass-1") == 401
    r = await client.patch(
        f"/api/v1/agents/{r.json()['id']}", json={"status": "active"}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert await _sign_in(client, "demo", "otto", "otto-pass-1") == 200
