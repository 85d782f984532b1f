"""A supervisor's forced state is the agent's state, and a forced rest with a length ends by
itself (the node's ACD timer, not the test, returns the agent to ready)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.agents.conftest import Desk


async def _signed_in(desk: Desk) -> str:
    _, aid = await desk.agent_headers(0)
    r = await desk.call("POST", f"/agents/{aid}/login", json={"device": "sip:a@127.0.0.1:9"})
    assert r.status_code == 200 and r.json()["state"] == "ready", r.text
    return aid


async def _force(desk: Desk, aid: str, **body: Any) -> dict[str, Any]:
    r = await desk.call("POST", f"/agents/{aid}/force", json=body)
    assert r.status_code == 200, (body, r.text)
    status = (await desk.call("GET", f"/agents/{aid}/status")).json()
    return {"state": status["state"], "reason": status.get("reason")}


async def test_a_forced_state_is_the_agents_state(desk: Desk) -> None:
    aid = await _signed_in(desk)
    assert await _force(desk, aid, action="busy") == {"state": "not_ready", "reason": "forced"}
    assert (await _force(desk, aid, action="idle"))["state"] == "ready"
    assert await _force(desk, aid, action="rest") == {"state": "not_ready", "reason": "rest"}
    assert (await _force(desk, aid, action="sign_out"))["state"] == "offline"


async def test_a_forced_rest_with_seconds_ends_by_itself(desk: Desk) -> None:
    aid = await _signed_in(desk)
    assert await _force(desk, aid, action="rest", seconds=1) == {
        "state": "not_ready",
        "reason": "rest",
    }
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = (await desk.call("GET", f"/agents/{aid}/status")).json()
        if status["state"] == "ready":
            break
        await asyncio.sleep(0.2)
    assert status["state"] == "ready", status
    # Without a length, a forced rest lasts until someone ends it.
    await _force(desk, aid, action="rest")
    await asyncio.sleep(1.5)
    assert (await desk.call("GET", f"/agents/{aid}/status")).json()["state"] == "not_ready"
