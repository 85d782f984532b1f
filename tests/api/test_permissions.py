"""Each role gets exactly what its permissions allow."""

from __future__ import annotations

import itertools

import pytest

from cloudcc.tenancy.model import BUILTIN_ROLES, Permission
from tests.api.helpers import demo_admin, login

# endpoint -> the permission it needs
READS = {
    "/api/v1/agents": Permission.AGENTS_READ,
    "/api/v1/queues": Permission.QUEUES_READ,
    "/api/v1/numbers": Permission.NUMBERS_READ,
    "/api/v1/trunks": Permission.TRUNKS_READ,
    "/api/v1/business-hours": Permission.HOURS_READ,
    "/api/v1/users": Permission.USERS_READ,
    "/api/v1/roles": Permission.ROLES_READ,
    "/api/v1/api-keys": Permission.APIKEYS_READ,
    "/api/v1/audit-log": Permission.AUDIT_READ,
    "/api/v1/tenant": Permission.TENANT_READ,
}
_n = itertools.count()
WRITES = {
    "/api/v1/queues": (Permission.QUEUES_WRITE, lambda: {"name": f"pq{next(_n)}"}),
    "/api/v1/business-hours": (Permission.HOURS_WRITE, lambda: {"name": f"ph{next(_n)}"}),
    "/api/v1/trunks": (Permission.TRUNKS_WRITE, lambda: {"name": f"pt{next(_n)}", "host": "h"}),
    "/api/v1/users": (
        Permission.USERS_WRITE,
        lambda: {"username": f"pu{next(_n)}", "password": "password-1", "role": "agent"},
    ),
    "/api/v1/agents": (
        Permission.AGENTS_WRITE,
        lambda: {"name": "P", "extension": f"8{next(_n):03d}", "sip_password": "secret-1"},
    ),
}


async def _user_with_role(client, admin, role: str) -> dict[str, str]:
    name = f"{role}-user-{next(_n)}"
    r = await client.post(
        "/api/v1/users",
        json={"username": name, "password": "password-1", "role": role},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    return await login(client, "demo", name, "password-1")


@pytest.mark.parametrize("role", sorted(BUILTIN_ROLES))
async def test_builtin_role_reads_exactly_what_it_may(client, node, role):
    admin = await demo_admin(client, node)
    headers = await _user_with_role(client, admin, role)
    allowed = BUILTIN_ROLES[role][1]
    for path, perm in READS.items():
        r = await client.get(path, headers=headers)
        expected = 200 if perm in allowed else 403
        assert r.status_code == expected, (role, path, r.status_code, r.text)


@pytest.mark.parametrize("role", sorted(BUILTIN_ROLES))
async def test_builtin_role_writes_exactly_what_it_may(client, node, role):
    admin = await demo_admin(client, node)
    headers = await _user_with_role(client, admin, role)
    allowed = BUILTIN_ROLES[role][1]
    for path, (perm, body) in WRITES.items():
        r = await client.post(path, json=body(), headers=headers)
        expected = 201 if perm in allowed else 403
        assert r.status_code == expected, (role, path, r.status_code, r.text)


async def test_custom_role_composed_of_permissions(client, node):
    admin = await demo_admin(client, node)
    r = await client.post(
        "/api/v1/roles",
        json={"name": "queue-keeper", "permissions": ["queues:read", "queues:write"]},
        headers=admin,
    )
    assert r.status_code == 201
    headers = await _user_with_role(client, admin, "queue-keeper")
    assert (
        await client.post("/api/v1/queues", json={"name": "kept"}, headers=headers)
    ).status_code == 201
    assert (await client.get("/api/v1/agents", headers=headers)).status_code == 403
    assert (await client.get("/api/v1/audit-log", headers=headers)).status_code == 403
    # Narrowing the role takes effect at once.
    role_id = r.json()["id"]
    r = await client.patch(
        f"/api/v1/roles/{role_id}", json={"permissions": ["queues:read"]}, headers=admin
    )
    assert r.status_code == 200
    assert (
        await client.post("/api/v1/queues", json={"name": "kept2"}, headers=headers)
    ).status_code == 403
    assert (await client.get("/api/v1/queues", headers=headers)).status_code == 200


async def test_unknown_permissions_and_builtin_roles_are_protected(client, node):
    admin = await demo_admin(client, node)
    r = await client.post(
        "/api/v1/roles", json={"name": "x", "permissions": ["nuke:all"]}, headers=admin
    )
    assert r.status_code == 422 and "nuke:all" in r.json()["detail"]
    r = await client.post(
        "/api/v1/roles", json={"name": "y", "permissions": ["platform:tenants"]}, headers=admin
    )
    assert r.status_code == 422
    roles = (await client.get("/api/v1/roles", headers=admin)).json()["items"]
    builtin = next(x for x in roles if x["name"] == "agent")
    assert (
        await client.patch(
            f"/api/v1/roles/{builtin['id']}", json={"permissions": []}, headers=admin
        )
    ).status_code == 422
    assert (await client.delete(f"/api/v1/roles/{builtin['id']}", headers=admin)).status_code == 422


async def test_nobody_grants_more_than_they_hold(client, node):
    admin = await demo_admin(client, node)
    r = await client.post(
        "/api/v1/roles",
        json={"name": "user-admin", "permissions": ["users:read", "users:write", "roles:read"]},
        headers=admin,
    )
    assert r.status_code == 201
    headers = await _user_with_role(client, admin, "user-admin")
    r = await client.post(
        "/api/v1/users",
        json={"username": "escalate", "password": "password-1", "role": "admin"},
        headers=headers,
    )
    assert r.status_code == 403 and "lack" in r.json()["detail"]
    r = await client.post(
        "/api/v1/users",
        json={"username": "peer", "password": "password-1", "role": "user-admin"},
        headers=headers,
    )
    assert r.status_code == 201
