"""Tenants never see each other: every resource, every verb, tried across the line."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.helpers import demo_admin, new_tenant, provision, signed

# (path, body that creates one object in a tenant, a valid change)
RESOURCES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "/api/v1/agents",
        {"name": "Secret Sam", "extension": "7001", "sip_password": "sam-secret"},
        {"name": "Hijacked"},
    ),
    ("/api/v1/queues", {"name": "secretq"}, {"capacity": 1}),
    ("/api/v1/trunks", {"name": "secrettrunk", "host": "10.0.0.1"}, {"port": 5070}),
    ("/api/v1/business-hours", {"name": "secrethours"}, {"timezone": "Europe/Paris"}),
    ("/api/v1/users", {"username": "secretuser", "password": "secret-pass"}, {"display_name": "x"}),
    ("/api/v1/roles", {"name": "secretrole", "permissions": ["queues:read"]}, {"description": "x"}),
    ("/api/v1/api-keys", {"name": "secretkey", "role": "admin"}, {"name": "renamed"}),
    (
        "/api/v1/numbers",
        {"number": "+4930555000", "target_type": "queue", "target": "support"},
        {"name": "x"},
    ),
]


@pytest.fixture
async def two_tenants(client, node) -> tuple[dict[str, str], dict[str, str]]:
    a = await demo_admin(client, node)
    b = await new_tenant(client, node, "rival")
    # Tenant B needs a queue named support for the number to be valid there too.
    await client.post("/api/v1/queues", json={"name": "support"}, headers=b)
    await provision(client, node, "+4930555000", a)
    await provision(client, node, "+4930555111", b)
    return a, b


@pytest.mark.parametrize(("path", "body", "change"), RESOURCES, ids=[r[0] for r in RESOURCES])
async def test_other_tenant_cannot_list_read_change_or_delete(
    client, two_tenants, path, body, change
):
    a, b = two_tenants
    r = await client.post(path, json=body, headers=a)
    assert r.status_code == 201, r.text
    obj = r.json()
    before = (await client.get(f"{path}/{obj['id']}", headers=a)).json()

    listing = (await client.get(f"{path}?limit=500", headers=b)).json()
    assert obj["id"] not in {i["id"] for i in listing["items"]}
    search = (await client.get(f"{path}?q=secret&limit=500", headers=b)).json()
    assert all(i["id"] != obj["id"] for i in search["items"])

    for method, kwargs in (("GET", {}), ("PATCH", {"json": change}), ("DELETE", {})):
        r = await client.request(method, f"{path}/{obj['id']}", headers=b, **kwargs)
        assert r.status_code == 404, (method, r.status_code, r.text)
        assert obj["id"] in r.json()["detail"]  # the same answer as for an id that never existed

    after = (await client.get(f"{path}/{obj['id']}", headers=a)).json()
    assert after == before


async def test_other_tenants_object_looks_exactly_like_a_missing_one(client, two_tenants):
    a, b = two_tenants
    qid = (await client.post("/api/v1/queues", json={"name": "hidden"}, headers=a)).json()["id"]
    missing = "0" * 32
    r1 = await client.get(f"/api/v1/queues/{qid}", headers=b)
    r2 = await client.get(f"/api/v1/queues/{missing}", headers=b)
    assert r1.status_code == r2.status_code == 404
    assert r1.json()["title"] == r2.json()["title"]
    assert r1.json()["detail"].replace(qid, "ID") == r2.json()["detail"].replace(missing, "ID")


async def test_api_key_of_one_tenant_cannot_reach_another(client, two_tenants):
    a, b = two_tenants
    qid = (await client.post("/api/v1/queues", json={"name": "aq"}, headers=a)).json()["id"]
    key = (await client.post("/api/v1/api-keys", json={"name": "b-key"}, headers=b)).json()
    path = f"/api/v1/queues/{qid}"
    headers, _ = signed(key["access_key"], key["secret"], "GET", path)
    r = await client.get(path, headers=headers)
    assert r.status_code == 404
    headers, _ = signed(key["access_key"], key["secret"], "DELETE", path)
    assert (await client.delete(path, headers=headers)).status_code == 404
    assert (await client.get(path, headers=a)).status_code == 200


async def test_references_to_another_tenants_objects_are_refused(client, two_tenants):
    a, b = two_tenants
    trunk = (
        await client.post("/api/v1/trunks", json={"name": "t", "host": "h.example"}, headers=a)
    ).json()
    r = await client.post(
        "/api/v1/numbers",
        json={"number": "+4930555111", "target": "support", "trunk_id": trunk["id"]},
        headers=b,
    )
    assert r.status_code == 422, r.text
    r = await client.post(
        "/api/v1/users",
        json={"username": "x1", "password": "secret-pass", "role": "admin"},
        headers=b,
    )
    assert r.status_code == 201  # B's own admin role, not A's
    a_roles = (await client.get("/api/v1/roles?limit=100", headers=a)).json()["items"]
    a_admin = next(r for r in a_roles if r["name"] == "admin")
    r = await client.post(
        "/api/v1/users",
        json={"username": "x2", "password": "secret-pass", "role": a_admin["id"]},
        headers=b,
    )
    assert r.status_code == 422


async def test_audit_logs_are_separate(client, two_tenants):
    a, b = two_tenants
    await client.post("/api/v1/queues", json={"name": "only-a"}, headers=a)
    log_b = (await client.get("/api/v1/audit-log?limit=500", headers=b)).json()
    assert all("only-a" not in str(e["changes"]) for e in log_b["items"])


async def test_a_tenant_admin_cannot_manage_tenants(client, two_tenants):
    a, b = two_tenants
    assert (await client.get("/api/v1/tenants", headers=a)).status_code == 403
    own = (await client.get("/api/v1/tenant", headers=b)).json()
    r = await client.get(f"/api/v1/tenants/{own['id']}", headers=a)
    assert r.status_code == 404
    r = await client.patch(f"/api/v1/tenants/{own['id']}", json={"name": "pwned"}, headers=a)
    assert r.status_code == 404
    r = await client.post(
        "/api/v1/tenants",
        json={"slug": "evil", "name": "Evil", "admin_password": "evil-pass"},
        headers=a,
    )
    assert r.status_code == 403
