"""Client sessions of the web apps: a supervised sign-in stays while its client sends
heartbeats, polls for events or holds an event stream open; a silent client signs the agent
out (disconnected); a second client takes over with ``replace`` (replaced)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from websockets.asyncio.client import connect

from cloudcc.contacts.presence import ClientPresence
from tests.agents.conftest import Desk
from tests.events.conftest import serve

A, B = ("t", "a"), ("t", "b")


def test_presence_expires_only_silent_clients() -> None:
    p = ClientPresence()
    p.start(A, 10, now=0)
    p.start(B, 10, now=0)
    p.seen(A, 8)
    p.opened(B, 1)
    assert p.expired(12) == []
    assert p.next_deadline() is not None
    assert p.expired(18.5) == [A]  # B's stream is open
    p.closed(B, 30)
    assert p.expired(39) == []
    assert p.expired(40.5) == [B]
    assert p.timeout(A) is None and p.expired(1000) == []
    p.start(A, 5, now=100)
    p.stop(A)
    assert p.expired(200) == []


async def _status(desk: Desk, headers: dict[str, str]) -> dict[str, Any]:
    r = await desk.call("GET", "/agents/me/status", headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def _assign(desk: Desk, index: int) -> tuple[dict[str, str], str]:
    headers, aid = await desk.agent_headers(index)
    r = await desk.call("PATCH", f"/agents/{aid}", json={"device": f"sip:desk{index}@127.0.0.1:9"})
    assert r.status_code == 200, r.text
    return headers, aid


async def _sign_in(desk: Desk, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    r = await desk.call("POST", "/agents/me/login", headers, json=body)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_heartbeats_keep_the_session_and_silence_signs_out(desk: Desk) -> None:
    agent, aid = await _assign(desk, 0)
    reasons: list[str] = []
    desk.node.bus.on(
        lambda e: e.type == "agent.state_changed" and e.data["agent_id"] == aid,
        lambda e: reasons.append(e.data["reason"]),
    )
    assert (await _sign_in(desk, agent, heartbeat_seconds=5))["heartbeat_seconds"] == 5
    for _ in range(7):  # 7 s with a heartbeat a second
        await asyncio.sleep(1)
        r = await desk.call("POST", "/agents/me/heartbeat", agent)
        assert r.status_code == 200 and r.json()["state"] == "ready", r.text
    silent = time.monotonic()
    while (await _status(desk, agent))["state"] != "offline":
        assert time.monotonic() - silent < 8, "still signed in long after the timeout"
        await asyncio.sleep(0.2)
    assert time.monotonic() - silent > 4
    assert reasons[-1] == "disconnected"
    r = await desk.call("POST", "/agents/me/heartbeat", agent)
    assert r.status_code == 409 and "/login" in r.json()["detail"], r.text
    # Unsupervised sessions (no heartbeat_seconds) never time out.
    assert (await _sign_in(desk, agent))["heartbeat_seconds"] is None


async def test_long_polls_and_event_streams_count_as_presence(desk: Desk) -> None:
    polling, _ = await _assign(desk, 0)
    streaming, _ = await _assign(desk, 1)
    await _sign_in(desk, polling, heartbeat_seconds=5)
    await _sign_in(desk, streaming, heartbeat_seconds=5)
    token = streaming["Authorization"].split(" ", 1)[1]
    async with serve(desk.node.app) as port:
        url = f"ws://127.0.0.1:{port}/api/v1/events/ws?access_token={token}"
        async with connect(url):
            started = time.monotonic()
            while time.monotonic() - started < 8:  # only long-polls from the first client
                r = await desk.call("GET", "/events?wait=2", polling)
                assert r.status_code == 200, r.text
            assert (await _status(desk, polling))["state"] == "ready"
            assert (await _status(desk, streaming))["state"] == "ready"
        closed = time.monotonic()
        while (await _status(desk, streaming))["state"] != "offline":
            assert time.monotonic() - closed < 8
            await asyncio.sleep(0.2)
        assert time.monotonic() - closed > 4


async def test_a_second_client_takes_over_with_replace(desk: Desk) -> None:
    agent, aid = await _assign(desk, 0)
    events: list[dict[str, Any]] = []
    desk.node.bus.on(
        lambda e: e.type == "agent.state_changed" and e.data["agent_id"] == aid,
        lambda e: events.append(e.data),
    )
    await _sign_in(desk, agent, heartbeat_seconds=30)
    r = await desk.call("POST", "/agents/me/login", agent, json={})
    assert r.status_code == 409 and '"replace": true' in r.json()["detail"], r.text
    status = await _sign_in(desk, agent, replace=True, ready=False, heartbeat_seconds=20)
    assert status["state"] == "not_ready" and status["heartbeat_seconds"] == 20
    assert [(e["state"], e["reason"]) for e in events[-2:]] == [
        ("offline", "replaced"),
        ("not_ready", "busy"),
    ]
    # replace with nobody signed in is an ordinary sign-in.
    assert (await desk.call("POST", "/agents/me/logout", agent)).status_code == 200
    assert (await _sign_in(desk, agent, replace=True))["state"] == "ready"
