"""IVR flows through the admin API: drafts, validation naming nodes, publish, rollback, binding."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.api.helpers import demo_admin, login, new_tenant, provision

SIMPLE: dict[str, Any] = {
    "format": "cloudcc.flow/1",
    "id": "simple",
    "name": "Simple",
    "start": "hello",
    "nodes": [
        {"id": "hello", "type": "play", "prompt": {"text": "Hello"}, "outputs": {"next": "q"}},
        {"id": "q", "type": "transfer_queue", "queue": "support"},
    ],
}


@pytest.fixture
async def admin(client, node) -> dict[str, str]:
    return await demo_admin(client, node)


async def test_demo_number_runs_the_published_demo_flow(client, admin, node):
    numbers = (await client.get("/api/v1/numbers?number=4000", headers=admin)).json()["items"]
    assert numbers[0]["target_type"] == "flow"
    flows = (await client.get("/api/v1/flows", headers=admin)).json()["items"]
    demo = next(f for f in flows if f["name"] == numbers[0]["target"])
    assert demo["published_version"] == 1
    flow = await node.ctx.flows.published_flow(node.demo["tenant_id"], demo["name"])
    assert any(n.type == "menu" for n in flow.nodes)


async def test_draft_publish_edit_and_rollback(client, admin):
    r = await client.post("/api/v1/flows", json={"document": SIMPLE}, headers=admin)
    assert r.status_code == 201, r.text
    flow = r.json()
    assert flow["has_draft"] and flow["published_version"] is None
    fid = flow["id"]

    r = await client.post(f"/api/v1/flows/{fid}/publish", json={}, headers=admin)
    assert r.status_code == 200 and r.json()["published_version"] == 1 and not r.json()["has_draft"]

    v2 = copy.deepcopy(SIMPLE)
    v2["nodes"][0]["prompt"]["text"] = "Hello again"
    # No draft after publishing: an editor starts from revision 0.
    r = await client.put(
        f"/api/v1/flows/{fid}/draft", json={"document": v2, "expected_revision": 0}, headers=admin
    )
    assert r.status_code == 200 and r.json()["draft_revision"] == 1
    # A second editor who also started from revision 0 loses (optimistic concurrency): 409.
    r = await client.put(
        f"/api/v1/flows/{fid}/draft", json={"document": v2, "expected_revision": 0}, headers=admin
    )
    assert r.status_code == 409
    r = await client.post(
        f"/api/v1/flows/{fid}/publish", json={"expected_revision": 1}, headers=admin
    )
    assert r.json()["published_version"] == 2

    r = await client.post(f"/api/v1/flows/{fid}/rollback", json={}, headers=admin)
    assert r.status_code == 200 and r.json()["published_version"] == 3
    versions = (await client.get(f"/api/v1/flows/{fid}/versions", headers=admin)).json()
    assert [(x["number"], x["state"], x["restored_from"]) for x in versions] == [
        (1, "retired", None),
        (2, "retired", None),
        (3, "published", 1),
    ]
    detail = (await client.get(f"/api/v1/flows/{fid}", headers=admin)).json()
    assert detail["published"]["nodes"][0]["prompt"]["text"] == "Hello"
    v3 = (await client.get(f"/api/v1/flows/{fid}/versions/2", headers=admin)).json()
    assert v3["document"]["nodes"][0]["prompt"]["text"] == "Hello again"
    log = (await client.get(f"/api/v1/audit-log?resource_id={fid}", headers=admin)).json()
    assert [e["action"] for e in log["items"]][:3] == ["rollback", "publish", "save_draft"]


async def test_rollback_to_a_chosen_version_is_what_calls_run(client, admin, node):
    doc = copy.deepcopy(SIMPLE)
    doc["id"] = doc["name"] = "chosen"
    fid = (await client.post("/api/v1/flows", json={"document": doc}, headers=admin)).json()["id"]
    for text in ("one", "two", "three"):
        doc["nodes"][0]["prompt"]["text"] = text
        r = await client.put(f"/api/v1/flows/{fid}/draft", json={"document": doc}, headers=admin)
        assert r.status_code == 200, r.text
        r = await client.post(f"/api/v1/flows/{fid}/publish", json={}, headers=admin)
        assert r.status_code == 200, r.text
    # Versions 1..3 say one, two, three; roll back to 2, not to the one before the last.
    r = await client.post(f"/api/v1/flows/{fid}/rollback", json={"to_version": 2}, headers=admin)
    assert r.status_code == 200 and r.json()["published_version"] == 4, r.text
    flow = await node.ctx.flows.published_flow(node.demo["tenant_id"], "chosen")
    assert flow.nodes[0].prompt.text == "two"


async def test_publishing_an_invalid_flow_names_the_bad_node(client, admin, node):
    bad = copy.deepcopy(SIMPLE)
    bad["id"] = "broken"
    bad["nodes"][0]["outputs"]["next"] = "nowhere"
    bad["nodes"].append({"id": "orphan", "type": "hangup"})
    r = await client.post("/api/v1/flows", json={"document": bad}, headers=admin)
    assert r.status_code == 201  # drafts may be invalid
    fid = r.json()["id"]
    r = await client.post(f"/api/v1/flows/{fid}/publish", json={}, headers=admin)
    assert r.status_code == 422
    problems = {(e["rule"], e["node"]) for e in r.json()["errors"]}
    assert ("dangling-output", "hello") in problems
    assert ("unreachable", "orphan") in problems
    r = await client.post("/api/v1/flow-validation", json={"document": bad}, headers=admin)
    assert r.json()["valid"] is False and len(r.json()["problems"]) >= 2
    # An unpublished flow cannot answer a number.
    await provision(client, node, "4100", admin)
    r = await client.post(
        "/api/v1/numbers",
        json={"number": "4100", "target_type": "flow", "target": "broken"},
        headers=admin,
    )
    assert r.status_code == 422 and "broken" in r.json()["detail"]


async def test_malformed_documents_are_refused_with_the_location(client, admin):
    doc = copy.deepcopy(SIMPLE)
    doc["nodes"][0]["type"] = "teleport"
    r = await client.post("/api/v1/flows", json={"document": doc}, headers=admin)
    assert r.status_code == 422
    assert "hello" in r.json()["detail"]
    r = await client.post("/api/v1/flows", json={"document": {"id": "x"}}, headers=admin)
    assert r.status_code == 422


async def test_flow_bound_to_a_number_cannot_be_deleted(client, admin):
    flows = (await client.get("/api/v1/flows", headers=admin)).json()["items"]
    demo = flows[0]
    r = await client.delete(f"/api/v1/flows/{demo['id']}", headers=admin)
    assert r.status_code == 409 and "4000" in r.json()["detail"]


async def test_flows_are_private_to_their_tenant_and_need_permission(client, admin, node):
    other = await new_tenant(client, node, "flowrival")
    fid = (await client.get("/api/v1/flows", headers=admin)).json()["items"][0]["id"]
    assert (await client.get(f"/api/v1/flows/{fid}", headers=other)).status_code == 404
    assert (
        await client.post(f"/api/v1/flows/{fid}/rollback", json={}, headers=other)
    ).status_code == 404
    assert (await client.get("/api/v1/flows", headers=other)).json()["total"] == 0
    agent = node.demo["agents"][0]
    agent_headers = await login(client, "demo", agent["web_username"], agent["web_password"])
    assert (await client.get("/api/v1/flows", headers=agent_headers)).status_code == 403


async def test_flow_schema_is_published(client):
    schema = (await client.get("/api/v1/flow-schema")).json()
    assert schema["title"].startswith("cloudcc flow document")
