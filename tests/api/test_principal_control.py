"""A delegated role cannot take over or stop a principal that holds more than it does."""

from __future__ import annotations

import itertools

from tests.api.helpers import demo_admin, login

_n = itertools.count()


async def _delegate(client, admin, permissions: list[str]) -> dict[str, str]:
    """A user whose custom role holds exactly ``permissions``."""
    role = f"delegate-{next(_n)}"
    r = await client.post(
        "/api/v1/roles", json={"name": role, "permissions": permissions}, headers=admin
    )
    assert r.status_code == 201, r.text
    name = f"{role}-user"
    r = await client.post(
        "/api/v1/users",
        json={"username": name, "password": "password-1", "role": role},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    return await login(client, "demo", name, "password-1")


async def test_users_write_cannot_take_over_disable_or_delete_an_admin(client, node):
    admin = await demo_admin(client, node)
    r = await client.post(
        "/api/v1/users",
        json={"username": "second-admin", "password": "password-1", "role": "admin"},
        headers=admin,
    )
    target = r.json()["id"]
    delegate = await _delegate(client, admin, ["users:read", "users:write"])
    for body in ({"password": "taken-over-1"}, {"status": "disabled"}, {"display_name": "x"}):
        r = await client.patch(f"/api/v1/users/{target}", json=body, headers=delegate)
        assert r.status_code == 403, (body, r.text)
        assert "lack" in r.json()["detail"]
    assert (await client.delete(f"/api/v1/users/{target}", headers=delegate)).status_code == 403
    # The admin still logs in with the old password and is still active.
    await login(client, "demo", "second-admin", "password-1")
    # A peer (same or fewer permissions) is still managed by the delegate.
    r = await client.post(
        "/api/v1/users",
        json={"username": "plain", "password": "password-1", "role": "agent"},
        headers=admin,
    )
    plain = r.json()["id"]
    agent_role = next(
        x
        for x in (await client.get("/api/v1/roles", headers=admin)).json()["items"]
        if x["name"] == "agent"
    )
    full = await _delegate(client, admin, ["users:read", "users:write", *agent_role["permissions"]])
    r = await client.patch(f"/api/v1/users/{plain}", json={"status": "disabled"}, headers=full)
    assert r.status_code == 200, r.text
    assert (await client.delete(f"/api/v1/users/{plain}", headers=full)).status_code == 204


async def test_agents_write_cannot_change_an_agent_whose_user_is_admin(client, node):
    admin = await demo_admin(client, node)
    r = await client.post(
        "/api/v1/agents",
        json={
            "name": "Boss",
            "extension": "7001",
            "sip_password": "secret-1",
            "role": "admin",
            "password": "boss-pass-1",
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    boss = r.json()["id"]
    delegate = await _delegate(client, admin, ["agents:read", "agents:write"])
    for body in ({"password": "taken-over-1"}, {"status": "disabled"}, {"name": "x"}):
        r = await client.patch(f"/api/v1/agents/{boss}", json=body, headers=delegate)
        assert r.status_code == 403, (body, r.text)
    assert (await client.delete(f"/api/v1/agents/{boss}", headers=delegate)).status_code == 403
    await login(client, "demo", "7001", "boss-pass-1")


async def test_apikeys_write_cannot_revive_an_admin_key(client, node):
    admin = await demo_admin(client, node)
    r = await client.post("/api/v1/api-keys", json={"name": "root", "role": "admin"}, headers=admin)
    key = r.json()["id"]
    r = await client.patch(f"/api/v1/api-keys/{key}", json={"status": "disabled"}, headers=admin)
    assert r.status_code == 200
    delegate = await _delegate(client, admin, ["apikeys:read", "apikeys:write"])
    for body in ({"status": "active"}, {"expires_at": None}, {"rate_limit_rps": 100}):
        r = await client.patch(f"/api/v1/api-keys/{key}", json=body, headers=delegate)
        assert r.status_code == 403, (body, r.text)
    assert (await client.delete(f"/api/v1/api-keys/{key}", headers=delegate)).status_code == 403
    got = (await client.get(f"/api/v1/api-keys/{key}", headers=admin)).json()
    assert got["status"] == "disabled"
    # The delegate manages a key of its own role.
    r = await client.get("/api/v1/roles", headers=admin)
    own_role = next(
        x for x in r.json()["items"] if x["permissions"] == ["apikeys:read", "apikeys:write"]
    )
    r = await client.post(
        "/api/v1/api-keys", json={"name": "mine", "role": own_role["name"]}, headers=delegate
    )
    assert r.status_code == 201, r.text
    mine = r.json()["id"]
    r = await client.patch(
        f"/api/v1/api-keys/{mine}", json={"status": "disabled"}, headers=delegate
    )
    assert r.status_code == 200, r.text


async def test_an_agents_user_changed_through_the_agent_is_audited_and_takes_effect_at_once(
    client, node
):
    admin = await demo_admin(client, node)
    r = await client.post(
        "/api/v1/agents",
        json={
            "name": "Role Change",
            "extension": "4711",
            "sip_password": "sip-secret-4711",
            "username": "rolechange",
            "password": "password-1",
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    agent_id = r.json()["id"]
    before = await login(client, "demo", "rolechange", "password-1")
    assert (await client.get("/api/v1/users", headers=before)).status_code == 403

    # Only user fields change: the agent row itself stays the same.
    r = await client.patch(
        f"/api/v1/agents/{agent_id}",
        json={"role": "supervisor", "password": "password-2"},
        headers=admin,
    )
    assert r.status_code == 200, r.text

    log = (await client.get(f"/api/v1/audit-log?resource_id={agent_id}", headers=admin)).json()[
        "items"
    ]
    update = [e for e in log if e["action"] == "update"]
    assert update, log
    changes = update[0]["changes"]
    assert "user.role" in changes and changes["user.password"] != "password-2", changes
    # The old token is revoked, and signing in again with the new password works at once.
    assert (await client.get("/api/v1/agents", headers=before)).status_code == 401
    after = await login(client, "demo", "rolechange", "password-2")
    assert (await client.get("/api/v1/agents", headers=after)).status_code == 200
