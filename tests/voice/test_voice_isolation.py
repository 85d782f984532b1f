"""Tenants never see each other on the voice side either: contact records, recordings, live
contacts and call control, and an agent phone of one tenant posing as another's."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.voice.conftest import Api
from tests.voice.peers import Baresip, SippAgentPhone, sipp_call, wait_until
from tests.voice.test_inbound import wait_until_cdr

pytestmark = [pytest.mark.peer, pytest.mark.slow]


def _rival(api: Api) -> tuple[dict[str, str], str]:
    """A second tenant with its own agent 1001; its admin's headers and the agent password."""
    creds = api.node.demo["platform"]
    root = httpx.post(
        api.base + "/auth/login",
        json={"tenant": "platform", "username": "root", "password": creds["password"]},
    ).json()
    r = httpx.post(
        api.base + "/tenants",
        headers={"Authorization": f"Bearer {root['access_token']}"},
        json={"slug": "rival", "name": "Rival", "admin_password": "rival-admin-1"},
    )
    assert r.status_code == 201, r.text
    token = httpx.post(
        api.base + "/auth/login",
        json={"tenant": "rival", "username": "admin", "password": "rival-admin-1"},
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    r = httpx.post(
        api.base + "/agents",
        headers=headers,
        json={"name": "Rival Agent", "extension": "1001", "sip_password": "rival-sip-1"},
    )
    assert r.status_code == 201, r.text
    return headers, "rival-sip-1"


def test_another_tenant_cannot_read_or_control_calls(voice_node, api, tmp_path):
    rival, _ = _rival(api)
    phone = SippAgentPhone(tmp_path / "agent").start()
    try:
        api.login("1001", phone.uri)
        import threading

        result: dict[str, object] = {}
        caller = threading.Thread(
            target=lambda: result.update(
                r=sipp_call(tmp_path / "caller", voice_node.sip_port, talk_ms=6000)
            )
        )
        caller.start()
        live = asyncio.run(
            wait_until(lambda: [c for c in api.live() if c["state"] == "connected"], 20)
        )
        cid = live[0]["contact_id"]
        get = lambda p: httpx.get(api.base + p, headers=rival)  # noqa: E731
        post = lambda p, b=None: httpx.post(api.base + p, headers=rival, json=b or {})  # noqa: E731
        assert get("/contacts/live").json() == []
        for op in ("hold", "hangup", "force-release"):
            r = post(f"/contacts/{cid}/{op}")
            assert r.status_code == 404, (op, r.text)
        r = post(f"/contacts/{cid}/transfer", {"target_type": "queue", "target": "support"})
        assert r.status_code == 404
        r = post(f"/contacts/{cid}/monitor", {"mode": "listen", "device": "sip:x@127.0.0.1:9"})
        assert r.status_code == 404
        caller.join()
    finally:
        phone.stop()
    cdr = wait_until_cdr(api, lambda c: c["disposition"] == "answered")
    assert cdr["end_cause"] == "customer_hangup" and cdr["hold_seconds"] == 0  # untouched
    assert httpx.get(api.base + "/contacts", headers=rival).json()["total"] == 0
    assert httpx.get(api.base + f"/contacts/{cdr['id']}", headers=rival).status_code == 404
    (rid,) = cdr["recordings"]
    assert httpx.get(api.base + f"/recordings/{rid}", headers=rival).status_code == 404
    assert httpx.get(api.base + f"/recordings/{rid}/audio", headers=rival).status_code == 404
    assert httpx.get(api.base + "/recordings", headers=rival).json()["total"] == 0
    demo_agent = api.agents["1001"]["id"]
    r = httpx.post(api.base + f"/agents/{demo_agent}/login", headers=rival, json={})
    assert r.status_code == 404
    qid = api.queue_id("support")
    assert httpx.get(api.base + f"/queues/{qid}/stats", headers=rival).status_code == 404


async def test_a_phone_cannot_register_as_another_tenants_extension(voice_node, api, tmp_path):
    _, rival_password = _rival(api)
    # The rival agent's password against the demo tenant (an IP-addressed registration goes to
    # the default tenant, demo): refused. The demo password: accepted.
    impostor = await Baresip(
        tmp_path / "impostor",
        user="1001",
        password=rival_password,
        registrar_port=voice_node.sip_port,
    ).start()
    genuine = await Baresip(
        tmp_path / "genuine",
        user="1001",
        password=api.passwords["1001"],
        registrar_port=voice_node.sip_port,
    ).start()
    try:
        await wait_until(lambda: "200 OK" in genuine.output(), 10)
        await asyncio.sleep(2)
        assert "200 OK" not in impostor.output()
        assert "401" in impostor.output() or "403" in impostor.output()
    finally:
        await impostor.stop()
        await genuine.stop()
