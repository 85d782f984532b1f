"""An agent signs in only with a phone the node can reach (registered under its own
extension, or assigned by an admin; any URI needs agents:device), and losing the
registration makes it not ready (reason unreachable). Real REGISTERs from SIPp."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tests.agents.conftest import Desk
from tests.sip.helpers import run_sipp

pytestmark = pytest.mark.peer


def _users(tmp_path: Path, user: str, password: str) -> str:
    path = tmp_path / f"{user}.csv"
    path.write_text(f"SEQUENTIAL\n{user};[authentication username={user} password={password}]\n")
    return str(path)


async def _register(desk: Desk, tmp_path: Path, index: int, scenario: str) -> None:
    agent = desk.agent(index)
    result = await run_sipp(
        desk.sip_port,
        scenario=scenario,
        extra=["-inf", _users(tmp_path, agent["extension"], agent["sip_password"])],
        time_limit=30,
    )
    assert result.returncode == 0, result.errors()


async def _until(check: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


async def test_sign_in_needs_a_registered_phone_and_losing_it_makes_the_agent_not_ready(
    desk: Desk, tmp_path: Path
) -> None:
    agent, aid = await desk.agent_headers(0)
    events: list[Any] = []
    desk.node.bus.on(lambda e: e.type == "agent.state_changed", events.append)
    # Nothing registered, nothing assigned: refused, saying what to do.
    r = await desk.call("POST", "/agents/me/login", agent, json={})
    assert r.status_code == 422, r.text
    assert r.json()["type"] == "urn:cloudcc:no_device"
    assert "register" in r.json()["detail"] and "1001" in r.json()["detail"]
    # A phone URI of the agent's choosing: the node would send INVITEs anywhere.
    r = await desk.call("POST", "/agents/me/login", agent, json={"device": "sip:x@127.0.0.1:45999"})
    assert r.status_code == 403 and "agents:device" in r.json()["detail"], r.text
    # A phone registers with the agent's own credentials: signing in works and rings it.
    await _register(desk, tmp_path, 0, "register_digest")
    r = await desk.call("POST", "/agents/me/login", agent, json={})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "ready" and r.json()["device"] == "sip:1001@127.0.0.1"
    # The phone unregisters: the agent becomes not ready, reason unreachable, by event.
    await _register(desk, tmp_path, 0, "unregister_digest")

    async def lost() -> bool:
        status = (await desk.call("GET", "/agents/me/status", agent)).json()
        return status["state"] == "not_ready" and status["reason"] == "unreachable"

    assert await _until(lost)
    assert [e.data["reason"] for e in events if e.data["agent_id"] == aid][-1] == "unreachable"
    r = await desk.call("PUT", "/agents/me/state", agent, json={"state": "ready"})
    assert r.status_code == 409 and "no reachable phone" in r.json()["detail"], r.text
    # Registered again: ready is possible again.
    await _register(desk, tmp_path, 0, "register_digest")
    r = await desk.call("PUT", "/agents/me/state", agent, json={"state": "ready"})
    assert r.status_code == 200 and r.json()["state"] == "ready", r.text


async def test_a_device_the_admin_assigned_is_allowed(desk: Desk) -> None:
    agent, aid = await desk.agent_headers(1)
    desk_phone = "sip:desk-2@127.0.0.1:45998"
    # The agent cannot assign itself a device (agents:write, and agents:device).
    r = await desk.call("PATCH", f"/agents/{aid}", agent, json={"device": desk_phone})
    assert r.status_code == 403
    r = await desk.call("PATCH", f"/agents/{aid}", json={"device": desk_phone})
    assert r.status_code == 200 and r.json()["device"] == desk_phone, r.text
    # No registration: the assigned device is used; naming it is allowed too.
    r = await desk.call("POST", "/agents/me/login", agent, json={})
    assert r.status_code == 200 and r.json()["device"] == desk_phone, r.text
    assert (await desk.call("POST", "/agents/me/logout", agent)).status_code == 200
    r = await desk.call("POST", "/agents/me/login", agent, json={"device": desk_phone})
    assert r.status_code == 200 and r.json()["device"] == desk_phone, r.text
    assert (await desk.call("POST", "/agents/me/logout", agent)).status_code == 200
    # Another URI still needs agents:device (which an admin holds).
    r = await desk.call("POST", "/agents/me/login", agent, json={"device": "sip:y@10.0.0.1"})
    assert r.status_code == 403
    r = await desk.call("POST", f"/agents/{aid}/login", json={"device": "sip:y@10.0.0.1"})
    assert r.status_code == 200 and r.json()["device"] == "sip:y@10.0.0.1", r.text
    r = await desk.call("PATCH", f"/agents/{aid}", json={"device": "tel:123"})
    assert r.status_code == 422


async def test_assigning_a_device_needs_agents_device(desk: Desk) -> None:
    r = await desk.call(
        "POST",
        "/roles",
        json={
            "name": "seat-admin",
            # every permission of the agents it changes (issue 18.1), not agents:device
            "permissions": ["agents:read", "agents:write", "calls:own", "queues:read"],
        },
    )
    assert r.status_code == 201, r.text
    r = await desk.call(
        "POST",
        "/users",
        json={"username": "seats", "password": "seats-pass-1", "role": "seat-admin"},
    )
    assert r.status_code == 201, r.text
    from tests.api.helpers import login

    seats = await login(desk.client, "demo", "seats", "seats-pass-1")
    aid = (await desk.agent_headers(0))[1]
    r = await desk.call("PATCH", f"/agents/{aid}", seats, json={"device": "sip:z@10.0.0.2"})
    assert r.status_code == 403 and "agents:device" in r.json()["detail"], r.text
    r = await desk.call("PATCH", f"/agents/{aid}", seats, json={"name": "Alice A."})
    assert r.status_code == 200, r.text


async def test_a_phone_registers_in_the_tenant_of_its_sip_domain(
    desk: Desk, tmp_path: Path
) -> None:
    from tests.api.helpers import login, platform

    r = await desk.client.post(
        "/api/v1/tenants",
        json={
            "slug": "acme",
            "name": "Acme",
            "admin_password": "acme-pass-1",
            "sip_domain": "sip.acme.example",
        },
        headers=await platform(desk.client, desk.node),
    )
    assert r.status_code == 201 and r.json()["sip_domain"] == "sip.acme.example", r.text
    acme = await login(desk.client, "acme", "admin", "acme-pass-1")
    r = await desk.client.post(
        "/api/v1/agents",
        json={"name": "Ann", "extension": "2001", "sip_password": "acme-secret-1"},
        headers=acme,
    )
    assert r.status_code == 201, r.text

    async def register(user: str, password: str, domain: str) -> int:
        users = tmp_path / f"{user}-{domain}.csv"
        users.write_text(
            f"SEQUENTIAL\n{user};[authentication username={user} password={password}];{domain}\n"
        )
        result = await run_sipp(
            desk.sip_port, scenario="register_domain", extra=["-inf", str(users)], time_limit=20
        )
        return result.returncode

    demo = desk.agent(0)
    # In its own domain the phone's credentials are Acme's agent's: registered.
    assert await register("2001", "acme-secret-1", "sip.acme.example") == 0
    # The same phone at the node's address is in the demo tenant, where it does not exist;
    # and a demo phone is not known in Acme's domain.
    assert await register("2001", "acme-secret-1", "127.0.0.1") != 0
    assert await register(demo["extension"], demo["sip_password"], "sip.acme.example") != 0
    assert await register(demo["extension"], demo["sip_password"], "127.0.0.1") == 0


async def test_an_address_among_the_tenants_sip_destinations_is_allowed(desk: Desk) -> None:
    agent, _ = await desk.agent_headers(1)
    phone = "sip:desk-7@10.20.0.7:5070"
    r = await desk.call("POST", "/agents/me/login", agent, json={"device": phone})
    assert r.status_code == 403 and "sip_destinations" in r.json()["detail"], r.text
    r = await desk.call("PATCH", "/tenant", json={"sip_destinations": ["10.20.0.0/16"]})
    assert r.status_code == 200, r.text
    r = await desk.call("POST", "/agents/me/login", agent, json={"device": phone})
    assert r.status_code == 200 and r.json()["device"] == phone, r.text
    assert (await desk.call("POST", "/agents/me/logout", agent)).status_code == 200
    r = await desk.call("POST", "/agents/me/login", agent, json={"device": "sip:x@10.21.0.7"})
    assert r.status_code == 403, r.text
