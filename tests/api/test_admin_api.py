"""The admin API: CRUD with paging and filtering, validation, and the audit trail."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.helpers import demo_admin, login, provision


@pytest.fixture
async def admin(client: httpx.AsyncClient, node: Any) -> dict[str, str]:
    return await demo_admin(client, node)


async def test_demo_tenant_is_ready_to_take_a_call(client, admin, node):
    agents = (await client.get("/api/v1/agents", headers=admin)).json()
    assert [a["extension"] for a in agents["items"]] == ["1001", "1002", "1003"]
    assert all(a["skills"]["support"] >= 1 for a in agents["items"])
    queues = (await client.get("/api/v1/queues?name=support", headers=admin)).json()
    assert queues["total"] == 1
    numbers = (await client.get("/api/v1/numbers", headers=admin)).json()["items"]
    assert numbers[0]["number"] == "4000" and numbers[0]["target"] == "demo-main"
    hours = (await client.get("/api/v1/business-hours", headers=admin)).json()["items"]
    assert hours[0]["weekly"]["mon"] == [["00:00", "24:00"]]
    # The agents can log in to the web with what the demo file says.
    a = node.demo["agents"][0]
    headers = await login(client, "demo", a["web_username"], a["web_password"])
    me = (await client.get("/api/v1/me", headers=headers)).json()
    assert me["role"] == "agent" and me["agent_id"] == agents["items"][0]["id"]


async def test_agent_crud_round_trip(client, admin):
    body = {
        "name": "Dora",
        "extension": "2001",
        "sip_password": "secret-2001",
        "skills": {"support": 7, "english": 10},
    }
    r = await client.post("/api/v1/agents", json=body, headers=admin)
    assert r.status_code == 201, r.text
    agent = r.json()
    assert agent["skills"] == {"support": 7, "english": 10}
    assert agent["username"] == "2001" and agent["role"] == "agent"
    assert "sip_password" not in agent and "sip_ha1_md5" not in agent

    r = await client.patch(
        f"/api/v1/agents/{agent['id']}", json={"skills": {"support": 9}}, headers=admin
    )
    assert r.status_code == 200 and r.json()["skills"] == {"support": 9}
    r = await client.get(f"/api/v1/agents/{agent['id']}", headers=admin)
    assert r.json()["skills"] == {"support": 9}

    r = await client.delete(f"/api/v1/agents/{agent['id']}", headers=admin)
    assert r.status_code == 204
    assert (await client.get(f"/api/v1/agents/{agent['id']}", headers=admin)).status_code == 404
    # Its web user went with it.
    users = (await client.get("/api/v1/users?username=2001", headers=admin)).json()
    assert users["total"] == 0


async def test_listing_pages_and_filters(client, admin):
    for i in range(12):
        r = await client.post(
            "/api/v1/queues", json={"name": f"q{i:02d}", "strategy": "round_robin"}, headers=admin
        )
        assert r.status_code == 201
    page1 = (await client.get("/api/v1/queues?limit=5&offset=0", headers=admin)).json()
    page2 = (await client.get("/api/v1/queues?limit=5&offset=5", headers=admin)).json()
    assert page1["total"] == page2["total"] == 14  # 12 + support + sales
    assert not {q["id"] for q in page1["items"]} & {q["id"] for q in page2["items"]}
    rr = (await client.get("/api/v1/queues?strategy=round_robin&limit=100", headers=admin)).json()
    assert rr["total"] == 12
    found = (await client.get("/api/v1/queues?q=q1", headers=admin)).json()
    assert sorted(q["name"] for q in found["items"]) == ["q10", "q11"]


async def test_duplicate_extension_is_a_conflict_and_changes_nothing(client, admin):
    body = {"name": "Dup", "extension": "1001", "sip_password": "secret-1001"}
    r = await client.post("/api/v1/agents", json=body, headers=admin)
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "extension" in r.json()["detail"]
    agents = (await client.get("/api/v1/agents", headers=admin)).json()
    assert agents["total"] == 3


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (
            {"name": "X", "extension": "2002", "sip_password": "secret-22", "colour": "red"},
            "colour",
        ),
        ({"name": "X", "extension": "ab", "sip_password": "secret-22"}, "extension"),
        (
            {"name": "X", "extension": "2002", "sip_password": "secret-22", "skills": {"a": 11}},
            "skills",
        ),
        ({"name": "X", "extension": "2002", "sip_password": 12345678}, "sip_password"),
        ({"name": "X", "extension": "2002"}, "sip_password"),
    ],
)
async def test_invalid_agent_is_refused_with_the_field_named(client, admin, body, where):
    r = await client.post("/api/v1/agents", json=body, headers=admin)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["status"] == 422
    assert any(where in e["location"] for e in problem["errors"]), problem


async def test_malformed_json_and_oversized_bodies_are_refused(client, admin):
    r = await client.post(
        "/api/v1/queues",
        content=b"{not json",
        headers={**admin, "content-type": "application/json"},
    )
    assert r.status_code == 422
    big = {"name": "big", "description": "x" * 2_000_000}
    r = await client.post("/api/v1/queues", json=big, headers=admin)
    assert r.status_code == 413
    assert (await client.get("/api/v1/queues?name=big", headers=admin)).json()["total"] == 0


async def test_queue_overflow_must_target_an_existing_queue(client, admin):
    body = {"name": "vip", "overflow": {"wait_timeout": {"action": "queue", "target": "nope"}}}
    r = await client.post("/api/v1/queues", json=body, headers=admin)
    assert r.status_code == 422 and "nope" in r.json()["detail"]
    body["overflow"]["wait_timeout"]["target"] = "support"
    r = await client.post("/api/v1/queues", json=body, headers=admin)
    assert r.status_code == 201
    assert r.json()["overflow"]["wait_timeout"] == {"action": "queue", "target": "support"}


async def test_number_targets_and_trunk_references_are_checked(client, admin, node):
    await provision(client, node, "4001", admin)
    r = await client.post(
        "/api/v1/numbers",
        json={"number": "4001", "target_type": "queue", "target": "ghost"},
        headers=admin,
    )
    assert r.status_code == 422 and "ghost" in r.json()["detail"]
    r = await client.post(
        "/api/v1/trunks",
        json={
            "name": "carrier",
            "host": "sip.carrier.example",
            "password": "p",
            "allowed_ips": ["198.51.100.0/24"],
        },
        headers=admin,
    )
    assert r.status_code == 201 and r.json()["has_password"] is True
    assert "password" not in r.json() and "password_enc" not in r.json()
    trunk = r.json()["id"]
    r = await client.post(
        "/api/v1/numbers",
        json={
            "number": "+14155550100",
            "target_type": "queue",
            "target": "sales",
            "trunk_id": trunk,
        },
        headers=admin,
    )
    assert r.status_code == 201
    r = await client.post(
        "/api/v1/numbers", json={"number": "+14155550100", "target": "sales"}, headers=admin
    )
    assert r.status_code == 409
    r = await client.post(
        "/api/v1/trunks",
        json={"name": "bad", "host": "h", "allowed_ips": ["300.1.1.1"]},
        headers=admin,
    )
    assert r.status_code == 422


async def test_business_hours_validate_times_and_zones(client, admin):
    ok = {
        "name": "weekdays",
        "timezone": "Asia/Shanghai",
        "weekly": {"mon": [["09:00", "12:00"], ["13:00", "18:00"]]},
        "holidays": [{"date": "2026-10-01", "name": "National Day"}],
    }
    r = await client.post("/api/v1/business-hours", json=ok, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["holidays"][0]["date"] == "2026-10-01"
    bad_range = {**ok, "name": "b1", "weekly": {"mon": [["18:00", "09:00"]]}}
    assert (
        await client.post("/api/v1/business-hours", json=bad_range, headers=admin)
    ).status_code == 422
    bad_zone = {**ok, "name": "b2", "timezone": "Mars/Olympus"}
    r = await client.post("/api/v1/business-hours", json=bad_zone, headers=admin)
    assert r.status_code == 422 and "Mars" in r.json()["detail"]


async def test_business_hours_without_a_zone_take_the_tenants(client, admin):
    r = await client.patch("/api/v1/tenant", json={"timezone": "Europe/Berlin"}, headers=admin)
    assert r.status_code == 200, r.text
    body = {"name": "berlin-desk", "weekly": {"mon": [["09:00", "17:00"]]}}
    r = await client.post("/api/v1/business-hours", json=body, headers=admin)
    assert r.status_code == 201 and r.json()["timezone"] == "Europe/Berlin", r.text
    named = {**body, "name": "utc-desk", "timezone": "UTC"}
    r = await client.post("/api/v1/business-hours", json=named, headers=admin)
    assert r.json()["timezone"] == "UTC"


async def test_every_change_is_in_the_audit_log_with_who_and_where(client, admin):
    r = await client.post(
        "/api/v1/queues", json={"name": "billing"}, headers={**admin, "User-Agent": "pytest-ua"}
    )
    qid = r.json()["id"]
    await client.patch(f"/api/v1/queues/{qid}", json={"capacity": 7}, headers=admin)
    await client.delete(f"/api/v1/queues/{qid}", headers=admin)
    log = (await client.get(f"/api/v1/audit-log?resource_id={qid}", headers=admin)).json()
    actions = [e["action"] for e in log["items"]]
    assert actions == ["delete", "update", "create"]  # newest first
    create = log["items"][2]
    assert create["actor_name"] == "admin" and create["actor_type"] == "user"
    assert create["ip"] == "203.0.113.7" and create["user_agent"] == "pytest-ua"
    assert log["items"][1]["changes"] == {"capacity": [100, 7]}


async def test_secrets_never_reach_the_audit_log(client, admin):
    await client.post(
        "/api/v1/agents",
        json={
            "name": "S",
            "extension": "2009",
            "sip_password": "very-secret-sip",
            "password": "very-secret-web",
        },
        headers=admin,
    )
    log = (await client.get("/api/v1/audit-log?resource_type=agent&limit=500", headers=admin)).text
    assert "very-secret" not in log


async def test_password_change_revokes_existing_tokens(client, admin, node):
    a = node.demo["agents"][1]
    agent_headers = await login(client, "demo", a["web_username"], a["web_password"])
    assert (await client.get("/api/v1/me", headers=agent_headers)).status_code == 200
    users = (await client.get(f"/api/v1/users?username={a['web_username']}", headers=admin)).json()
    uid = users["items"][0]["id"]
    r = await client.patch(
        f"/api/v1/users/{uid}", json={"password": "brand-new-pass"}, headers=admin
    )
    assert r.status_code == 200
    r = await client.get("/api/v1/me", headers=agent_headers)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    await login(client, "demo", a["web_username"], "brand-new-pass")


async def test_wrong_password_and_bad_tokens_get_401(client):
    r = await client.post(
        "/api/v1/auth/login", json={"tenant": "demo", "username": "admin", "password": "nope"}
    )
    assert r.status_code == 401
    for header in ("Bearer garbage", "Bearer a.b", "Basic Zm9vOmJhcg==", "Bearer "):
        r = await client.get("/api/v1/agents", headers={"Authorization": header})
        assert r.status_code == 401, header
    assert (await client.get("/api/v1/agents")).status_code == 401


async def test_expired_token_is_refused(client, node):
    d = node.demo
    signer = node.ctx.auth.signer
    r = await client.post(
        "/api/v1/auth/login",
        json={"tenant": "demo", "username": "admin", "password": d["admin"]["password"]},
    )
    claims = signer.verify(r.json()["access_token"])
    old = signer.issue(claims.tenant_id, claims.user_id, claims.version, now=1_000_000)
    r = await client.get("/api/v1/agents", headers={"Authorization": f"Bearer {old}"})
    assert r.status_code == 401 and "expired" in r.json()["detail"]


async def test_seat_quota_is_enforced(client, node):
    platform_headers = await login(client, "platform", "root", node.demo["platform"]["password"])
    tenant = (await client.get("/api/v1/tenants?limit=10", headers=platform_headers)).json()
    demo = next(t for t in tenant["items"] if t["slug"] == "demo")
    r = await client.patch(
        f"/api/v1/tenants/{demo['id']}", json={"max_seats": 3}, headers=platform_headers
    )
    assert r.status_code == 200
    admin = await demo_admin(client, node)
    r = await client.post(
        "/api/v1/agents",
        json={"name": "Z", "extension": "2100", "sip_password": "secret-zz"},
        headers=admin,
    )
    assert r.status_code == 403 and "seats" in r.json()["detail"]
    # A tenant admin cannot raise its own quota.
    r = await client.patch("/api/v1/tenant", json={"max_seats": 100}, headers=admin)
    assert r.status_code == 403


async def test_an_agents_user_is_deleted_with_its_agent_not_on_its_own(client, node):
    """Deleting the user behind an agent would drop the agent row without the agent's own
    checks and its agent.deleted event (the routing engine would keep a ghost agent)."""
    admin = await demo_admin(client, node)
    body = {"name": "Ghost", "extension": "2099", "sip_password": "secret-2099"}
    agent = (await client.post("/api/v1/agents", json=body, headers=admin)).json()
    r = await client.delete(f"/api/v1/users/{agent['user_id']}", headers=admin)
    assert r.status_code == 409 and f"/agents/{agent['id']}" in r.json()["detail"]
    assert (await client.get(f"/api/v1/agents/{agent['id']}", headers=admin)).status_code == 200
    assert (await client.delete(f"/api/v1/agents/{agent['id']}", headers=admin)).status_code == 204
    r = await client.get(f"/api/v1/users/{agent['user_id']}", headers=admin)
    assert r.status_code == 404
