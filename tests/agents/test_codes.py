"""A tenant's own not-ready reason codes (CEC state, time limit, auto-ready) and disposition
codes: defined by API, used by the state API and wrap-up, scoped to the tenant."""

from __future__ import annotations

import asyncio
import time

from tests.agents.conftest import Desk
from tests.api.helpers import new_tenant

PHONE = "sip:agent@127.0.0.1:9"


async def _status(desk: Desk, aid: str) -> dict:
    r = await desk.call("GET", f"/agents/{aid}/status")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def _eventually(check, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


async def test_tenant_reason_codes_drive_agent_states(desk: Desk) -> None:
    agent, aid = await desk.agent_headers(0)
    # Defined before the tenant's engine is loaded, and after (followed by event).
    r = await desk.call("POST", "/reason-codes", json={"code": "coaching", "cec_state": "study"})
    assert r.status_code == 201, r.text
    assert r.json()["max_seconds"] is None and r.json()["auto_ready"] is False
    r = await desk.call("POST", f"/agents/{aid}/login", json={"device": PHONE})
    assert r.status_code == 200, r.text
    # The docs' example fails until "lunch" exists, with a 422 that says how to define it.
    r = await desk.call(
        "PUT", f"/agents/{aid}/state", agent, json={"state": "not_ready", "reason": "lunch"}
    )
    assert r.status_code == 422 and "POST /reason-codes" in r.json()["detail"], r.text
    r = await desk.call(
        "POST",
        "/reason-codes",
        json={
            "code": "lunch",
            "label": "Lunch break",
            "cec_state": "rest",
            "max_seconds": 1,
            "auto_ready": True,
        },
    )
    assert r.status_code == 201, r.text
    lunch_id = r.json()["id"]

    async def lunch() -> bool:
        r = await desk.call(
            "PUT", f"/agents/{aid}/state", agent, json={"state": "not_ready", "reason": "lunch"}
        )
        return r.status_code == 200

    assert await _eventually(lunch)
    status = await _status(desk, aid)
    assert (status["state"], status["reason"], status["cti_code"]) == ("not_ready", "lunch", 8)
    # The time limit runs out: back to ready by itself.
    ready = await _eventually(lambda: _ready(desk, aid), timeout=4)
    assert ready, await _status(desk, aid)
    # The CEC state of another code: study (9).
    r = await desk.call(
        "PUT", f"/agents/{aid}/state", agent, json={"state": "not_ready", "reason": "coaching"}
    )
    assert r.status_code == 200 and r.json()["cti_code"] == 9, r.text
    # Built-ins stay available and cannot be redefined.
    r = await desk.call(
        "PUT", f"/agents/{aid}/state", agent, json={"state": "not_ready", "reason": "training"}
    )
    assert r.status_code == 200 and r.json()["cti_code"] == 9, r.text
    r = await desk.call("POST", "/reason-codes", json={"code": "rest"})
    assert r.status_code == 409 and "built-in" in r.json()["detail"], r.text
    # Deleted: refused again.
    assert (await desk.call("DELETE", f"/reason-codes/{lunch_id}")).status_code == 204

    async def refused() -> bool:
        r = await desk.call(
            "PUT", f"/agents/{aid}/state", agent, json={"state": "not_ready", "reason": "lunch"}
        )
        return r.status_code == 422

    assert await _eventually(refused)


async def _ready(desk: Desk, aid: str) -> bool:
    return (await _status(desk, aid))["state"] == "ready"


async def test_codes_need_permissions_and_valid_fields(desk: Desk) -> None:
    agent, _ = await desk.agent_headers(0)
    r = await desk.call("POST", "/reason-codes", agent, json={"code": "nap"})
    assert r.status_code == 403, r.text
    r = await desk.call("POST", "/disposition-codes", agent, json={"code": "sale"})
    assert r.status_code == 403, r.text
    for bad in (
        {"code": "Lunch Break"},
        {"code": "x", "cec_state": "sleeping"},
        {"code": "x", "max_seconds": 0},
        {"code": "x", "auto_ready": "yes"},
    ):
        r = await desk.call("POST", "/reason-codes", json=bad)
        assert r.status_code == 422, (bad, r.text)
    r = await desk.call("POST", "/reason-codes", json={"code": "meeting", "max_seconds": 600})
    assert r.status_code == 201
    assert (await desk.call("POST", "/reason-codes", json={"code": "meeting"})).status_code == 409
    listed = (await desk.call("GET", "/reason-codes", agent)).json()  # agents read them
    assert [c["code"] for c in listed["items"]] == ["meeting"]
    r = await desk.call("PATCH", f"/reason-codes/{listed['items'][0]['id']}", json={"label": "M"})
    assert r.status_code == 200 and r.json()["label"] == "M"


async def test_wrapup_codes_are_checked_once_a_tenant_defines_them(desk: Desk) -> None:
    agent, _ = await desk.agent_headers(0)
    nobody = "0" * 32
    # No codes defined: any code passes the check (the contact is then not found).
    r = await desk.call("POST", f"/contacts/{nobody}/wrapup", agent, json={"code": "whatever"})
    assert r.status_code == 404, r.text
    r = await desk.call("POST", "/disposition-codes", json={"code": "sale", "label": "Sale"})
    assert r.status_code == 201, r.text
    r = await desk.call("POST", f"/contacts/{nobody}/wrapup", agent, json={"code": "whatever"})
    assert r.status_code == 422 and "sale" in r.json()["detail"], r.text
    r = await desk.call("POST", f"/contacts/{nobody}/wrapup", agent, json={"code": "sale"})
    assert r.status_code == 404, r.text


async def test_codes_stay_in_their_tenant(desk: Desk) -> None:
    rival = await new_tenant(desk.client, desk.node, "rival")
    r = await desk.call("POST", "/reason-codes", json={"code": "lunch"})
    assert r.status_code == 201
    code_id = r.json()["id"]
    assert (await desk.call("GET", "/reason-codes", rival)).json()["total"] == 0
    assert (await desk.call("GET", f"/reason-codes/{code_id}", rival)).status_code == 404
    assert (await desk.call("DELETE", f"/reason-codes/{code_id}", rival)).status_code == 404
    r = await desk.call("POST", "/reason-codes", rival, json={"code": "lunch"})
    assert r.status_code == 201  # the same code in another tenant is its own


def test_engine_drops_a_tenant_code_but_never_a_builtin() -> None:
    import pytest

    from cloudcc.routing import AgentConfig, Presence, ReasonCode, RoutingEngine
    from cloudcc.routing.exceptions import InvalidConfig, UnknownReasonCode

    e = RoutingEngine()
    e.configure_agent(AgentConfig("a"), 0)
    e.configure_reason_code(ReasonCode("lunch", cti_code=8), 0)
    e.agent_login("a", 1, presence=Presence.NOT_READY, reason="lunch")
    e.remove_reason_code("lunch", 2)
    assert "lunch" not in e.reason_codes
    assert e.agent_stats("a", 3).reason == "lunch"  # kept until the agent's next change
    with pytest.raises(UnknownReasonCode):
        e.agent_state_changed("a", Presence.NOT_READY, 4, reason="lunch")
    with pytest.raises(InvalidConfig):
        e.remove_reason_code("rest", 5)
    assert "rest" in e.reason_codes
