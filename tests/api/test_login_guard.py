"""Password guessing: throttled per source and per account, locked, unlocked by an admin; an
unknown user is answered like a known one; the audit log gets a row per episode, not per guess."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from cloudcc.app import Node
from cloudcc.store.tables import AuditEntry
from cloudcc.tenancy import auth as auth_module
from tests.api.helpers import demo_admin, login
from tests.conftest import make_settings


def _node(tmp_path, **limits) -> Node:
    settings = make_settings(tmp_path)
    for key, value in limits.items():
        setattr(settings.limits, key, value)
    return Node(settings)


@pytest.fixture
async def guarded(tmp_path):
    n = _node(tmp_path, login_free_failures=100, login_lock_after=5)
    await n.prepare()
    try:
        yield n
    finally:
        await n.close()


async def _try(c: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await c.post(
        "/api/v1/auth/login", json={"tenant": "demo", "username": username, "password": password}
    )


def _client(node: Node, ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=node.app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://cc.test")


async def test_an_account_locks_after_its_failures_and_an_admin_unlocks_it(guarded):
    d = guarded.demo
    admin_name, admin_pass = d["admin"]["username"], d["admin"]["password"]
    async with _client(guarded, "198.51.100.10") as c:
        admin = await demo_admin(c, guarded)
        victim = (
            await c.post(
                "/api/v1/users",
                json={"username": "victim", "password": "right-pass-1", "role": "agent"},
                headers=admin,
            )
        ).json()
        codes = [(await _try(c, "victim", f"guess-{i}")).status_code for i in range(5)]
        assert codes == [401] * 5
        r = await _try(c, "victim", "right-pass-1")  # even the right password now
        assert r.status_code == 429 and "locked" in r.json()["detail"]
        assert int(r.headers["retry-after"]) > 3000
        # An unknown user is answered the same way (no enumeration through the lock).
        unknown = [(await _try(c, "nobody", f"guess-{i}")).status_code for i in range(6)]
        assert unknown == [401] * 5 + [429]
        # The audit log has one row when failures began and one when the lock engaged.
        async with guarded.db.session() as s:
            rows = await s.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.resource_id == victim["id"], AuditEntry.action.like("login%"))
            )
        assert rows == 2
        # An admin unlocks it; the user logs in.
        r = await c.post(f"/api/v1/users/{victim['id']}/unlock", headers=admin)
        assert r.status_code == 200 and r.json()["was_locked"] is True
        await login(c, "demo", "victim", "right-pass-1")
        # Other accounts were never affected.
        await login(c, "demo", admin_name, admin_pass)


async def test_unlock_needs_control_over_the_user(guarded):
    async with _client(guarded, "198.51.100.11") as c:
        admin = await demo_admin(c, guarded)
        admin_id = (await c.get("/api/v1/me", headers=admin)).json()["id"]
        await c.post(
            "/api/v1/roles",
            json={"name": "helpdesk", "permissions": ["users:read", "users:write"]},
            headers=admin,
        )
        await c.post(
            "/api/v1/users",
            json={"username": "desk", "password": "password-1", "role": "helpdesk"},
            headers=admin,
        )
        desk = await login(c, "demo", "desk", "password-1")
        r = await c.post(f"/api/v1/users/{admin_id}/unlock", headers=desk)
        assert r.status_code == 403


async def test_failures_back_off_exponentially(tmp_path):
    node = _node(tmp_path)  # defaults: 5 free failures, then 1 s, 2 s, 4 s ...
    await node.prepare()
    try:
        async with _client(node, "198.51.100.12") as c:
            codes = [(await _try(c, "someone", f"g{i}")).status_code for i in range(5)]
            assert codes == [401] * 5
            r = await _try(c, "someone", "g5")
            assert r.status_code == 429 and r.headers["retry-after"] == "1"
    finally:
        await node.close()


async def test_one_address_is_throttled_across_accounts(tmp_path):
    node = _node(tmp_path, login_failures_per_minute=3)
    await node.prepare()
    try:
        async with _client(node, "198.51.100.13") as c:
            codes = [(await _try(c, f"user{i}", "x")).status_code for i in range(4)]
            assert codes == [401, 401, 401, 429]
        async with _client(node, "198.51.100.14") as c:
            assert (await _try(c, "user9", "x")).status_code == 401  # another address
            await demo_admin(c, node)  # successes cost nothing
    finally:
        await node.close()


async def test_an_unknown_user_costs_a_password_hash_like_a_known_one(guarded, monkeypatch):
    calls: list[str] = []
    real = auth_module.verify_password_off_loop

    async def counting(password: str, stored: str) -> bool:
        calls.append(stored)
        return await real(password, stored)

    monkeypatch.setattr(auth_module, "verify_password_off_loop", counting)
    async with _client(guarded, "198.51.100.15") as c:
        a = await _try(c, "no-such-user", "x")
        b = await _try(c, guarded.demo["admin"]["username"], "wrong")
    assert a.status_code == b.status_code == 401
    assert a.json()["detail"] == b.json()["detail"]
    assert len(calls) == 2 and all(s.startswith("scrypt$") for s in calls)
