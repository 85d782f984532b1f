"""Numbers belong to a tenant because the platform provisioned them or because the tenant
brings them on its own trunk; a refusal never tells one tenant what another holds. Trunk and
tenant settings that decide where calls go are checked when they are written."""

from __future__ import annotations

import pytest

from tests.api.helpers import demo_admin, new_tenant, platform, provision


@pytest.fixture
async def admins(client, node) -> tuple[dict[str, str], dict[str, str]]:
    a = await demo_admin(client, node)
    b = await new_tenant(client, node, "rival")
    await client.post("/api/v1/queues", json={"name": "support"}, headers=b)
    return a, b


def number(value: str, **extra: object) -> dict[str, object]:
    return {"number": value, "target_type": "queue", "target": "support", **extra}


async def test_a_tenant_admin_creates_only_numbers_provisioned_to_its_tenant(client, node, admins):
    a, _ = admins
    r = await client.post("/api/v1/numbers", json=number("+4930111"), headers=a)
    assert r.status_code == 422
    assert "not provisioned to your tenant" in r.json()["detail"]
    assert "trunk_id" in r.json()["detail"], "the detail says how to bring one's own number"
    await provision(client, node, "+4930111", a)
    r = await client.post("/api/v1/numbers", json=number("+4930111"), headers=a)
    assert r.status_code == 201 and r.json()["provisioned"] is True


async def test_a_refusal_looks_the_same_whether_or_not_another_tenant_holds_the_number(
    client, node, admins
):
    a, b = admins
    await provision(client, node, "+4930222", a)
    assert (await client.post("/api/v1/numbers", json=number("+4930222"), headers=a)).is_success
    held = await client.post("/api/v1/numbers", json=number("+4930222"), headers=b)
    free = await client.post("/api/v1/numbers", json=number("+4930333"), headers=b)
    assert held.status_code == free.status_code == 422
    assert held.json()["detail"].replace("+4930222", "N") == free.json()["detail"].replace(
        "+4930333", "N"
    )
    # Changing one's own number into another's is refused the same way.
    await provision(client, node, "+4930444", b)
    mine = (await client.post("/api/v1/numbers", json=number("+4930444"), headers=b)).json()
    r = await client.patch(f"/api/v1/numbers/{mine['id']}", json={"number": "+4930222"}, headers=b)
    assert r.status_code == 422 and "not provisioned to your tenant" in r.json()["detail"]


async def test_a_tenant_brings_its_own_number_on_its_own_trunk_even_if_another_holds_it(
    client, node, admins
):
    a, b = admins
    await provision(client, node, "+4930555", a)
    assert (await client.post("/api/v1/numbers", json=number("+4930555"), headers=a)).is_success
    trunk = (
        await client.post(
            "/api/v1/trunks",
            json={"name": "pbx", "host": "pbx.rival.example", "allowed_ips": ["192.0.2.0/24"]},
            headers=b,
        )
    ).json()
    r = await client.post(
        "/api/v1/numbers", json=number("+4930555", trunk_id=trunk["id"]), headers=b
    )
    assert r.status_code == 201 and r.json()["provisioned"] is False
    # Bound to a trunk it must stay: a number the tenant brings cannot be unbound.
    r = await client.patch(f"/api/v1/numbers/{r.json()['id']}", json={"trunk_id": None}, headers=b)
    assert r.status_code == 422
    # Another tenant's trunk is not one's own.
    a_trunk = (
        await client.post("/api/v1/trunks", json={"name": "t", "host": "h.example"}, headers=a)
    ).json()
    r = await client.post(
        "/api/v1/numbers", json=number("+4930666", trunk_id=a_trunk["id"]), headers=b
    )
    assert r.status_code == 422 and "trunk_id" in r.json()["detail"]


async def test_only_the_platform_operator_provisions_and_a_tenant_sees_only_its_own(
    client, node, admins
):
    a, b = admins
    b_id = (await client.get("/api/v1/tenant", headers=b)).json()["id"]
    r = await client.post(
        "/api/v1/number-pool", json={"number": "+4930777", "tenant_id": b_id}, headers=b
    )
    assert r.status_code == 403
    await provision(client, node, "+4930777", b)
    await provision(client, node, "+4930888", a)
    mine = (await client.get("/api/v1/number-pool", headers=b)).json()
    assert [x["number"] for x in mine["items"]] == ["+4930777"]
    # A tenant cannot widen its view with a filter.
    a_id = (await client.get("/api/v1/tenant", headers=a)).json()["id"]
    r = await client.get(f"/api/v1/number-pool?tenant_id={a_id}", headers=b)
    assert [x["number"] for x in r.json()["items"]] == ["+4930777"]
    theirs = (await client.get("/api/v1/number-pool?number=%2B4930888", headers=a)).json()
    r = await client.get(f"/api/v1/number-pool/{theirs['items'][0]['id']}", headers=b)
    assert r.status_code == 404
    everything = (
        await client.get("/api/v1/number-pool?limit=500", headers=await platform(client, node))
    ).json()
    assert {"4000", "+4930777", "+4930888"} <= {x["number"] for x in everything["items"]}
    r = await client.post(
        "/api/v1/number-pool",
        json={"number": "+4930777", "tenant_id": a_id},
        headers=await platform(client, node),
    )
    assert r.status_code == 409


