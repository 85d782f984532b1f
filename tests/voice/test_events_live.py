"""A real call seen through the PaaS surface: the WebSocket stream delivers every event of the
call in order, resumes after a forced disconnect with nothing lost or doubled, and the agent's
own stream and a signed webhook receive their share."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets

from tests.voice.peers import SippAgentPhone, sipp_call

pytestmark = [pytest.mark.peer, pytest.mark.slow]


async def _collect(
    url: str,
    headers: dict[str, str],
    into: list[dict[str, Any]],
    until: str,
    stop_after: int | None = None,
) -> None:
    async with websockets.connect(url, additional_headers=headers) as ws:
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 60))
            if message["type"].startswith("stream."):
                continue
            into.append(message)
            if message["type"] == until or (stop_after and len(into) >= stop_after):
                return  # closing the socket abruptly, mid-call when stop_after is set


async def test_the_event_stream_carries_a_whole_call_in_order_across_a_reconnect(
    voice_node, api, tmp_path
):
    ws_base = voice_node.base.replace("http://", "ws://") + "/api/v1/events/ws"
    agent_id = api.agents["1001"]["id"]
    phone = SippAgentPhone(tmp_path / "agent").start()
    try:
        # No after-call work: the contact ends (and its CDR is final) with the call.
        api.patch(f"/queues/{api.queue_id('support')}", {"wrapup_seconds": 0})
        api.login("1001", phone.uri)
        first: list[dict[str, Any]] = []
        second: list[dict[str, Any]] = []
        agent_view: list[dict[str, Any]] = []
        tenant_stream = asyncio.create_task(
            _collect(f"{ws_base}?scope=tenant", api.headers, first, "cdr.written", stop_after=6)
        )
        token = _agent_token(api, "1001")
        agent_stream = asyncio.create_task(
            _collect(
                f"{ws_base}?scope=agent",
                {"Authorization": f"Bearer {token}"},
                agent_view,
                "contact.ended",
            )
        )
        await asyncio.sleep(0.5)
        call = asyncio.create_task(
            asyncio.to_thread(
                sipp_call, tmp_path / "caller", voice_node.sip_port, "4000", "2", 4500, 4000
            )
        )
        await tenant_stream  # disconnected after six events, in the middle of the IVR
        resumed = asyncio.create_task(
            _collect(
                f"{ws_base}?scope=tenant&since={first[-1]['seq']}",
                api.headers,
                second,
                "cdr.written",
            )
        )
        result = await call
        assert result.returncode == 0, result.stdout[-2000:]
        await asyncio.wait_for(resumed, 30)
        await asyncio.wait_for(agent_stream, 30)
    finally:
        phone.stop()
    events = first + second
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "in order, none doubled"
    assert seqs == list(range(seqs[0], seqs[-1] + 1)), "nothing lost across the reconnect"
    types = [e["type"] for e in events]
    contact_id = next(e["data"]["contact_id"] for e in events if e["type"] == "contact.created")
    story = [t for t in types if t.startswith(("contact.", "cdr.")) and t != "contact.recording"]
    assert story[:2] == ["contact.created", "contact.ivr_started"]
    for expected in (
        "contact.queued",
        "contact.offered",
        "contact.connected",
        "contact.ended",
        "cdr.written",
    ):
        assert expected in story, story
    order = [
        story.index(t)
        for t in (
            "contact.queued",
            "contact.offered",
            "contact.connected",
            "contact.ended",
            "cdr.written",
        )
    ]
    assert order == sorted(order)
    assert "flow.input_collected" in types and "recording.started" in types
    assert types.index("leg.answered") < types.index("contact.connected")
    cdr = next(e for e in events if e["type"] == "cdr.written")["data"]
    assert cdr["contact_id"] == contact_id and cdr["disposition"] == "answered"
    # The agent's own stream: its contact from the offer on, and its state changes.
    mine = {e["type"] for e in agent_view}
    assert {"contact.offered", "contact.connected", "contact.ended"} <= mine
    assert all(
        e["data"].get("agent_id") in (agent_id, None) or agent_id in e["data"].get("agents", [])
        for e in agent_view
    )


def _agent_token(api, extension: str) -> str:
    import httpx

    r = httpx.post(
        api.base + "/auth/login",
        json={"tenant": "demo", "username": extension, "password": api.passwords[extension]},
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def test_a_webhook_receives_the_calls_events_signed(tmp_path):
    """A PaaS server subscribed to contact events gets them for a real call, signed."""
    import time

    from cloudcc.ivr.webhook import verify_signature
    from tests.conftest import LiveNode
    from tests.voice.conftest import Api
    from tests.voice.test_ivr_webhook import Crm

    node = LiveNode(tmp_path / "data", env={"CLOUDCC_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8"]'})
    receiver = Crm()
    phone = SippAgentPhone(tmp_path / "agent").start()
    try:
        node.wait_ready()
        api = Api(node)
        secret = api.post("/tenant/webhook-secret")["webhook_secret"]
        api.post(
            "/webhooks",
            {
                "url": f"http://127.0.0.1:{receiver.port}/events",
                "event_types": ["contact.*", "cdr.written"],
            },
        )
        api.patch(f"/queues/{api.queue_id('support')}", {"wrapup_seconds": 0})
        api.login("1001", phone.uri)
        result = sipp_call(tmp_path / "caller", node.sip_port, talk_ms=3000)
        assert result.returncode == 0, result.stdout[-2000:]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if any(b'"cdr.written"' in body for _h, body in receiver.requests):
                break
            time.sleep(0.2)
    finally:
        phone.stop()
        receiver.close()
        node.stop()
    delivered = []
    for headers, body in receiver.requests:
        lowered = {k.lower(): v for k, v in headers.items()}
        verify_signature(secret.encode(), lowered, body, now=float(lowered["x-cloudcc-timestamp"]))
        delivered.append(json.loads(body))
    types = [d["type"] for d in delivered]
    assert types[0] == "contact.created" and types[-1] == "cdr.written", types
    assert "contact.connected" in types and all(
        t.startswith("contact.") or t == "cdr.written" for t in types
    )
    seqs = [d["seq"] for d in delivered]
    assert seqs == sorted(seqs), "in order"
