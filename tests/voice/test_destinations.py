"""Where a tenant's calls may go (issue 18 item 5): a direct SIP address only when an admin
listed it or it is one of the tenant's registered phones, an outside number only through the
tenant's trunks and its dial plan. A refused destination gets no INVITE at all (a UDP socket
on that port hears nothing)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.voice.peers import Baresip, SippAgentPhone, kill_group, start_sipp_call, wait_until
from tests.voice.test_trunks import Silent

pytestmark = [pytest.mark.peer, pytest.mark.slow]


def refused(api, path: str, body: dict) -> dict:
    r = httpx.post(api.base + path, json=body, headers=api.headers, timeout=30)
    assert r.status_code == 403, (path, r.status_code, r.text)
    problem: dict = r.json()
    assert problem["type"] == "urn:cloudcc:destination_refused"
    return problem


def test_a_call_to_an_unlisted_sip_address_is_refused_and_no_invite_leaves(
    voice_node, api, tmp_path
):
    internal = Silent()
    try:
        target = f"sip:internal@127.0.0.1:{internal.port}"
        problem = refused(api, "/calls", {"to": target, "queue": "support"})
        assert "sip_destinations" in problem["detail"]
        agent = api.agents["1001"]["id"]
        refused(api, "/calls", {"to": target, "agent_id": agent})
        time.sleep(1.5)
        assert internal.received == []
        # An admin lists it (loopback is fine when an admin says so): the call goes there.
        api.patch("/tenant", {"sip_destinations": [f"127.0.0.1:{internal.port}"]})
        # ... but not elsewhere through a listed address (maddr, RFC 3261 §19.1.1).
        r = httpx.post(
            api.base + "/calls",
            json={"to": f"{target};maddr=10.9.9.9", "queue": "support"},
            headers=api.headers,
        )
        assert r.status_code == 422 and "maddr" in r.json()["detail"]
        out = api.post("/calls", {"to": target, "queue": "support"})
        asyncio.run(wait_until(lambda: internal.received, 5))
        assert internal.received[0].startswith(b"INVITE sip:internal@127.0.0.1:")
        api.post(f"/contacts/{out['contact_id']}/hangup")
    finally:
        internal.close()


def test_outside_numbers_follow_the_dial_plan_and_need_a_trunk(voice_node, api, tmp_path):
    r = httpx.post(
        api.base + "/calls", json={"to": "15550000", "queue": "support"}, headers=api.headers
    )
    assert r.status_code == 422 and "POST /trunks" in r.json()["detail"], r.text
    carrier = Silent()
    try:
        api.post("/trunks", {"name": "carrier", "host": "127.0.0.1", "port": carrier.port})
        assert (
            "dial_plan.international"
            in refused(api, "/calls", {"to": "+447700900123", "queue": "support"})["detail"]
        )
        assert (
            "blocked" in refused(api, "/calls", {"to": "19005551234", "queue": "support"})["detail"]
        )
        time.sleep(1)
        assert carrier.received == []
        api.patch("/tenant", {"dial_plan": {"international": ["+44"]}})
        out = api.post("/calls", {"to": "+447700900123", "queue": "support"})
        asyncio.run(wait_until(lambda: carrier.received, 5))
        assert carrier.received[0].startswith(b"INVITE sip:+447700900123@127.0.0.1:")
        api.post(f"/contacts/{out['contact_id']}/hangup")
    finally:
        carrier.close()


def test_transfers_and_consultations_to_unlisted_addresses_are_refused(voice_node, api, tmp_path):
    internal = Silent()
    phone = SippAgentPhone(tmp_path / "agent").start()
    caller = start_sipp_call(tmp_path / "caller", voice_node.sip_port, talk_ms=15_000, timeout=60)
    try:
        api.login("1001", phone.uri)
        live = asyncio.run(
            wait_until(lambda: [c for c in api.live() if c["state"] == "connected"], 25)
        )
        cid = live[0]["contact_id"]
        target = f"sip:x@127.0.0.1:{internal.port}"
        for op in ("transfer", "consult"):
            refused(api, f"/contacts/{cid}/{op}", {"target_type": "external", "target": target})
            refused(api, f"/contacts/{cid}/{op}", {"target_type": "external", "target": "+881234"})
        time.sleep(1.5)
        assert internal.received == []
        assert [c["state"] for c in api.live() if c["contact_id"] == cid] == ["connected"]
    finally:
        kill_group(caller)
        phone.stop()
        internal.close()


async def test_a_call_to_the_tenants_own_registered_phone_is_allowed(voice_node, api, tmp_path):
    """A SIP address that is one of the tenant's registered agent phones needs no listing."""
    phone = await Baresip(
        tmp_path / "phone",
        user="1002",
        password=api.passwords["1002"],
        registrar_port=voice_node.sip_port,
    ).start()
    try:
        await wait_until(lambda: "200 OK" in phone.output(), 10)
        elsewhere = f"sip:someone@127.0.0.1:{phone.sip_port + 2}"
        refused(api, "/calls", {"to": elsewhere, "queue": "support"})
        out = api.post("/calls", {"to": f"sip:1002@127.0.0.1:{phone.sip_port}", "queue": "support"})
        await wait_until(
            lambda: any(
                c["contact_id"] == out["contact_id"] and c["state"] == "queued" for c in api.live()
            ),
            15,
        )
        await phone.hangup()
    finally:
        await phone.stop()