async def test_withdrawing_a_number_takes_the_tenants_number_unless_it_is_on_its_trunk(
    client, node, admins
):
    a, _ = admins
    operator = await platform(client, node)
    loose = await provision(client, node, "+4930901", a)
    bound = await provision(client, node, "+4930902", a)
    trunk = (
        await client.post("/api/v1/trunks", json={"name": "own", "host": "h.example"}, headers=a)
    ).json()
    await client.post("/api/v1/numbers", json=number("+4930901"), headers=a)
    await client.post("/api/v1/numbers", json=number("+4930902", trunk_id=trunk["id"]), headers=a)
    for item in (loose, bound):
        r = await client.delete(f"/api/v1/number-pool/{item['id']}", headers=operator)
        assert r.status_code == 204
    left = (await client.get("/api/v1/numbers?limit=100", headers=a)).json()["items"]
    assert "+4930901" not in {n["number"] for n in left}
    (kept,) = [n for n in left if n["number"] == "+4930902"]
    assert kept["provisioned"] is False and kept["trunk_id"] == trunk["id"]
    log = (await client.get("/api/v1/audit-log?resource_type=number", headers=a)).json()
    assert {"provision", "withdraw"} <= {e["action"] for e in log["items"]}


async def test_trunk_settings_that_cannot_work_are_refused(client, admins):
    a, _ = admins
    r = await client.post(
        "/api/v1/trunks", json={"name": "r", "host": "h.example", "registration": True}, headers=a
    )
    assert r.status_code == 422 and "username and password" in r.json()["detail"]
    r = await client.post(
        "/api/v1/trunks",
        json={"name": "p", "host": "h.example", "inbound_auth": True, "username": "1001",
              "password": "secret-1"},
        headers=a,
    )  # fmt: skip
    assert r.status_code == 409 and "agent" in r.json()["detail"]
    r = await client.post(
        "/api/v1/trunks",
        json={"name": "ok", "host": "h.example", "registration": True, "username": "acct",
              "password": "secret-1", "priority": 5, "outbound": False},
        headers=a,
    )  # fmt: skip
    assert r.status_code == 201
    out = r.json()
    assert out["priority"] == 5 and out["outbound"] is False and out["inbound_auth"] is False
    # No voice side runs in this node: no registration state, no channel in use.
    assert out["registration_state"] is None and out["channels_in_use"] == 0
    # The stored password counts: the username alone may change.
    r = await client.patch(f"/api/v1/trunks/{out['id']}", json={"username": "acct2"}, headers=a)
    assert r.status_code == 200
    r = await client.patch(f"/api/v1/trunks/{out['id']}", json={"password": None}, headers=a)
    assert r.status_code == 422


async def test_tenant_dial_plan_and_sip_destinations_are_checked_and_merged(client, admins):
    a, _ = admins
    plan = (await client.get("/api/v1/tenant", headers=a)).json()["dial_plan"]
    assert plan["national"] is True and plan["international"] == []
    assert "+1900" in plan["blocked"]
    r = await client.patch(
        "/api/v1/tenant", json={"dial_plan": {"international": ["+44"]}}, headers=a
    )
    assert r.status_code == 200
    assert r.json()["dial_plan"]["international"] == ["+44"]
    assert "+1900" in r.json()["dial_plan"]["blocked"], "keys not named stay as they were"
    for bad in ({"international": ["44"]}, {"blocked": ["x"]}, {"national": "yes"}):
        r = await client.patch("/api/v1/tenant", json={"dial_plan": bad}, headers=a)
        assert r.status_code == 422, bad
    r = await client.patch(
        "/api/v1/tenant",
        json={"sip_destinations": ["pbx.example.com:5080", "10.0.0.0/8", "*.corp.example"]},
        headers=a,
    )
    assert r.status_code == 200
    assert r.json()["sip_destinations"] == ["pbx.example.com:5080", "10.0.0.0/8", "*.corp.example"]
    for bad in (["a b"], ["host:99999"], ["10.0.0.0/40"]):
        r = await client.patch("/api/v1/tenant", json={"sip_destinations": bad}, headers=a)
        assert r.status_code == 422, bad
