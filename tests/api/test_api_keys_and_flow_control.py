"""PaaS callers: HMAC-signed API keys with a replay window, and the API's flow control."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from cloudcc.app import Node
from tests.api.helpers import demo_admin, signed
from tests.conftest import make_settings


@pytest.fixture
async def key(client, node) -> dict[str, str]:
    admin = await demo_admin(client, node)
    r = await client.post("/api/v1/api-keys", json={"name": "crm", "role": "admin"}, headers=admin)
    assert r.status_code == 201
    return r.json()


async def test_signed_request_is_accepted_and_audited_as_the_key(client, node, key):
    body = {"name": "from-crm"}
    headers, raw = signed(key["access_key"], key["secret"], "POST", "/api/v1/queues", body)
    r = await client.post("/api/v1/queues", content=raw, headers=headers)
    assert r.status_code == 201, r.text
    admin = await demo_admin(client, node)
    log = (
        await client.get(f"/api/v1/audit-log?resource_id={r.json()['id']}", headers=admin)
    ).json()
    assert log["items"][0]["actor_type"] == "api_key" and log["items"][0]["actor_name"] == "crm"


async def test_the_secret_is_shown_once(client, node, key):
    admin = await demo_admin(client, node)
    listed = (await client.get(f"/api/v1/api-keys/{key['id']}", headers=admin)).json()
    assert "secret" not in listed and "secret_enc" not in listed
    assert key["secret"] not in (await client.get("/api/v1/api-keys", headers=admin)).text


@pytest.mark.parametrize(
    "tamper",
    ["body", "path", "method", "signature", "secret", "key"],
)
async def test_a_tampered_request_is_refused_and_changes_nothing(client, node, key, tamper):
    body = {"name": "tampered"}
    secret = key["secret"] + ("x" if tamper == "secret" else "")
    sign_path = "/api/v1/roles" if tamper == "path" else "/api/v1/queues"
    sign_method = "PUT" if tamper == "method" else "POST"
    headers, raw = signed(key["access_key"], secret, sign_method, sign_path, body)
    if tamper == "body":
        raw = json.dumps({"name": "evil"}).encode()
    if tamper == "signature":
        headers["X-CC-Signature"] = "0" * 64
    if tamper == "key":
        headers["X-CC-Key"] = "AK" + "0" * 30
    r = await client.post("/api/v1/queues", content=raw, headers=headers)
    assert r.status_code == 401, r.text
    admin = await demo_admin(client, node)
    names = {q["name"] for q in (await client.get("/api/v1/queues", headers=admin)).json()["items"]}
    assert not names & {"tampered", "evil"}


async def test_replays_and_stale_timestamps_are_refused(client, key):
    headers, _ = signed(key["access_key"], key["secret"], "GET", "/api/v1/queues")
    assert (await client.get("/api/v1/queues", headers=headers)).status_code == 200
    r = await client.get("/api/v1/queues", headers=headers)
    assert r.status_code == 401 and "replay" in r.json()["detail"]
    old, _ = signed(
        key["access_key"], key["secret"], "GET", "/api/v1/queues", timestamp=time.time() - 3600
    )
    r = await client.get("/api/v1/queues", headers=old)
    assert r.status_code == 401 and "window" in r.json()["detail"]
    future, _ = signed(
        key["access_key"], key["secret"], "GET", "/api/v1/queues", timestamp=time.time() + 3600
    )
    assert (await client.get("/api/v1/queues", headers=future)).status_code == 401


async def test_query_string_is_part_of_the_signature(client, key):
    headers, _ = signed(key["access_key"], key["secret"], "GET", "/api/v1/queues?limit=1")
    assert (await client.get("/api/v1/queues?limit=1", headers=headers)).status_code == 200
    headers, _ = signed(key["access_key"], key["secret"], "GET", "/api/v1/queues?limit=1")
    assert (await client.get("/api/v1/queues?limit=2", headers=headers)).status_code == 401


async def test_disabled_and_expired_keys_stop_working(client, node, key):
    admin = await demo_admin(client, node)
    r = await client.patch(
        f"/api/v1/api-keys/{key['id']}", json={"status": "disabled"}, headers=admin
    )
    assert r.status_code == 200
    headers, _ = signed(key["access_key"], key["secret"], "GET", "/api/v1/queues")
    assert (await client.get("/api/v1/queues", headers=headers)).status_code == 401
    r = await client.post(
        "/api/v1/api-keys",
        json={"name": "short", "expires_at": "2020-01-01T00:00:00Z"},
        headers=admin,
    )
    short = r.json()
    headers, _ = signed(short["access_key"], short["secret"], "GET", "/api/v1/queues")
    r = await client.get("/api/v1/queues", headers=headers)
    assert r.status_code == 401 and "expired" in r.json()["detail"]


async def test_per_key_rate_limit_answers_429_with_retry_after(client, node):
    admin = await demo_admin(client, node)
    k = (
        await client.post(
            "/api/v1/api-keys", json={"name": "slow", "rate_limit_rps": 1}, headers=admin
        )
    ).json()
    codes = []
    for i in range(8):
        headers, _ = signed(k["access_key"], k["secret"], "GET", f"/api/v1/queues?limit={i + 1}")
        r = await client.get(f"/api/v1/queues?limit={i + 1}", headers=headers)
        codes.append(r.status_code)
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) >= 1
            assert r.json()["title"] == "Too Many Requests"
    assert 200 in codes and 429 in codes
    # Another key of the same tenant is not affected.
    assert (await client.get("/api/v1/queues", headers=admin)).status_code == 200


async def test_tenant_rate_limit_covers_all_its_callers(tmp_path):
    settings = make_settings(tmp_path)
    settings.limits.tenant_rps = 2
    settings.limits.tenant_burst = 4
    node = Node(settings)
    await node.prepare()
    try:
        transport = httpx.ASGITransport(app=node.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            admin = await demo_admin(c, node)
            codes = [(await c.get("/api/v1/queues", headers=admin)).status_code for _ in range(10)]
            assert codes[:4] == [200] * 4 and codes.count(429) >= 5
    finally:
        await node.close()


async def test_in_flight_limit_answers_503_while_the_node_is_full_but_never_to_healthz(tmp_path):
    settings = make_settings(tmp_path)
    settings.limits.max_in_flight = 2
    node = Node(settings)
    await node.prepare()
    gate = asyncio.Event()

    @node.app.get("/api/v1/_slow", include_in_schema=False)
    async def slow() -> dict[str, bool]:
        await gate.wait()
        return {"ok": True}

    try:
        transport = httpx.ASGITransport(app=node.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            busy = [asyncio.create_task(c.get("/api/v1/_slow")) for _ in range(2)]
            await asyncio.sleep(0.05)
            r = await c.get("/api/v1/_slow")
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            # Liveness is answered in front of every cap: a full node is not a dead one.
            assert (await c.get("/healthz")).status_code == 200
            gate.set()
            assert [(await t).status_code for t in busy] == [200, 200]
            assert (await c.get("/api/v1/_slow")).status_code == 200
    finally:
        await node.close()
