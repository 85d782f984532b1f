"""A supervisor monitors with a phone the node may ring (issue 18 item 5), by the rule an agent
signs in with: its own registered phone, its agent's assigned device, an address among the
tenant's sip_destinations, or any URI with agents:device. A refused device gets no INVITE (a
UDP socket on its port hears nothing). Real REGISTERs and a real call between baresip phones;
the listed address is a SIPp phone."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.agents.conftest import Desk
from tests.agents.live_call import connected_call
from tests.api.helpers import login
from tests.voice.peers import SippAgentPhone, wait_until
from tests.voice.test_trunks import Silent

pytestmark = [pytest.mark.peer, pytest.mark.slow]


async def _supervision(desk: Desk, cid: str) -> list[dict[str, Any]]:
    r = await desk.call(
        "GET", "/audit-log", params={"resource_type": "contact", "resource_id": cid}
    )
    assert r.status_code == 200, r.text
    return [e for e in r.json()["items"] if e["action"] == "listen"]


async def test_a_supervisor_monitors_only_with_a_phone_the_node_may_ring(
    desk: Desk, tmp_path: Path
) -> None:
    # Carol (1003) is a supervisor with an agent seat; "qa" is a supervisor with none.
    r = await desk.client.post(
        "/api/v1/auth/login",
        json={"tenant": "demo", "username": "1003", "password": desk.agent(2)["web_password"]},
    )
    r = await desk.call("PATCH", f"/users/{r.json()['user_id']}", json={"role": "supervisor"})
    assert r.status_code == 200, r.text
    carol, _ = await desk.agent_headers(2)
    r = await desk.call(
        "POST", "/users", json={"username": "qa", "password": "qa-pass-123", "role": "supervisor"}
    )
    assert r.status_code == 201, r.text
    qa = await login(desk.client, "demo", "qa", "qa-pass-123")
    internal = Silent()
    listed = SippAgentPhone(tmp_path / "listed").start()
    try:
        async with connected_call(desk, tmp_path) as (cid, phones):
            await _checks(desk, cid, phones, carol, qa, internal, listed)
    finally:
        listed.stop()
        internal.close()


async def _checks(
    desk: Desk,
    cid: str,
    phones: dict[str, Any],
    carol: dict[str, str],
    qa: dict[str, str],
    internal: Silent,
    listed: SippAgentPhone,
) -> None:
    path = f"/contacts/{cid}/monitor"

    # An address of the supervisor's choosing: 403 saying what to do, and no INVITE.
    target = f"sip:internal@127.0.0.1:{internal.port}"
    for who in (carol, qa):
        r = await desk.call("POST", path, who, json={"mode": "listen", "device": target})
        assert r.status_code == 403, r.text
        detail = r.json()["detail"]
        assert "agents:device" in detail and "sip_destinations" in detail, detail
    # Another agent's registered phone is not the supervisor's own either.
    r = await desk.call("POST", path, carol, json={"mode": "listen", "device": phones["1001"].uri})
    assert r.status_code == 403, r.text
    # A supervisor with no agent seat and no device: nothing to ring, 422.
    r = await desk.call("POST", path, qa, json={"mode": "listen"})
    assert r.status_code == 422 and r.json()["type"] == "urn:cloudcc:no_device", r.text
    assert "sip_destinations" in r.json()["detail"]
    await asyncio.sleep(1)
    assert internal.received == []
    assert await _supervision(desk, cid) == []  # a refused act writes nothing

    # Carol's own registered phone (by default, and named): it rings and listens.
    r = await desk.call("POST", path, carol, json={"mode": "listen"})
    assert r.status_code == 200, r.text
    entries = await wait_until(lambda: _supervision(desk, cid), 5)
    assert entries[0]["changes"]["device"] == "sip:1003@127.0.0.1"
    assert (await desk.call("POST", f"/contacts/{cid}/stop-monitor", carol)).status_code == 200
    await asyncio.sleep(0.5)
    r = await desk.call("POST", path, carol, json={"mode": "listen", "device": phones["1003"].uri})
    assert r.status_code == 200, r.text
    assert (await desk.call("POST", f"/contacts/{cid}/stop-monitor", carol)).status_code == 200
    await asyncio.sleep(0.5)

    # An admin lists the address: the supervisor with no seat may monitor from there.
    r = await desk.call("PATCH", "/tenant", json={"sip_destinations": [f"127.0.0.1:{listed.port}"]})
    assert r.status_code == 200, r.text
    r = await desk.call("POST", path, qa, json={"mode": "listen", "device": listed.uri})
    assert r.status_code == 200, r.text
    entries = await _supervision(desk, cid)
    assert [e["actor_name"] for e in reversed(entries)] == ["1003", "1003", "qa"], entries
    assert entries[0]["changes"]["device"] == listed.uri
    assert internal.received == []
