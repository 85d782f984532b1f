"""What the agent workspace reads: the IVR choices on a contact's path, a customer's earlier
contacts (an agent may read them while that customer is on its line, in its own tenant only),
and the agent's own figures of the day."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from cloudcc.contacts.figures import StateLog
from tests.voice.conftest import Api
from tests.voice.peers import SippAgentPhone, kill_group, sipp_call, start_sipp_call, wait_until
from tests.voice.test_inbound import wait_until_cdr
from tests.voice.test_voice_isolation import _rival


def test_state_log_counts_the_day_only_and_leaves_signed_out_out():
    log = StateLog(keep_seconds=100)
    log.note("t", "a", 10.0, "ready")
    log.note("t", "a", 30.0, "busy")
    log.note("t", "a", 40.0, "offline")
    log.note("t", "a", 50.0, "ready")
    # from 20 (the day's start) to 60: ready 10 (20-30) + 10 (50-60), busy 10
    assert log.time_in_state("t", "a", 20.0, 60.0) == {"ready": 20.0, "busy": 10.0}
    assert log.time_in_state("t", "b", 0.0, 60.0) == {}
    # an agent signed in before the node saw any change: its current state since then
    assert log.time_in_state("t", "b", 0.0, 60.0, (45.0, "not_ready")) == {"not_ready": 15.0}
    log.note("t", "a", 500.0, "busy")  # older changes are dropped, the state at the cut kept
    assert log.time_in_state("t", "a", 450.0, 510.0) == {"ready": 50.0, "busy": 10.0}


def _agent_headers(api: Api, extension: str) -> dict[str, str]:
    agent = next(a for a in api.node.demo["agents"] if a["extension"] == extension)
    token = httpx.post(
        api.base + "/auth/login",
        json={
            "tenant": api.node.demo["tenant"],
            "username": agent["web_username"],
            "password": agent["web_password"],
        },
    ).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def _get(api: Api, headers: dict[str, str], path: str, **params: Any) -> Any:
    r = httpx.get(api.base + path, headers=headers, params=params, timeout=30)
    assert r.status_code == 200, (path, r.status_code, r.text)
    return r.json()


@pytest.mark.peer
@pytest.mark.slow
def test_an_agent_reads_the_history_and_choices_of_the_customer_on_its_line(
    voice_node, api, tmp_path
):
    rival, _ = _rival(api)
    agent_1001 = _agent_headers(api, "1001")
    agent_1002 = _agent_headers(api, "1002")
    prefix = "+1555010"
    customer = prefix + "1"  # SIPp appends the call's number: each run's first call is 1
    # A first call of the customer, handled by agent 1002 (pressing 1: sales).
    phone = SippAgentPhone(tmp_path / "phone-1002").start()
    try:
        api.login("1002", phone.uri)
        done = sipp_call(tmp_path / "first", voice_node.sip_port, digit="1", caller=prefix)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:] + phone.errors()
    finally:
        phone.stop()
    first = wait_until_cdr(api, lambda c: c["disposition"] == "answered")
    assert first["agent_id"] == api.agents["1002"]["id"] and first["customer"] == customer
    # The flow's step on the path carries the caller's choice.
    flow_step = first["path"][0]
    assert flow_step["type"] == "flow", first["path"]
    assert [(c["node"], c["value"]) for c in flow_step["choices"]] == [("main_menu", "sales")]
    assert [p["type"] for p in first["path"]] == ["flow", "queue", "agent"]
    api.post(f"/agents/{api.agents['1002']['id']}/logout")

    # Agent 1001, with no contact of this customer, sees only its own records.
    assert _get(api, agent_1001, "/contacts", customer=customer)["total"] == 0

    phone = SippAgentPhone(tmp_path / "phone-1001").start()
    caller = None
    try:
        api.login("1001", phone.uri)
        caller = start_sipp_call(
            tmp_path / "second", voice_node.sip_port, digit="1", caller=prefix, talk_ms=30_000
        )
        live = asyncio.run(
            wait_until(
                lambda: [
                    c for c in _get(api, agent_1001, "/contacts/live") if c["state"] == "connected"
                ],
                30,
            )
        )
        # The live contact shows the IVR path with the choice and the flow's variables.
        assert live[0]["path"][0]["choices"][0]["value"] == "sales"
        assert live[0]["attributes"]["choice"] == "sales"
        # Now the customer is on 1001's line: its earlier contact (1002's) is readable.
        # (The contact in progress is recorded too: the page leaves it out.)
        current = live[0]["contact_id"]
        history = _get(api, agent_1001, "/contacts", customer=customer)
        assert [c["id"] for c in history["items"]] == [current, first["id"]]
        # ... but not another customer's, nor others' records without the filter.
        assert _get(api, agent_1001, "/contacts", customer="+15559999")["total"] == 0
        assert [c["id"] for c in _get(api, agent_1001, "/contacts")["items"]] == [current]
        # Agent 1002 has no contact of this customer now: only its own records.
        own = _get(api, agent_1002, "/contacts", customer=customer)["items"]
        assert [c["id"] for c in own] == [first["id"]]
        # Another tenant sees nothing.
        assert _get(api, rival, "/contacts", customer=customer)["total"] == 0
    finally:
        if caller is not None:
            kill_group(caller)
        phone.stop()


@pytest.mark.peer
@pytest.mark.slow
def test_an_agent_reads_its_own_figures_of_the_day_and_no_one_elses(voice_node, api, tmp_path):
    agent_1001 = _agent_headers(api, "1001")
    phone = SippAgentPhone(tmp_path / "phone").start()
    try:
        api.login("1001", phone.uri)
        sipp_call(tmp_path / "call", voice_node.sip_port, digit="1", talk_ms=3000)
    finally:
        phone.stop()
    cdr = wait_until_cdr(api, lambda c: c["disposition"] == "answered")
    # A contact counts once finished: in wrap-up it does not yet.
    if cdr["ended_at"] is None:
        assert _get(api, agent_1001, "/agents/me/figures")["handled"] == 0
        r = httpx.post(
            api.base + f"/contacts/{cdr['id']}/wrapup", json={"done": True}, headers=agent_1001
        )
        assert r.status_code == 200, r.text
    cdr = wait_until_cdr(api, lambda c: c["ended_at"] is not None)
    figures = _get(api, agent_1001, "/agents/me/figures")
    assert figures["agent_id"] == api.agents["1001"]["id"]
    assert figures["handled"] == 1
    expected = cdr["talk_seconds"] + cdr["wrapup_seconds"]
    assert abs(figures["average_handle_seconds"] - expected) < 0.2, (figures, cdr)
    assert figures["time_in_state"].get("ready", 0) > 0
    assert figures["time_in_state"].get("busy", 0) > 1, figures
    # Another agent's figures: refused to an agent, 404 across tenants, fine with reports:read.
    other = api.agents["1002"]["id"]
    r = httpx.get(api.base + f"/agents/{other}/figures", headers=agent_1001)
    assert r.status_code == 403, r.text
    assert _get(api, api.headers, f"/agents/{other}/figures")["handled"] == 0
    rival, _ = _rival(api)
    r = httpx.get(api.base + f"/agents/{api.agents['1001']['id']}/figures", headers=rival)
    assert r.status_code == 404, r.text
