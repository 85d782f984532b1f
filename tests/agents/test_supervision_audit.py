"""Every supervision act leaves an audit entry naming who did it, to which agent and contact,
and what: force state (busy, idle, rest, sign out), listen, whisper, barge, intercept and
force release (the last five on a real call between baresip phones)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.agents.conftest import Desk
from tests.agents.live_call import connected_call
from tests.voice.peers import wait_until


async def _audit(desk: Desk, **query: str) -> list[dict[str, Any]]:
    r = await desk.call("GET", "/audit-log", params={**query, "limit": "100"})
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


async def test_forcing_an_agent_is_audited(desk: Desk) -> None:
    _, aid = await desk.agent_headers(0)
    r = await desk.call("POST", f"/agents/{aid}/login", json={"device": "sip:a@127.0.0.1:9"})
    assert r.status_code == 200, r.text
    for body in (
        {"action": "busy"},
        {"action": "rest", "seconds": 300},
        {"action": "idle"},
        {"action": "sign_out"},
    ):
        r = await desk.call("POST", f"/agents/{aid}/force", json=body)
        assert r.status_code == 200, (body, r.text)
    # A refused force (signed out) writes nothing.
    assert (
        await desk.call("POST", f"/agents/{aid}/force", json={"action": "busy"})
    ).status_code == 409
    entries = await _audit(desk, resource_type="agent", resource_id=aid)
    forced = [
        (e["action"], e["changes"]) for e in reversed(entries) if e["action"].startswith("force")
    ]
    assert forced == [
        ("force_busy", {"action": "busy"}),
        ("force_rest", {"action": "rest", "seconds": 300}),
        ("force_idle", {"action": "idle"}),
        ("force_sign_out", {"action": "sign_out"}),
    ]
    assert {e["actor_name"] for e in entries if e["action"].startswith("force")} == {"admin"}


@pytest.mark.peer
@pytest.mark.slow
async def test_monitoring_intercept_and_force_release_are_audited(
    desk: Desk, tmp_path: Path
) -> None:
    async with connected_call(desk, tmp_path) as (cid, phones):
        _, aid = await desk.agent_headers(0)
        supervisor = phones["1003"].uri
        for mode in ("listen", "whisper", "barge"):
            r = await desk.call(
                "POST", f"/contacts/{cid}/monitor", json={"mode": mode, "device": supervisor}
            )
            assert r.status_code == 200, (mode, r.text)
            await asyncio.sleep(1)
        r = await desk.call("POST", f"/contacts/{cid}/intercept")
        assert r.status_code == 200, r.text
        await asyncio.sleep(1)
        r = await desk.call("POST", f"/contacts/{cid}/force-release")
        assert r.status_code == 200, r.text
        await wait_until(lambda: _gone(desk, cid), 10)
    entries = await _audit(desk, resource_type="contact", resource_id=cid)
    acts = [(e["action"], e["changes"]["agent_id"]) for e in reversed(entries)]
    assert acts == [
        ("listen", aid),
        ("whisper", aid),
        ("barge", aid),
        ("intercept", aid),
        ("force_release", aid),  # the contact's agent, though the supervisor took it over
    ], acts
    assert entries[-1]["changes"]["device"] == supervisor
    assert {e["actor_name"] for e in entries} == {"admin"}


async def _gone(desk: Desk, cid: str) -> bool:
    items = (await desk.call("GET", "/contacts/live")).json()
    return not any(c["contact_id"] == cid and c["state"] == "connected" for c in items)
