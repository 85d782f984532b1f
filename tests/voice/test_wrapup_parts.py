"""Each agent who handled a contact wraps up its own part: after a consultative transfer the
first agent is in after-call work while the contact goes on with the colleague, records its
disposition on its own leg (while the contact is live), and is ready again once done; the
colleague wraps up the contact's end. The record keeps both: each agent leg's ``wrapup``, and
the last agent's as the contact's ``wrapup_code``. Real calls: baresip caller and phones."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.voice.peers import wait_until
from tests.voice.test_call_control import connect_caller, hang_up, phones
from tests.voice.test_inbound import wait_until_cdr

pytestmark = [pytest.mark.peer, pytest.mark.slow]


def _agent_headers(api: Any, extension: str) -> dict[str, str]:
    """The agent's own session (calls:own), as its web page has it."""
    agent = next(a for a in api.node.demo["agents"] if a["extension"] == extension)
    r = httpx.post(
        api.base + "/auth/login",
        json={
            "tenant": "demo",
            "username": agent["web_username"],
            "password": agent["web_password"],
        },
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def test_the_agent_who_transferred_wraps_up_its_own_part(voice_node, api, tmp_path):
    alice_id, bob_id = api.agents["1001"]["id"], api.agents["1002"]["id"]
    alice = _agent_headers(api, "1001")
    async with phones(api, voice_node, tmp_path, ("1001", "1002")) as p:
        api.login("1002", ready=False)  # Bob takes only the consultation
        api.login("1001")
        cid = await connect_caller(api, voice_node, p)
        api.post(f"/contacts/{cid}/consult", {"target_type": "agent", "target": "1002"})
        await asyncio.sleep(1.5)
        # Before her part is over, a wrap-up is refused (the call is on).
        r = httpx.post(f"{api.base}/contacts/{cid}/wrapup", json={"code": "x"}, headers=alice)
        assert r.status_code == 409, r.text
        api.post(f"/contacts/{cid}/complete-transfer")

        # Alice's part is over, the contact goes on with Bob: she is in after-call work for
        # it, and her live contacts still show it (a reload of her page finds it).
        def alice_wrapping() -> Any:
            status = httpx.get(f"{api.base}/agents/me/status", headers=alice).json()
            return status["state"] == "wrap_up" or None

        await wait_until(alice_wrapping, 10)
        mine = httpx.get(f"{api.base}/contacts/live", headers=alice).json()
        (contact,) = [c for c in mine if c["contact_id"] == cid]
        assert contact["agent_id"] == bob_id and contact["wrapping"] == [alice_id]
        assert contact["state"] == "connected"

        # In steps: a code first, then notes and done; the contact is still live.
        for body in ({"code": "follow_up", "done": False}, {"notes": "sent to Bob", "done": True}):
            r = httpx.post(f"{api.base}/contacts/{cid}/wrapup", json=body, headers=alice)
            assert r.status_code == 200, r.text
        status = httpx.get(f"{api.base}/agents/me/status", headers=alice).json()
        assert status["state"] != "wrap_up", status
        assert all(not c["wrapping"] for c in api.live() if c["contact_id"] == cid)
        # A late correction of her part is still taken while the contact is live.
        r = httpx.post(
            f"{api.base}/contacts/{cid}/wrapup",
            json={"notes": "sent to Bob, call back Friday"},
            headers=alice,
        )
        assert r.status_code == 200, r.text
        await hang_up(api, p["caller"])
    # Bob took the consultation directly (no queue): the ACD gives him no after-call work
    # (a queue's wrap-up time), so the contact ends with the caller and has no last wrap-up.
    cdr = wait_until_cdr(api, lambda c: c["id"] == cid and c["state"] == "ended")
    legs = {leg["agent_id"]: leg for leg in cdr["legs"] if leg["agent_id"]}
    assert legs[alice_id]["wrapup"] == {
        "code": "follow_up",
        "notes": "sent to Bob, call back Friday",
    }
    assert legs[bob_id]["wrapup"] is None
    assert cdr["wrapup_code"] is None  # the record's own is the last agent's
    assert cdr["agent_id"] == bob_id


async def test_the_contact_stays_live_until_every_agent_has_wrapped_up(voice_node, api, tmp_path):
    """A blind transfer back to the queue: Bob takes it and wraps up its end, while Alice's
    part is still open; the contact waits for hers, then the record has both."""
    alice_id, bob_id = api.agents["1001"]["id"], api.agents["1002"]["id"]
    alice = _agent_headers(api, "1001")
    async with phones(api, voice_node, tmp_path, ("1001", "1002")) as p:
        api.login("1001")
        cid = await connect_caller(api, voice_node, p)
        queue = next(c["queue"] for c in api.live() if c["contact_id"] == cid)
        api.login("1002")  # Bob is ready only now: the queue offers him the transfer
        api.post(f"/contacts/{cid}/transfer", {"target_type": "queue", "target": queue})
        await wait_until(
            lambda: any(c["agent_id"] == bob_id and c["state"] == "connected" for c in api.live()),
            20,
        )
        mine = httpx.get(f"{api.base}/contacts/live", headers=alice).json()
        assert [c["wrapping"] for c in mine if c["contact_id"] == cid] == [[alice_id]]
        await asyncio.sleep(1)
        await hang_up(api, p["caller"])
    # Bob's end of it (the admin for him): the contact is in wrap-up for him.
    await wait_until(
        lambda: any(c["contact_id"] == cid and c["state"] == "wrapup" for c in api.live()), 10
    )
    api.post(f"/contacts/{cid}/wrapup", {"code": "resolved", "notes": "fixed"})
    # Alice's part is still open: the contact stays live for it.
    await asyncio.sleep(1)
    (contact,) = [c for c in api.live() if c["contact_id"] == cid]
    assert contact["wrapping"] == [alice_id]
    r = httpx.post(
        f"{api.base}/contacts/{cid}/wrapup",
        json={"code": "follow_up", "notes": "passed on"},
        headers=alice,
    )
    assert r.status_code == 200, r.text
    cdr = wait_until_cdr(api, lambda c: c["id"] == cid and c["state"] == "ended")
    legs = {leg["agent_id"]: leg for leg in cdr["legs"] if leg["agent_id"]}
    assert legs[alice_id]["wrapup"] == {"code": "follow_up", "notes": "passed on"}
    assert legs[bob_id]["wrapup"] == {"code": "resolved", "notes": "fixed"}
    assert (cdr["wrapup_code"], cdr["wrapup_notes"]) == ("resolved", "fixed")
    assert [t["kind"] for t in cdr["transfers"]] == ["blind"]
